"""Which ffmpeg a run uses, what it needs of it, and what a failure says."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

from pipeline import media
from pipeline.errors import MediaError, MissingToolError
from pipeline.media import needs
from pipeline.media.needs import Offer, parse_filter_options, parse_names, shortfalls, version_number

# ------------------------------------------------------------------------------------------- pure

ENCODERS = """\
Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 A....D aac                  AAC (Advanced Audio Coding)
"""
DEMUXERS_7 = """\
File formats:
 D. = Demuxing supported
 .E = Muxing supported
 --
 D   concat          Virtual concatenation script
 D d lavfi           Libavfilter virtual input device
 D   mov,mp4,m4a,3gp,3g2,mj2 QuickTime / MOV
"""
# ffmpeg 5.1 names the block of scale and scale2ref "scale(2ref)"; 9.x shows list types in brackets.
FULL_HELP = """\
scale(2ref) AVOptions:
   w                 <string>     ..FV....... Output video width
   force_original_aspect_ratio <int>        ..FV....... decrease or increase w/h (default disable)
     disable         0            ..FV.......
     decrease        1            ..FV.......

aformat AVOptions:
   channel_layouts   [<channel_layout>]..F.A...... A '|'-separated list of channel layouts.

ebur128 AVOptions:
   framelog          <int>        ..FVA...... force frame logging level (default -1)
     info            32           ..FVA...... information logging level
     verbose         40           ..FVA...... verbose logging level
   peak              <flags>      ..F.A...... set peak mode (default 0)
     true                         ..F.A...... enable true-peak mode
