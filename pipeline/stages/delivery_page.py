"""The delivery page: ``delivery/index.html``, one self-contained page for the official.

It works from a USB stick or a shared drive with no network: the clip in an HTML5 player with the
captions on, the transcript beside it (click a cue to go there; the one being spoken is highlighted), the
meeting's facts and the agreed form, the check and the approvals, and the checksums. Browsers refuse to
load a ``<track src=…>`` or fetch a sibling file from a page opened with ``file://``, so the cues and the
transcript are inside the page and the captions are added with the TextTrack API. A Content Security
Policy lets the page load nothing but the clip beside it.

Pure: ``render`` turns the data into the page, each value escaped for where it lands (``pipeline.escape``):
HTML text and attributes, the cues' JSON inside a ``<script>`` element, the clip's URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import escape
from pipeline.models import approved as is_approved
from pipeline.stages.letters import Facts
from pipeline.stages.subtitles.rules import Cue
from pipeline.stages.transcript import TranscriptDocument, approval_line, entry_heading
from pipeline.texts import checks as check_words
from pipeline.texts import documents as words
from pipeline.texts.documents import danish_date
from pipeline.texts.page import LABELS
from pipeline.timefmt import clock, duration_words

PAGE = "index.html"
# Nothing but the clip beside the page may be loaded: no network, whatever the page is opened from.
CSP = "default-src 'none'; media-src 'self' file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


@dataclass(frozen=True)
class PageData:
    clip: str  # the clip's file name, beside the page
    language: str  # of the captions
    page_language: str  # of the page's own words: Danish unless the form says otherwise
    facts: Facts
    document: TranscriptDocument
    cues: tuple[Cue, ...]
    qc: Sequence[Mapping[str, Any]]  # the checks: check, title, status, measured
    burned: bool = False  # the subtitles are in the picture already: captions on would show them twice


def _cues_json(data: PageData) -> list[dict[str, Any]]:
    return [
        {
            "start": c.start_ms / 1000,
            "end": c.end_ms / 1000,
            "text": "\n".join(c.lines),
            "statement": c.statement_id,
        }
        for c in data.cues
    ]


def render(data: PageData) -> str:
    danish = data.page_language == "da"
    t = LABELS["da" if danish else "en"]
    f = data.facts
    esc = escape.html_text
    kinds = f" ({words.statements_by_kind(f.statements, f.sound_only)})"
    rows = [
        (t["date"], danish_date(f.meeting.date) if f.meeting.date else None),
        (t["place"], f.meeting.place),
        (t["organiser"], f.meeting.organiser),
        (t["committee"], f.meeting.committee),
        (t["form"], f.form_name),
        (t["agreed_with"], f.agreed_with),
        (t["meeting"], danish_date(f.committee_meeting) if f.committee_meeting else t["next"]),
        (t["length"], duration_words(f.clip_ms)),
        (t["statements"], str(f.statements) + (kinds if danish and f.sound_only else "")),
        (t["check"], f"{t['passed'] if f.check_passed else t['failed']} ({f.check_verdict})"),
        (t["approved"], f"{f.approved} {t['of']} {f.statements}"),
        # When, never who: the withdrawn person is named nowhere in the delivery.
        (
            t["withdrawn"],
            f"{len(f.withdrawn)} {t['withdrawn_note']} {', '.join(danish_date(d) for d in f.withdrawn)}"
            if f.withdrawn
            else None,
        ),
        (words.MODEL, words.model_text(f.model))
        if danish
        else (words.MODEL_EN, words.model_text_en(f.model)),
    ]
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows if v)
    statements = []
    for entry in data.document.entries:
        sid = entry.statement.id
        cues = "".join(
            f'<li><button type="button" class="cue" data-start="{c.start_ms / 1000:.3f}" '
            f'data-end="{c.end_ms / 1000:.3f}">{esc(" ".join(c.lines))}</button></li>'
            for c in data.cues
            if c.statement_id == sid and c.kind == "speech"
        )
        approved = "approved" if is_approved(entry.approval) else "unapproved"
        statements.append(
            f'<section class="statement" id="{esc(sid)}"><h3>{esc(entry_heading(entry, True))}</h3>'
            f'<p class="{approved}">{esc(approval_line(entry))}</p><ol class="cues">{cues}</ol></section>'
        )
    checks = "".join(_check_item(c, data.cues, danish) for c in data.qc)
    files = "".join(f"<li><code>{esc(digest)}</code> {esc(name)}</li>" for name, digest in f.files)
    payload = escape.script_json(
        {"cues": _cues_json(data), "language": data.language, "label": t["captions"], "burned": data.burned}
    )
    title = f"{t['kind']}: {f.meeting.title}"
    more = f'<p class="note">{esc(check_words.MORE)}</p>' if danish else ""
    return f"""<!doctype html>
<html lang="{esc(data.page_language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header><p class="kind">{esc(t["kind"])}</p><h1>{esc(f.meeting.title)}</h1></header>
<main>
<div class="player">
<video id="clip" controls preload="metadata" src="{escape.href(data.clip)}"></video>
<h2>{esc(t["facts"])}</h2>
<dl>{facts}</dl>
<h2>{esc(t["check"])}</h2>
<ul class="checks">{checks}</ul>
{more}<h2>{esc(t["files"])}</h2>
<ul class="files">{files}</ul>
</div>
<div class="transcript">
<h2>{esc(t["transcript"])}</h2>
<p class="note">{esc(t["machine"])}</p>
{"".join(statements)}
</div>
</main>
<script type="application/json" id="cues">{payload}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""


