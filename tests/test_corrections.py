"""A person's correction always reaches the committee: one timing model for every cue, the same judgement
by the run, the review page and the check, and a corrected delivery that passes its own check.

The cues corrected here are the real ones: the recognised cues of a meeting made of every real recording
in tests/media (heard by the real engine once a session), and of the demo meeting.
"""

from __future__ import annotations

import json
import re
import shutil
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SMALL_FORM, TEST_OUTPUT, DemoRun, run_here
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from pipeline.config import Form, Meeting, StatementEdit
from pipeline.meeting_facts import MeetingFacts
from pipeline.models import Consent, MediaProbe, Recording, Rejection, Statement, StatementTranscript
from pipeline.review.view import statement_view
from pipeline.stages import clip, cut, edits, timing, transcript
from pipeline.stages.check.subtitles import speech_spans, subtitle_breaks
from pipeline.stages.subtitles.io import parse_srt, to_srt
from pipeline.stages.subtitles.rules import Cue, SubtitleRules
from pipeline.stages.transcribe import transcript_from_json

REAL = (
    "da-nst-u0013002.wav",
    "da-nst-u0042008.wav",
    "da-nst-u0042009.wav",
    "da-nst-u0042010.wav",
    "da-nst-u0042011.wav",
    "da-nst-u0042012.wav",
    "da-udhr-preamble.mp3",
    "en-jfk.flac",
    "en-talking-head.mp4",
    "portrait-rotated-iphone.mov",
)
NO_SPEECH = "portrait-rotated-iphone.mov"  # near-silent: rejected as no speech, with its reason


@dataclass(frozen=True)
class Run:
    meeting: Path
    out: Path
    form: Path


def report_of(out: Path) -> dict:
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def delivered(out: Path, suffix: str) -> Path:
    # ".mp4" is the clip, not its clean master beside it ("-master.mp4" asks for that).
    (found,) = (
        p for p in (out / "delivery").glob(f"*{suffix}") if "-master" in suffix or "-master." not in p.name
    )
    return found


@pytest.fixture(scope="session")
def real_meeting(real_media: Path) -> Run:
    """One meeting of every real recording, run once a session: its recognised cues are what the tests
    below correct (always in a copy)."""
    root = TEST_OUTPUT / "runs" / "real-meeting"
    shutil.rmtree(root, ignore_errors=True)
    meeting = root / "meeting"
    meeting.mkdir(parents=True)
    for name in REAL:
        shutil.copyfile(real_media / name, meeting / name)
    form = root / "lille.yaml"
    # The picture as small as a form allows: these tests are about the words and their timing.
    tiny = SMALL_FORM.replace("width: 640, height: 360", "width: 320, height: 180")
    form.write_text(tiny, encoding="utf-8")
    out = root / "out"
    result = run_here("run", meeting, "--out", out, "--form", form, "--quiet")
    assert result.returncode == 5, result.stderr  # the near-silent phone clip is rejected, the rest delivered
    assert NO_SPEECH in result.stderr and "no speech" in result.stderr
    return Run(meeting, out, form)


def copy_of(run: Run, name: str) -> Run:
    """The run's output folder copied, so that a test's corrections reach no other test."""
    target = TEST_OUTPUT / "runs" / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run.out, target, symlinks=True)
    # run.json names the output folder it was made in; `hearing render` works where it is.
    return Run(run.meeting, target, run.form)


# --------------------------------------------------------------------------------- one corrected word

_CUE_BLOCK = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n((?:.+\n)+)")


def ms_of(stamp: str) -> int:
    h, m, rest = stamp.split(":")
    s, ms = rest.split(",")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def edit_each_statement(
    out: Path, change: Callable[[list[Cue], tuple[int, int]], list[Cue]]
) -> dict[str, str]:
    """Each statement's SRT in OUT/edits changed by ``change`` (given its cues and the statement's cut in
    the recording), as a person would in a text editor; returns the new SRT texts by recording."""
    report = report_of(out)
    cuts = report["cuts"]
    changed = {}
    for statement in report["statements"]:
        srt = out / "edits" / f"{statement['file']}.srt"
        cues = parse_srt(srt.read_text(encoding="utf-8"))
        cut_of = cuts[statement["id"]]
        new = change(cues, (cut_of["in_ms"], cut_of["out_ms"]))
        text = to_srt(new)
        srt.write_text(text, encoding="utf-8")
        changed[statement["file"]] = text
    return changed