"""


def test_listings_are_read_whatever_the_layout() -> None:
    assert {"libx264", "aac"} <= parse_names(ENCODERS)
    assert "Video" not in parse_names(ENCODERS)
    demuxers = parse_names(DEMUXERS_7)
    assert {"concat", "lavfi", "mov", "mp4"} <= demuxers
    assert "d" not in demuxers


def test_filter_options_and_their_named_values() -> None:
    options = parse_filter_options(FULL_HELP, ["scale", "aformat", "ebur128"])
    assert options["scale"]["force_original_aspect_ratio"] == {"disable", "decrease"}
    assert "w" in options["scale"]
    assert "channel_layouts" in options["aformat"]
    assert options["ebur128"]["framelog"] == {"info", "verbose"}
    assert options["ebur128"]["peak"] == {"true"}


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("5.1.9-0+deb12u1", (5, 1)),
        ("4.4.2-0ubuntu0.22.04.1", (4, 4)),
        ("n9.0.2-17-g2a571b6068-20260930", (9, 0)),
        ("7.1", (7, 1)),
        ("8", (8, 0)),
        ("N-113000-g0123abcd", None),
    ],
)
def test_version_numbers(text: str, number: tuple[int, int] | None) -> None:
    assert version_number(text) == number


def _full_offer(**changes: object) -> Offer:
    filters = {need.name for need in needs.FILTERS}
    options = {
        need.name: {o: frozenset(v for opt, v in need.values if opt == o) for o in need.options}
        for need in needs.FILTERS
    }
    offer = Offer(
        version_text="5.1.9",
        encoders=frozenset(needs.ENCODERS),
        muxers=frozenset(needs.MUXERS),
        demuxers=frozenset(needs.DEMUXERS),
        filters=frozenset(filters),
        filter_options=options,
    )
    return Offer(**{**offer.__dict__, **changes})  # type: ignore[arg-type]


def test_what_an_ffmpeg_lacks_is_named() -> None:
    assert shortfalls(_full_offer()) == []
    old = shortfalls(_full_offer(version_text="4.4.2-0ubuntu0.22.04.1"))
    assert old == ["version 4.4.2-0ubuntu0.22.04.1 is older than 5.1, the oldest supported"]
    offer = _full_offer()
    no_loudnorm = shortfalls(_full_offer(filters=offer.filters - {"loudnorm"}))
    assert no_loudnorm == ["filter loudnorm (loudness normalisation (EBU R 128))"]
    options = {
        **offer.filter_options,
        "ebur128": {"peak": frozenset({"true"}), "framelog": frozenset({"info"})},
    }
    assert shortfalls(_full_offer(filter_options=options)) == ["value verbose of option ebur128=framelog"]
    assert "encoder libx264" in shortfalls(_full_offer(encoders=frozenset({"aac"})))


def test_an_offer_survives_its_store() -> None:
    offer = _full_offer()
    assert needs.offer_from_json(needs.offer_to_json(offer)) == offer


@pytest.mark.parametrize(
    ("lines", "told"),
    [
        (
            [
                "[ebur128 @ 0x55f8] [Eval @ 0x7ffd] Undefined constant or missing '(' in 'quiet'",
                '[ebur128 @ 0x55f84ebf1e40] Unable to parse option value "quiet"',
                "[ebur128 @ 0x55f84ebf1e40] Error setting option framelog to value quiet.",
                "[Parsed_ebur128_0 @ 0x55f84ebf1d00] Error applying options to the filter.",
                "[Parsed_ebur128_0 @ 0x55f84ebf1d00] Summary:",
                "    I:           0.0 LUFS",
                "Error reinitializing filters!",
                "Failed to inject frame into filter network: Invalid argument",
                "Conversion failed!",
            ],
            "ebur128: Error setting option framelog to value quiet.",
        ),
        (
            [
                "[Parsed_aresample_1 @ 0x1a] Cannot select channel layout for the link between filters",
                "Error reinitializing filters!",
                "Conversion failed!",
            ],
            "aresample: Cannot select channel layout for the link between filters",
        ),
        (
            [
                "[Parsed_ebur128_0 @ 0x560b] [Eval @ 0x7ffe] Undefined constant or missing '(' in 'nonsense'",
                '[Parsed_ebur128_0 @ 0x560b] Unable to parse "framelog" option value "nonsense"',
                "[fc#-1 @ 0x560b] Error applying option 'framelog' to filter 'ebur128': Invalid argument",
                "Error opening output file -.",
                "Error opening output files: Invalid argument",
            ],
            "Error applying option 'framelog' to filter 'ebur128': Invalid argument",
        ),
        (["some warning", "the last thing said", "Conversion failed!"], "the last thing said"),
        (["Conversion failed!"], ""),
    ],
)
def test_the_telling_line_of_a_failure(lines: list[str], told: str) -> None:
    assert media.telling_line(lines) == told


# ------------------------------------------------------------------------------------ real ffmpeg


def test_a_failed_command_says_what_went_wrong() -> None:
    """Real ffmpeg output: the reason is the option that is wrong, never "Conversion failed!"."""
    args = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", "-f", "lavfi", "-i", "sine=d=1"]
    args += ["-af", "ebur128=peak=true:framelog=nonsense", "-f", "null", "-"]
    with pytest.raises(MediaError) as caught:
        media.run_ffmpeg(args, what="measure a tone", stderr_lines=40)
    message = str(caught.value)
    assert message.startswith("ffmpeg could not measure a tone: ")
    assert "framelog" in message  # the option that is wrong (5.1 also names the value, 9.x the filter)
    assert "Conversion failed" not in message
    assert len(message.splitlines()) == 1
    # The whole tail is kept for -v: the lines that only say it failed are there too.
    assert "Unable to parse" in caught.value.stderr_tail
    assert len(caught.value.stderr_tail.splitlines()) > 3
    assert caught.value.command[0] == media.ffmpeg_exe()


def bundled_ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def fake_ffmpeg(folder: Path, *, version: str | None = None, hide_filter: str | None = None) -> Path:
    """An ``ffmpeg`` that runs the bundled binary but says it is ``version`` or lacks ``hide_filter``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ffmpeg"
    script.write_text(
        f"""#!{sys.executable}
import os, subprocess, sys
real, version, hidden = {bundled_ffmpeg()!r}, {version!r}, {hide_filter!r}
args = sys.argv[1:]
if version and "-version" in args:
    print(f"ffmpeg version {{version}} Copyright (c) 2000-2021 the FFmpeg developers")
    sys.exit(0)
if hidden and ("-filters" in args or "full" in args):
    out = subprocess.run([real, *args], capture_output=True, text=True).stdout
    block = False
    for line in out.splitlines():
        if line.startswith(hidden + " AVOptions:"):
            block = True
        elif block and not line.startswith(" "):
            block = False
        parts = line.split()
        if block or (len(parts) > 1 and parts[1] == hidden):
            continue
        print(line)
    sys.exit(0)
os.execv(real, [real, *args])
""",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def fresh_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``ffmpeg_choice`` asked anew, with its own store of answers and no HEARING_FFMPEG."""
    monkeypatch.delenv(media.FFMPEG_ENV, raising=False)
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))
    media.ffmpeg_choice.cache_clear()
    yield
    media.ffmpeg_choice.cache_clear()


@pytest.mark.usefixtures("fresh_choice")
def test_a_path_ffmpeg_without_loudnorm_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_ffmpeg(tmp_path / "bin", hide_filter="loudnorm")
    version, missing = media.assess_ffmpeg(str(fake))
    assert version == media.assess_ffmpeg(bundled_ffmpeg())[0]
    assert missing == ["filter loudnorm (loudness normalisation (EBU R 128))"]
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    choice = media.ffmpeg_choice()
    assert choice.source == "bundled" and choice.path == bundled_ffmpeg()
    assert choice.passed_over == (f"the ffmpeg on PATH ({fake}, {version}) lacks filter loudnorm "
                                  "(loudness normalisation (EBU R 128))",)  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert lines == [f"{choice.passed_over[0]}; using the bundled ffmpeg {choice.version} instead"]


@pytest.mark.usefixtures("fresh_choice")
def test_the_answer_is_remembered_per_binary(tmp_path: Path) -> None:
    fake = fake_ffmpeg(tmp_path / "bin", version="4.4.2-0ubuntu0.22.04.1")
    first = media.assess_ffmpeg(str(fake))
    assert first[1] == ["version 4.4.2-0ubuntu0.22.04.1 is older than 5.1, the oldest supported"]
    store = tmp_path / "cache" / "ffmpeg-checks.json"
    assert store.is_file()
    # Asked again, the binary is not run: the same script made to fail everything, with the same size
    # and time, still gets the remembered answer; once its time changes, it is asked anew.
    text = fake.read_text(encoding="utf-8")
    stat = fake.stat()
    call = "os.execv(real, [real, *args])"
    fake.write_text(text.replace(call, "sys.exit(3)".ljust(len(call))), encoding="utf-8")
    os.utime(fake, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fake.stat().st_size == stat.st_size
    assert media.assess_ffmpeg(str(fake)) == first
    os.utime(fake, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    version, missing = media.assess_ffmpeg(str(fake))
    assert version == "" and missing[0].startswith("it does not run")
    # A damaged store is asked anew, never a crash.
    store.write_text("{ not json", encoding="utf-8")
    assert media.assess_ffmpeg(bundled_ffmpeg())[1] == []


@pytest.mark.usefixtures("fresh_choice")
def test_a_named_ffmpeg_that_falls_short_is_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_ffmpeg(tmp_path / "bin", version="4.4.2")
    monkeypatch.setenv(media.FFMPEG_ENV, str(fake))
    with pytest.raises(MissingToolError) as caught:
        media.ffmpeg_choice()
    assert caught.value.exit_code == 4
    assert "4.4.2 is older than 5.1" in str(caught.value) and media.FFMPEG_ENV in str(caught.value)


def _ffmpegs() -> list[str]:
    """The bundled ffmpeg and, where there is one, the system's."""
    import shutil

    found = [bundled_ffmpeg()]
    system = shutil.which("ffmpeg")
    if system and Path(system).resolve() != Path(found[0]).resolve():
        found.append(system)
    return found


def mov_text_samples(clip: Path) -> list[str]:
    """The text of every cue in the clip's mov_text track, as stored (3GPP timed text: length, text)."""
    import av

    texts = []
    with av.open(str(clip)) as container:
        stream = next(s for s in container.streams if s.type == "subtitle")
        for packet in container.demux(stream):
            data = bytes(packet)
            if len(data) >= 2 and int.from_bytes(data[:2], "big"):
                texts.append(data[2 : 2 + int.from_bytes(data[:2], "big")].decode("utf-8"))
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("binary", _ffmpegs(), ids=lambda b: "bundled" if b == bundled_ffmpeg() else "system")
def test_a_clip_without_one_recognised_word_still_gets_its_subtitle_track(
    binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement flagged "no text recognised": the join gets no cues at all. ffmpeg (5.1 and 9.x)
    refuses an empty SRT as input; the form still asks for a selectable track. And a person's text with
    what ffmpeg reads as markup in SubRip reaches the track as typed."""
    from pipeline.config import Form
    from pipeline.stages import render
    from pipeline.stages.subtitles.io import to_soft_ass
    from pipeline.stages.subtitles.rules import Cue

    monkeypatch.setenv(media.FFMPEG_ENV, binary)
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))
    media.ffmpeg_choice.cache_clear()
    try:
        segment = tmp_path / "segment.mov"
        media.run_ffmpeg(
            ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:d=2",
             "-f", "lavfi", "-i", "sine=d=2", "-c:v", "libx264", "-c:a", "pcm_s16le", str(segment)],
            what="make a segment",
        )  # fmt: skip
        form = Form.model_validate({"subtitles": {"mode": "soft"}})
        (tmp_path / "list.txt").write_text(render.concat_list([segment]), encoding="utf-8")
        typed = (("{x} <what> & -->",), ("a\\b \\N {y \\}", "Æøå …"))
        for cues in ((), tuple(Cue(k * 900, k * 900 + 800, lines) for k, lines in enumerate(typed))):
            soft = tmp_path / "soft.ass"
            soft.write_text(to_soft_ass(cues), encoding="utf-8")
            target = tmp_path / "clip.mp4"
            media.run_ffmpeg(
                render.join_args(
                    tmp_path / "list.txt", form, target, soft_subtitles=soft, language="da", title="Møde"
                ),
                what="join",
            )
            tracks = media.read_file_facts(target).tracks
            assert [(t.kind, t.codec, t.language) for t in tracks if t.kind == "subtitle"] == [
                ("subtitle", "mov_text", "dan")
            ]
            # Every character reaches the track as typed (a word joiner keeps "\\N" from being a break).
            stored = [text.replace("\u2060", "") for text in mov_text_samples(target)]
            assert stored == ["\n".join(c.lines) for c in cues]
    finally:
        media.ffmpeg_choice.cache_clear()


def _filters_used(args: list[str]) -> set[tuple[str, str]]:
    """(filter, option) of every filter in a command's graphs; (filter, "") for one without options."""
    import re

    used: set[tuple[str, str]] = set()
    for flag, graph in itertools.pairwise(args):
        if flag not in ("-filter_complex", "-vf", "-af"):
            continue
        for step in re.split(r"(?<!\\)[;,]", graph):
            body = re.sub(r"^(\[[^\]]*\])+", "", step).split("[")[0]
            name, _, options = body.partition("=")
            keys = [o.split("=", 1)[0] for o in re.split(r"(?<!\\):", options) if "=" in o]
            used |= {(name, key) for key in keys} or {(name, "")}
    return used


def test_every_filter_and_option_a_command_uses_is_asked_of_ffmpeg(tmp_path: Path) -> None:
    """A filter or option missing from the list would pass an ffmpeg that then fails mid-run."""
    from dataclasses import replace

    from pipeline.config import Form
    from pipeline.models import AudioInfo, Consent, MediaProbe, Recording, Statement, VideoInfo
    from pipeline.stages import render
    from pipeline.stages.cut import Cut, Part

    form = Form.model_validate({})
    audio = AudioInfo(1, "aac", 48000, 2, "stereo", 30_000)
    video = VideoInfo(0, "h264", 1920, 1080, 0, 25.0, False, "yuv420p", "1:1")
    filmed = Statement("s01", Recording("a.mp4", 1, "sha"), MediaProbe("mov", 30_000, video, (audio,)),
                       1, None, None, None, Consent(), None)  # fmt: skip
    heard = Statement("s02", Recording("b.m4a", 1, "sha"), MediaProbe("mov", 30_000, None, (audio,)),
                      1, None, None, None, Consent(), None)  # fmt: skip
    cut = Cut("s01", 1000, 21_000, "speech")
    part = Part("statement", "s01", 50, 500, 25.0)
    measured = media.Loudness(-20.0, -3.0, 5.0, -30.0, 0.1)
    png, ass, out = tmp_path / "card.png", tmp_path / "s.ass", tmp_path / "out.mov"
    commands = [
        render.statement_args(tmp_path / "a.mp4", filmed, cut, part, form, measured, out,
                              subtitles=ass, fonts_dir=tmp_path, card_png=None),
        render.statement_args(tmp_path / "b.m4a", heard, cut, part, form, measured, out,
                              subtitles=ass, fonts_dir=tmp_path, card_png=png),
        render.card_args(png, part, form, out),
        render.meter_args(tmp_path / "a.mp4", 1, form),
        render.loudnorm_pass_args(tmp_path / "a.mp4", 1, cut, form),
        media.r128_args(out),
        # Many channels in no known order are mixed by pan.
        render.meter_args(tmp_path / "c.wav", 0, form, replace(audio, channels=48, layout="48 channels")),
    ]  # fmt: skip
    wanted = {need.name: set(need.options) for need in needs.FILTERS}
    used = set().union(*(_filters_used(command) for command in commands))
    assert {name for name, _ in used} >= {"loop", "setpts", "subtitles", "loudnorm", "tpad", "ebur128", "pan"}
    demuxers = {value for command in commands for flag, value in itertools.pairwise(command) if flag == "-f"}
    assert "image2" in demuxers and "image2" in needs.DEMUXERS
    missing = sorted((n, key) for n, key in used if n not in wanted or (key and key not in wanted[n]))
    assert not missing, missing


def _priority_of_what_it_starts(command: str) -> tuple[int, int]:
    """The nice value and scheduling policy of a process a command run as ffmpeg runs starts (read from
    /proc by that process itself, after the parent has set them)."""
    from pipeline.media import process

    done = process.run("/bin/sh", ["-c", f"sleep 0.3; {command}"], what="read its own priority")
    fields = done.stdout.rsplit(")", 1)[1].split()  # from field 3 on (the name may hold spaces)
    return int(fields[19 - 3]), int(fields[41 - 3])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the idle class is Linux's")
def test_work_done_ahead_yields_every_core_to_the_engine() -> None:
    """ffmpeg run for work ahead, and every thread and process it starts, is in the idle class (nice
    alone let its many threads take a large share from the engine's few); the run's own ffmpeg is not."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    with media.lower_priority():
        nice, policy = _priority_of_what_it_starts("cat /proc/self/stat")
    assert policy == os.SCHED_IDLE
    assert nice == min(19, own + media.AHEAD_NICENESS)
    nice, policy = _priority_of_what_it_starts("cat /proc/self/stat")
    assert (nice, policy) == (own, os.SCHED_OTHER)
