"""The checks' names on a Danish page (the delivery page's list of checks): one table from a check's id
(``pipeline.stages.check``) to the words an official reads. The QC report and an English page keep the
check's own English title.

Pure: values in, words out.
"""

from __future__ import annotations

import re

LABELS = {
    "container.mp4": "MP4-fil",
    "container.faststart": "kan afspilles, mens filen hentes",
    "video.track": "et billedspor",
    "video.codec": "billedets kodning",
    "video.profile": "H.264-profil",
    "video.pix_fmt": "farveformat",
    "video.size": "billedstørrelse",
    "video.sar": "kvadratiske billedpunkter",
    "video.constant_rate": "jævn billedhastighed",
    "video.fps": "billeder i sekundet",
    "audio.track": "et lydspor",
    "audio.codec": "lydens kodning",
    "audio.sample_rate": "lydens samplingsfrekvens",
    "audio.channels": "lydkanaler",
    "audio.loudness": "lydstyrke (EBU R 128)",
    "audio.true_peak": "højeste lydniveau",
    "clip.duration": "klippets længde",
    "clip.statements": "hvert indlægs længde",
    "subtitles.soft_track": "undertekstspor i klippet",
    "master.file": "master uden tekst i billedet ved klippet",
    "master.soft_track": "masterens undertekstspor har alle underteksterne",
    "master.picture": "masterens billede som klippets",
    "master.frames": "masteren er lige så lang som klippet",
    "subtitles.file": "SRT-undertekster ved klippet",
    "subtitles.formats": "SRT og VTT har de samme undertekster",
    "subtitles.order": "underteksterne kommer i rækkefølge",
    "subtitles.end_after_start": "hver undertekst slutter efter, at den er startet",
    "subtitles.overlap": "aldrig to undertekster på samme tid",
    "subtitles.gap": "afstand mellem undertekster",
    "subtitles.inside_clip": "underteksterne ligger inden for klippet",
    "subtitles.lines": "linjer pr. undertekst",
    "subtitles.chars_per_line": "tegn pr. linje",
    "subtitles.reading_speed": "læsehastighed",
    "subtitles.min_duration": "korteste tid på skærmen",
    "subtitles.max_duration": "længste tid på skærmen",
    "transcript.files": "transskriptionens filer",
    "transcript.text_recognised": "tekst til hvert indlæg",
    "transcript.approved": "teksten godkendt af en person",
    "transcript.repetitions": "ingen gentagelser i ring",
    "transcript.credits": "ingen opdigtede tekstnings-krediteringer",
    "transcript.words": "undertekster og transskription siger det samme",
}

STATUS = {"pass": "i orden", "warn": "bemærk", "fail": "ikke i orden"}
STATUS_EN = {"pass": "passed", "warn": "note", "fail": "failed"}

# Words a measured value may hold and still read the same in Danish: units and the names of formats.
_NEUTRAL = frozenset(
    {"s", "ms", "hz", "khz", "fps", "lufs", "dbtp", "lu", "stereo", "mono", "h264", "hevc", "aac", "lc"}
    | {"yuv420p", "mov_text", "mp4", "srt", "vtt", "sar"}
)

MORE = "Alle målinger står i QC-rapporten (qc-report.txt og qc-report.json)."
CUES = "Undertekster, det gælder:"


# One check per statement ("clip.statement.<id>", titled "length of statement N (<id>)").
_STATEMENT_LENGTH = re.compile(r"length of statement (\d+) \((.+)\)")


def label(check: str, title: str, *, danish: bool) -> str:
    """A check's name on the page: the Danish label, else (an English page, or a check without one) its
    own title."""
    if not danish:
        return title
    found = _STATEMENT_LENGTH.fullmatch(title) if check.startswith("clip.statement.") else None
    if found:
        return f"længden af indlæg {found[1]} ({found[2]})"
    return LABELS.get(check, title)


def neutral(measured: str) -> bool:
    """Whether a measured value reads the same on a Danish page: numbers, units and format names only
    (``-23.0 LUFS``, ``1280×720``, ``25 fps``), no English words."""
    return all(word.lower() in _NEUTRAL for word in re.findall(r"[^\W\d]+(?:_?\w+)*", measured))


def more(count: int) -> str:
    return f"og {count} til"