def in_the_cut(cues: list[Cue], window: tuple[int, int]) -> list[int]:
    return [k for k, c in enumerate(cues) if window[0] <= (c.start_ms + c.end_ms) // 2 < window[1]]


def corrected_word(word: str) -> str:
    """A word written anew, as long as it was: the cue needs the same time to be read."""
    return ("Rettelsen" * (len(word) // 9 + 1))[: len(word)]


def one_word_corrected(cues: list[Cue], window: tuple[int, int]) -> list[Cue]:
    """The first word of the cue in the middle of the clip's part of the recording, written anew."""
    inside = in_the_cut(cues, window)
    k = inside[len(inside) // 2]
    first, *rest = cues[k].lines
    words = first.split(" ")
    words[0] = corrected_word(words[0])
    cues[k] = Cue(cues[k].start_ms, cues[k].end_ms, (" ".join(words), *rest))
    return cues


def corrected_texts(out: Path) -> list[str]:
    """The corrected cue of each statement, as ``one_word_corrected`` leaves it in OUT/edits."""
    report = report_of(out)
    texts = []
    for statement in report["statements"]:
        cues = parse_srt((out / "edits" / f"{statement['file']}.srt").read_text(encoding="utf-8"))
        cut_of = report["cuts"][statement["id"]]
        inside = in_the_cut(cues, (cut_of["in_ms"], cut_of["out_ms"]))
        texts.append(" ".join(cues[inside[len(inside) // 2]].lines))
    assert texts, "no statement was delivered to correct"
    return texts


def last_cue_past_the_out_point(cues: list[Cue], window: tuple[int, int]) -> list[Cue]:
    """The last cue of the clip's part made to end 3 s after the statement's out point."""
    k = in_the_cut(cues, window)[-1]
    cues[k] = Cue(cues[k].start_ms, window[1] + 3000, cues[k].lines)
    return cues


def srt_times(out: Path) -> list[tuple[int, int]]:
    return [(c.start_ms, c.end_ms) for c in parse_srt(delivered(out, ".srt").read_text(encoding="utf-8"))]


def assert_render_delivers_and_checks(run: Run, expected_codes: tuple[int, ...] = (0, 5)) -> None:
    rendered = run_here("render", run.out, "--quiet")
    assert rendered.returncode in expected_codes, rendered.stderr
    assert "Traceback" not in rendered.stderr
    checked = run_here("check", delivered(run.out, ".mp4"), "--form", run.form)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    qc = json.loads(delivered(run.out, "qc-report.json").read_text(encoding="utf-8"))
    assert qc["conforms"], qc["failed"]


@pytest.mark.slow
def test_one_corrected_word_in_every_real_statement_is_delivered_and_passes_its_check(
    real_meeting: Run,
) -> None:
    run = copy_of(real_meeting, "real-one-word")
    before = srt_times(run.out)
    edit_each_statement(run.out, one_word_corrected)
    assert_render_delivers_and_checks(run)
    report = report_of(run.out)
    assert len(report["statements"]) == len(REAL) - 1  # every recording but the near-silent one
    assert all(s["edited"] for s in report["statements"])
    shown = " ".join(" ".join(c.lines) for c in parse_srt(delivered(run.out, ".srt").read_text()))
    words = json.loads(delivered(run.out, "-transkription.json").read_text(encoding="utf-8"))
    said = " ".join(s["text"] for s in words["statements"])
    for text in corrected_texts(run.out):
        assert text in shown and text in said
    # A correction of the text only keeps every cue where the pipeline put it.
    assert srt_times(run.out) == before


@pytest.mark.slow
def test_a_cue_moved_past_the_out_point_in_every_real_statement_is_delivered(real_meeting: Run) -> None:
    run = copy_of(real_meeting, "real-past-out")
    cuts_before = report_of(run.out)["cuts"]
    edit_each_statement(run.out, last_cue_past_the_out_point)
    assert_render_delivers_and_checks(run)
    report = report_of(run.out)
    # A person's cue is brought inside its statement: the cut grows only by the reading time its last
    # subtitle may run on (clip.reading_run_on), never to where the person's cue ended.
    run_on = max(SubtitleRules().min_duration_ms, 400)
    for sid, c in report["cuts"].items():
        was = cuts_before[sid]
        assert c["in_ms"] == was["in_ms"] and was["out_ms"] <= c["out_ms"] <= was["out_ms"] + run_on
    assert len(report["cuts"]) == len(report["statements"]) == len(REAL) - 1
    moved = [w for w in report["subtitles"]["warnings"] if any("out point" in x for x in w["warnings"])]
    assert len(moved) == len(report["statements"])


@pytest.mark.slow
def test_continuous_real_speech_is_not_flagged_as_words_over_silence(real_meeting: Run) -> None:
    """The UDHR reading is continuous speech, yet Whisper gives several of its segments a high no-speech
    probability: the voice detector must agree before a word is called over silence."""
    report = report_of(real_meeting.out)
    (udhr,) = [s for s in report["statements"] if s["file"] == "da-udhr-preamble.mp3"]
    key = next(
        s["key"] for s in report["stages"] if s["stage"] == "transcribe" and s["statement"] == udhr["id"]
    )
    stored = json.loads(
        (real_meeting.out / "work" / "transcripts" / f"{key}.json").read_text(encoding="utf-8")
    )
    doubted = [seg for seg in stored["segments"] if seg["no_speech_prob"] > 0.6]
    assert doubted, "no segment Whisper doubts: this recording no longer tests the voice detector's say"
    words = [w for seg in stored["segments"] for w in seg["words"]]
    over = [w for w in words if "over_silence" in w.get("flags", ())]
    assert len(over) <= len(words) // 20, [w["text"] for w in over]


def demo_copy(demo_run: DemoRun, name: str) -> Run:
    assert demo_run.result.returncode == 0, demo_run.result.stderr  # Lise is left out for want of consent
    form = Path(demo_run.report["options"]["form"])
    return copy_of(Run(Path(demo_run.report["options"]["meeting_dir"]), demo_run.out, form), name)


@pytest.mark.slow
def test_one_corrected_word_in_every_demo_statement_and_a_cue_past_its_out_point(demo_run: DemoRun) -> None:
    run = demo_copy(demo_run, "demo-corrected")
    before = srt_times(run.out)
    cuts = report_of(run.out)["cuts"]
    edit_each_statement(run.out, one_word_corrected)
    assert_render_delivers_and_checks(run)
    assert srt_times(run.out) == before
    # A corrected word changes the burned-in text only: the clean master's segment of a statement whose
    # cut stayed is reused, and the pass that burns the text into it is made again.
    report = report_of(run.out)
    same = [sid for sid, cut in report["cuts"].items() if cut == cuts.get(sid)]
    assert same, "every cut moved: nothing shows the clean segments reused"
    for sid in same:
        made = [
            (s["stage"], s["cached"])
            for s in report["stages"]
            if s["statement"] == sid and s.get("part") == "statement" and s["stage"] in ("render", "burn")
        ]
        assert all(cached for stage, cached in made if stage == "render"), (sid, made)
        assert any(not cached for stage, cached in made if stage == "burn"), (sid, made)
    shown = " ".join(" ".join(c.lines) for c in parse_srt(delivered(run.out, ".srt").read_text()))
    assert all(text in shown for text in corrected_texts(run.out))
    edit_each_statement(run.out, last_cue_past_the_out_point)
    assert_render_delivers_and_checks(run)


# ------------------------------------------------------------------------------------ property test


@dataclass(frozen=True)
class Heard:
    statement: Statement
    transcript: StatementTranscript


@pytest.fixture(scope="session")
def real_statements(real_meeting: Run) -> list[Heard]:
    """The real meeting's statements with the words the engine heard (from its cache)."""
    report = report_of(real_meeting.out)
    keys = {s["statement"]: s["key"] for s in report["stages"] if s["stage"] == "transcribe" and s.get("key")}
    found = []
    for s in report["statements"]:
        stored = json.loads((real_meeting.out / "work" / "transcripts" / f"{keys[s['id']]}.json").read_text())
        probe = MediaProbe("x", s["duration_ms"], None, ())
        statement = Statement(
            s["id"], Recording(s["file"], 1, s["sha256"]), probe, 0, None, None, None, Consent(), None
        )
        found.append(Heard(statement, transcript_from_json(stored)))
    return found


FORMS = [
    Form.model_validate({}),
    Form.model_validate(
        {"video": {"fps": 25}, "subtitles": {"max_lines": 1, "max_chars_per_line": 30, "max_cps": 12}}
    ),
    Form.model_validate({"video": {"fps": 30}, "subtitles": {"min_gap_frames": 12, "min_duration": 1.2}}),
]
WORD = st.text(alphabet=string.ascii_lowercase + "æøåÆØÅ,.", min_size=1, max_size=14).filter(
    lambda w: any(c.isalpha() for c in w)
)


def corrected_cues(data: st.DataObject, cues: list[Cue], duration_ms: int) -> list[Cue]:
    """Random corrections a person could make: words replaced, added or removed; cues split, merged,
    shifted or stretched."""
    cues = list(cues)
    for _ in range(data.draw(st.integers(1, 6))):
        if not cues:
            break
        k = data.draw(st.integers(0, len(cues) - 1))
        cue = cues[k]
        words = " ".join(cue.lines).split()
        op = data.draw(st.sampled_from(["replace", "insert", "delete", "split", "merge", "shift", "stretch"]))
        if op in ("replace", "insert", "delete"):
            j = data.draw(st.integers(0, len(words) - 1))
            if op == "replace":
                words[j] = data.draw(WORD)
            elif op == "insert":
                words.insert(j, data.draw(WORD))
            else:
                del words[j]
            if words:
                cues[k] = Cue(cue.start_ms, cue.end_ms, (" ".join(words),))
            else:
                del cues[k]
        elif op == "split" and len(words) > 1:
            j = data.draw(st.integers(1, len(words) - 1))
            middle = cue.start_ms + (cue.end_ms - cue.start_ms) * j // len(words)
            if cue.start_ms < middle - 40 and middle + 40 < cue.end_ms:
                cues[k : k + 1] = [
                    Cue(cue.start_ms, middle - 40, (" ".join(words[:j]),)),
                    Cue(middle + 40, cue.end_ms, (" ".join(words[j:]),)),
                ]
        elif op == "merge" and k + 1 < len(cues):
            after = cues[k + 1]
            cues[k : k + 2] = [Cue(cue.start_ms, after.end_ms, (cue.text + " " + after.text,))]
        elif op == "shift":
            by = data.draw(st.integers(-3000, 3000))
            start = min(max(cue.start_ms + by, 0), duration_ms)
            cues[k] = Cue(start, max(start + 1, min(cue.end_ms + by, duration_ms + 60_000)), cue.lines)
        elif op == "stretch":
            end = min(
                max(cue.end_ms + data.draw(st.integers(-2000, 4000)), cue.start_ms + 1), duration_ms + 60_000
            )
            cues[k] = Cue(cue.start_ms, end, cue.lines)
    return sorted(cues, key=lambda c: (c.start_ms, c.end_ms))


def fits_at_all(count: int, window: tuple[int, int], rules: SubtitleRules) -> bool:
    """Whether ``count`` cues could each be shown for the shortest time, one after another with the
    minimum gap, ending the minimum gap before the window ends: some legal timing exists."""
    return count * rules.min_duration_ms + count * rules.min_gap_ms <= window[1] - window[0]


@pytest.mark.slow
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_correction_breaks_a_rule_a_legal_timing_could_keep_and_all_three_say_the_same(
    real_statements: list[Heard], data: st.DataObject
) -> None:
    heard = data.draw(st.sampled_from([h for h in real_statements if h.transcript.words]))
    form = data.draw(st.sampled_from(FORMS))
    rules = SubtitleRules.from_form(form)
    statement, duration = heard.statement, heard.statement.probe.duration_ms
    starting = list(edits.starting_cues(heard.transcript, duration, rules))
    cues = corrected_cues(data, starting, duration)
    points: dict[str, float] = {}
    if data.draw(st.booleans()):
        points["in"] = data.draw(st.integers(0, max(duration - 500, 0))) / 1000
    if data.draw(st.booleans()):
        points["out"] = data.draw(st.integers(round(points.get("in", 0) * 1000) + 200, duration)) / 1000
    found = edits.StatementEdits(
        statement.recording.relpath, tuple(cues), StatementEdit.model_validate(points)
    )

    fixed, corrected, _, _ = edits.corrected_one(statement, heard.transcript, found, rules)
    assert corrected is not None
    planned = cut.plan_cut(fixed, corrected, form)
    assume(not isinstance(planned, Rejection))
    assert not isinstance(planned, Rejection)
    clipped = cut.words_in_cut(corrected, planned)
    timeline = clip.plan_timeline_cues([fixed], {fixed.id: planned}, {fixed.id: clipped}, form, title=None)
    problems = clip.problems(timeline, rules)

    # The run: what it judges before it renders.
    speech, windows = timeline.cue_context()
    run = timing.judge(timeline.cues, rules, timeline.duration_ms, speech=speech, windows=windows)
    part = next(p for p in timeline.parts if p.kind == "statement")
    fitted = timeline.fitted[fixed.id]
    event(f"the render stops: {bool(problems)}")
    event(f"a person's times moved: {any(fitted.moved)}")
    event(f"warnings: {any(b.severity == 'warn' for b in run)}")
    if problems:
        # Only where no timing could show the cues each for the shortest time.
        assert all(p.rule == "subtitles.min_duration" for p in problems), problems
        assert not fits_at_all(len(fitted.sources), (part.start_ms, part.end_ms), rules)
    else:
        assert [b for b in run if b.severity == "fail"] == [], (cues, timeline.cues)

    # The page: the same judgement, by the person's cue.
    view = statement_view(fixed, corrected, form, 1)
    assert list(view.blocking) == [p.text for p in problems]
    own = [n for n, c in enumerate(timeline.cues, 1) if c.kind == "speech"]
    by_source = {n: fitted.sources[k] for k, n in enumerate(own)}
    page = sorted((n["cue"], n["rule"], n["severity"]) for n in view.notes if n["kind"] == "rule")
    assert page == sorted((by_source[b.cue], b.rule, b.severity) for b in run if b.cue in by_source)

    # The check: the same judgement from the delivered files alone.
    srt = parse_srt(to_srt(timeline.cues))
    assert [(c.start_ms, c.end_ms, c.lines) for c in srt] == [
        (c.start_ms, c.end_ms, c.lines) for c in timeline.cues
    ]
    document = transcript.render_json(
        transcript.document(
            MeetingFacts.named(Meeting(), "m"), form, [fixed], {fixed.id: clipped},
            engine="e", model="m", language="da",
            starts_ms={fixed.id: part.start_ms},
        )
    )  # fmt: skip
    spans = speech_spans(srt, document)
    checked = subtitle_breaks(srt, form, timeline.duration_ms, speech=spans, timeline=clip.describe(timeline))
    assert sorted((b.cue, b.rule, b.severity) for b in checked) == sorted(
        (b.cue, b.rule, b.severity) for b in run
    )