# A subtitle a check's detail names: "subtitle 4 at 00:00:18,110 'Men skars…'" (its text may be cut there).
_NAMED_CUE = re.compile(r"\bat (\d{2}:\d{2}:\d{2},\d{3})\b")
_MORE = re.compile(r"… and (\d+) more")


def _named_cues(detail: str, cues: Sequence[Cue]) -> tuple[list[tuple[str, str]], int]:
    """The subtitles a check's detail names, each with its time and its whole text from the delivered
    cues (the detail shortens it), found by the time it starts; and how many more the detail counts."""
    by_time = {clock(c.start_ms): " ".join(c.lines) for c in cues}
    named: list[tuple[str, str]] = []
    for line in detail.splitlines():
        found = _NAMED_CUE.search(line)
        if found and found.group(1) in by_time and (found.group(1), by_time[found.group(1)]) not in named:
            named.append((found.group(1), by_time[found.group(1)]))
    more = _MORE.search(detail)
    return named, int(more.group(1)) if more else 0


def _check_item(check: Mapping[str, Any], cues: Sequence[Cue], danish: bool) -> str:
    """One check in the list: its name and result in the page's language, and for a check that warns or
    fails, the subtitles it is about, each whole with its time."""
    esc = escape.html_text
    status = str(check.get("status", ""))
    name = check_words.label(str(check.get("check", "")), str(check.get("title", "")), danish=danish)
    measured = str(check.get("measured", ""))
    if danish:
        shown = check_words.STATUS.get(status, status)
        if measured and check_words.neutral(measured):
            shown += f" · {measured}"
    else:
        shown = measured
    named, more = _named_cues(str(check.get("detail", "")), cues) if status != "pass" else ([], 0)
    listed = ""
    if named:
        # The subtitle is the person's words, not the page's: translate="no".
        items = "".join(
            f'<li><span class="time">{esc(at)}</span> <q translate="no">{esc(text)}</q></li>'
            for at, text in named
        )
        extra = f"<li>{esc(check_words.more(more) if danish else f'and {more} more')}</li>" if more else ""
        intro = check_words.CUES if danish else "Subtitles concerned:"
        listed = f'<p class="named">{esc(intro)}</p><ul class="named">{items}{extra}</ul>'
    return f'<li class="{esc(status)}">{esc(name)}: {esc(shown)}{listed}</li>'


STYLE = """
body{margin:0;font-family:'DejaVu Sans','Segoe UI',system-ui,sans-serif;color:#1d232b;background:#fff}
header{padding:.8rem 1.2rem;border-bottom:1px solid #d5dbe1}header h1{margin:0;font-size:1.4rem}
.kind{margin:0;color:#5b6673;font-size:.9rem}
main{display:grid;grid-template-columns:minmax(320px,1.2fr) 1fr;gap:1.2rem;padding:1rem 1.2rem}
.player video{width:100%;background:#000;border-radius:3px}
.player{position:sticky;top:.5rem;align-self:start}
h2{font-size:1.05rem;margin:1rem 0 .4rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem;margin:0}
dt{color:#5b6673}dd{margin:0}
.checks,.files{margin:0;padding-left:1.1rem;font-size:.85rem}
.checks .fail{color:#b3261e}.checks .warn{color:#8a5a00}
.files code{font-size:.7rem;word-break:break-all;color:#5b6673}
.checks li{overflow-wrap:anywhere}.checks .named{margin:.1rem 0;padding-left:1rem;color:#1d232b}
.checks p.named{padding:0}.checks .time{font-family:'DejaVu Sans Mono',monospace;color:#5b6673}
.transcript{max-height:calc(100vh - 6rem);overflow-y:auto}
.statement h3{font-size:1rem;margin:1rem 0 .2rem}.approved{color:#1e7b34;font-size:.8rem;margin:0}
.unapproved{color:#b3261e;font-size:.8rem;margin:0}.note{color:#5b6673;font-size:.8rem}
.cues{list-style:none;margin:.3rem 0;padding:0}
.cue{display:block;width:100%;text-align:left;font:inherit;background:none;border:0;border-radius:3px;
padding:.2rem .4rem;cursor:pointer;line-height:1.4}
.cue:hover{background:#f3f5f7}.cue.now{background:#fff4c2}
@media(max-width:800px){main{grid-template-columns:1fr}.player{position:static}}
"""

SCRIPT = """
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("cues").textContent);
  const video = document.getElementById("clip");
  // Captions from the page itself: a page opened from a file may not fetch a .vtt beside it.
  const track = video.addTextTrack("captions", data.label, data.language);
  for (const c of data.cues) track.addCue(new VTTCue(c.start, c.end, c.text));
  // On, unless the subtitles are burned into the picture: then the track waits in the player's menu.
  track.mode = data.burned ? "hidden" : "showing";
  const buttons = Array.from(document.querySelectorAll(".cue"));
  for (const button of buttons) {
    button.addEventListener("click", () => {
      video.currentTime = Number(button.dataset.start);
      video.play().catch(() => {});
    });
  }
  let shown = null;
  video.addEventListener("timeupdate", () => {
    const t = video.currentTime;
    const now = buttons.find((b) => Number(b.dataset.start) <= t && t < Number(b.dataset.end)) || null;
    if (now === shown) return;
    if (shown) shown.classList.remove("now");
    if (now) {
      now.classList.add("now");
      now.scrollIntoView({ block: "nearest" });
    }
    shown = now;
  });
  document.body.dataset.ready = "true";
})();
"""
