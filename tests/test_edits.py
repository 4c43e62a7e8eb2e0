"""Corrections in OUT/edits: pure functions over small inline data."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from test_cut import statement

from pipeline.config import StatementEdit
from pipeline.errors import ConfigError
from pipeline.models import Approval, Segment, ShownCue, StatementTranscript, Word
from pipeline.stages import edits
from pipeline.stages.subtitles.rules import Cue, SubtitleRules


def heard(*words: tuple[int, int, str]) -> StatementTranscript:
    built = tuple(Word(a, b, f" {t}", 0.5) for a, b, t in words)
    segment = Segment(built[0].start_ms, built[-1].end_ms, "".join(w.text for w in built), built)
    return StatementTranscript("s01", "da", "faster-whisper", "base", (segment,))


JFK = heard(
    (0, 500, "And"), (500, 800, "so"), (800, 1200, "my"), (1200, 1600, "fellow"), (1600, 2100, "Amerikans,")
)


RULES = SubtitleRules()


def shown(transcript: StatementTranscript, duration_ms: int = 10_000) -> StatementTranscript:
    return edits.shown_transcript(transcript, duration_ms, RULES)


def starting(transcript: StatementTranscript, duration_ms: int = 10_000) -> tuple[Cue, ...]:
    return edits.starting_cues(transcript, duration_ms, RULES)


def test_the_recognised_cues_are_the_statements_cues_with_their_words() -> None:
    cues = starting(JFK)
    seen = shown(JFK)
    assert [s.shown.lines for s in seen.segments if s.shown] == [c.lines for c in cues]
    assert seen.words == JFK.words  # every word, its time and flags, as recognised
    assert all(s.shown and s.shown.start_ms is None for s in seen.segments), "timed by the pipeline"


def test_an_unchanged_cue_keeps_every_word_and_time() -> None:
    again = edits.apply_cues(shown(JFK), starting(JFK), starting(JFK))
    assert again.words == JFK.words
    assert all(s.shown and s.shown.start_ms is None for s in again.segments)


def test_a_corrected_word_is_retimed_inside_the_words_it_replaces() -> None:
    (cue,) = starting(JFK)
    fixed_cue = Cue(cue.start_ms, cue.end_ms, ("And so my fellow", "Americans,"))
    corrected = edits.apply_cues(shown(JFK), [fixed_cue], starting(JFK))
    words = corrected.words
    assert [w.text for w in words] == [" And", " so", " my", " fellow", " Americans,"]
    assert words[:4] == JFK.words[:4]
    fixed = words[4]
    assert (fixed.start_ms, fixed.end_ms, fixed.probability) == (1600, 2100, 1.0)
    # A word a person wrote is no longer in doubt: only "edited" is left of its flags.
    assert fixed.flags == (edits.FLAG_EDITED,)
    # Only the text changed: the cue keeps the times the pipeline gives it, with the person's lines.
    (segment,) = corrected.segments
    assert segment.shown == ShownCue(("And so my fellow", "Americans,"), None, None, 0, 5)


def test_added_and_removed_words() -> None:
    (cue,) = starting(JFK)
    changed = Cue(cue.start_ms, cue.end_ms, ("And so, my dear fellow citizens",))
    words = edits.apply_cues(shown(JFK), [changed], starting(JFK)).words
    assert [w.text.strip() for w in words] == ["And", "so,", "my", "dear", "fellow", "citizens"]
    # "so," is the recognised "so" with the person's comma: same time, marked as edited.
    assert words[1].start_ms == 500 and edits.FLAG_EDITED in words[1].flags
    dear = words[3]
    # Between "my" and "fellow", which touch: it has no time of its own.
    assert (dear.start_ms, dear.end_ms) == (1200, 1200)
    assert all(a.start_ms <= b.start_ms for a, b in itertools.pairwise(words))
    assert edits.apply_cues(shown(JFK), [Cue(0, 2200, ("",))], starting(JFK)).words == ()


def test_a_cue_moved_in_time_keeps_its_words_and_its_own_times() -> None:
    cues = [Cue(0, 1000, ("And so",)), Cue(2500, 4000, ("my fellow Americans",))]
    corrected = edits.apply_cues(shown(JFK), cues, starting(JFK))
    assert [s.text for s in corrected.segments] == [" And so", " my fellow Americans"]
    # Matched over the whole statement: "my fellow" keep their recognised times although their cue
    # moved; the corrected word is timed inside its cue, where the person shows it.
    moved = corrected.segments[1].words
    assert [w.start_ms for w in moved[:2]] == [800, 1200]
    assert 2500 <= moved[2].start_ms <= moved[2].end_ms <= 4000
    assert [(s.shown.start_ms, s.shown.end_ms) for s in corrected.segments if s.shown] == [
        (0, 1000),
        (2500, 4000),
    ]


def test_flags_follow_the_corrected_text() -> None:
    doubtful = StatementTranscript(
        "s01",
        "da",
        "faster-whisper",
        "base",
        (
            Segment(
                0,
                3000,
                " nej nej nej nej tak",
                tuple(
                    Word(
                        i * 500, i * 500 + 400, f" {t}", 0.3, ("low_confidence", "repeated") if i < 4 else ()
                    )
                    for i, t in enumerate(["nej", "nej", "nej", "nej", "tak"])
                ),
            ),
        ),
    )
    (cue,) = starting(doubtful)
    fixed = edits.apply_cues(
        shown(doubtful), [Cue(cue.start_ms, cue.end_ms, ("nej tak",))], starting(doubtful)
    )
    assert [w.text.strip() for w in fixed.words] == ["nej", "tak"]
    # No loop is left: "repeated" goes; the word nobody changed is still doubted.
    assert fixed.words[0].flags == ("low_confidence",)


def test_the_starting_yaml_is_valid_and_changes_nothing() -> None:
    import yaml

    anna = statement(topic="Trafik på Skolevej", trim=(3200, 23400))
    data = yaml.safe_load(edits.starting_yaml(anna))
    fields = StatementEdit.model_validate(data)
    assert edits.apply_fields(anna, edits.StatementEdits("a.mp4", None, fields)) == anna
    assert edits.approval(fields, "sha256:" + "0" * 64) is None


@pytest.mark.parametrize(
    "name",
    [
        "a\nspeaker: Forged Name\nout: 2.0 #",
        "Anna # not a comment",
        "'quoted\" \\ back",
        "line\u2028separator",
        "tab\there",
        "- a list?",
        "{flow: map}",
        "&anchor *alias !!tag",
        "null",
        "true",
        "123",
    ],
)
def test_every_value_in_an_edits_yaml_is_written_by_the_serializer(name: str) -> None:
    import yaml

    hostile = statement(topic=name, trim=(3200, None))
    hostile = replace(hostile, speaker=name, recording=replace(hostile.recording, relpath=f"{name}.m4a"))
    # Commented out, meeting.yaml's values stay comments, whatever they hold.
    assert yaml.safe_load(edits.starting_yaml(hostile)) == {
        "approved": False,
        "approved_by": None,
        "approved_at": None,
        "approved_digest": None,
    }
    # Set by a person, they come back exactly; what a one-line field may not hold (a line break, a tab,
    # a line separator: config's text rules) is refused before it is ever written.
    if any(c in name for c in "\n\t\u2028"):
        with pytest.raises(ValueError, match=r"line break|control character|separator"):
            StatementEdit.model_validate({"speaker": name, "topic": name})
        return
    fields = StatementEdit.model_validate({"speaker": name, "topic": name})
    data = yaml.safe_load(edits.edit_yaml(hostile.recording.relpath, fields, hostile))
    assert data["speaker"] == name and data["topic"] == name and "out" not in data


def test_fields_a_person_filled_in() -> None:
    anna = statement(topic="Trafik", trim=(3200, 23400))
    fields = StatementEdit.model_validate(
        {"topic": "Trafik på Skolevej", "in": 4.0, "approved": True, "approved_by": "Ida Holm",
         "approved_at": "2026-11-21T10:30:00"}
    )  # fmt: skip
    found = edits.StatementEdits("a.mp4", None, fields)
    changed = edits.apply_fields(anna, found)
    assert changed.topic == "Trafik på Skolevej" and changed.trim_ms == (4000, 23400)
    approval = edits.approval(fields, "sha256:" + "0" * 64)
    assert approval is not None and approval.by == "Ida Holm" and approval.valid
    assert approval.at == "2026-11-21T10:30"


def test_setting_only_one_point_keeps_the_other() -> None:
    automatic = statement()  # no trim in meeting.yaml: the speech decides both points
    only_out = edits.apply_fields(
        automatic, edits.StatementEdits("a.mp4", None, StatementEdit.model_validate({"out": 5.0}))
    )
    assert only_out.trim_ms == (None, 5000)
    only_in = edits.apply_fields(
        statement(trim=(3200, 23400)),
        edits.StatementEdits("a.mp4", None, StatementEdit.model_validate({"in": 4})),
    )
    assert only_in.trim_ms == (4000, 23400)


def test_an_approval_holds_only_what_it_approved() -> None:
    anna = statement(topic="Trafik")
    cues = starting(JFK)
    digest = edits.content_digest(cues, anna)
    fields = StatementEdit.model_validate(
        {"approved": True, "approved_by": "Ida Holm", "approved_digest": digest}
    )
    assert edits.approval(fields, digest) == Approval("Ida Holm", None, valid=True)
    changed_text = [Cue(c.start_ms, c.end_ms, (c.text + "!",)) for c in cues]
    changed_time = [Cue(c.start_ms + 1, c.end_ms, c.lines) for c in cues]
    for other in (
        edits.content_digest(changed_text, anna),
        edits.content_digest(changed_time, anna),
        edits.content_digest(cues, replace(anna, trim_ms=(None, 9000))),
        edits.content_digest(cues, replace(anna, speaker="Anna")),
        edits.content_digest(cues, replace(anna, topic="Trafik!")),
    ):
        assert other != digest
        void = edits.approval(fields, other)
        assert void is not None and not void.valid and void.by == "Ida Holm"
    # The group is not part of what the page shows for approval.
    assert edits.content_digest(cues, replace(anna, group="Bord 2")) == digest


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("approved: true\n", "approved"),
        ("in: 5\nout: 4\n", "out"),
        ("speakr: Anna\n", "speakr"),
        ("in: -1\n", "in"),
    ],
)
def test_a_wrong_edit_file_names_the_file_and_field(text: str, field: str, tmp_path: Path) -> None:
    path = tmp_path / "a.mp4.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        from pipeline.config import load_statement_edit

        load_statement_edit(path)
    assert "a.mp4.yaml" in str(caught.value) and field in str(caught.value)
    assert caught.value.exit_code == 3


def test_a_file_nobody_changed_follows_a_new_transcription(tmp_path: Path) -> None:
    rules = SubtitleRules()
    anna = statement()
    edits.write_starting(tmp_path, anna, JFK, rules)
    srt = tmp_path / "a.mp4.srt"
    assert "Amerikans" in srt.read_text(encoding="utf-8")
    assert edits.read(tmp_path, anna).cues is None  # as the pipeline wrote it
    better = heard(
        (0, 500, "And"),
        (500, 800, "so"),
        (800, 1200, "my"),
        (1200, 1600, "fellow"),
        (1600, 2100, "Americans,"),
    )
    edits.write_starting(tmp_path, anna, better, rules)
    assert "Americans" in srt.read_text(encoding="utf-8")
    # A person's change is kept, whatever the engine hears next.
    srt.write_text(srt.read_text(encoding="utf-8").replace("fellow", "dear"), encoding="utf-8")
    edits.write_starting(tmp_path, anna, JFK, rules)
    assert "dear" in srt.read_text(encoding="utf-8")
    found = edits.read(tmp_path, anna)
    assert found.cues is not None and "dear" in found.cues[0].text


@pytest.mark.parametrize("undrawable", ["利", "观察", "ꙮ"])
def test_what_the_engine_wrote_outside_the_font_never_refuses_a_persons_correction(
    tmp_path: Path, undrawable: str
) -> None:
    """The engine wrote characters the subtitle font cannot draw (the demo's small model heard Danish as
    Chinese); a person corrects a word of another cue and leaves that cue as it was: the correction is
    taken. The same characters typed where the engine never wrote them are still refused."""
    from pipeline.stages.subtitles.io import parse_srt, to_srt

    anna = statement()
    machine = heard((0, 500, f"Der{undrawable}ak"), (4000, 4500, "fellow"), (4500, 5000, "Americans."))
    edits.write_starting(tmp_path, anna, machine, RULES)
    srt = tmp_path / "a.mp4.srt"
    cues = parse_srt(srt.read_text(encoding="utf-8"))
    assert len(cues) >= 2 and undrawable in cues[0].text
    corrected = [cues[0], *(Cue(c.start_ms, c.end_ms, (c.text.replace("fellow", "dear"),)) for c in cues[1:])]
    srt.write_text(to_srt(corrected), encoding="utf-8")
    found = edits.read(tmp_path, anna)
    assert found.cues is not None and undrawable in found.cues[0].text and "dear" in found.cues[-1].text
    typed = [*corrected[:-1], Cue(cues[-1].start_ms, cues[-1].end_ms, ("dear 水 Americans.",))]
    srt.write_text(to_srt(typed), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        edits.read(tmp_path, anna)
    assert "水" in str(caught.value) and "cannot draw" in str(caught.value)


def test_a_persons_srt_from_any_editor_is_read_or_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4.srt"
    path.write_bytes("\ufeff1\n00:00:01,000 --> 00:00:02,000\nKære Ærø\n".encode())
    assert edits.parse_edited_srt(edits.read_srt_text(path), path)[0].lines == ("Kære Ærø",)
    path.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nKære Ærø\n".encode("cp1252"))
    assert edits.read_srt_text(path).endswith("Kære Ærø\n")
    broken = "1\n00:00:01,000 --> 00:00:02,000\nHej\n\n2\nhalf past --> three\nDav\n"
    with pytest.raises(ConfigError) as caught:
        edits.parse_edited_srt(broken, path)
    assert "a.mp4.srt" in str(caught.value) and "1 of its 2 cues" in str(caught.value)
