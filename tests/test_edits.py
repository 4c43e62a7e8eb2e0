"""Corrections in OUT/edits: pure functions over small inline data."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from test_cut import statement

from pipeline.config import StatementEdit
from pipeline.errors import ConfigError
from pipeline.models import Segment, StatementTranscript, Word
from pipeline.stages import edits
from pipeline.stages.subtitles import Cue, SubtitleRules


def heard(*words: tuple[int, int, str]) -> StatementTranscript:
    built = tuple(Word(a, b, f" {t}", 0.5) for a, b, t in words)
    segment = Segment(built[0].start_ms, built[-1].end_ms, "".join(w.text for w in built), built)
    return StatementTranscript("s01", "da", "faster-whisper", "base", (segment,))


JFK = heard(
    (0, 500, "And"), (500, 800, "so"), (800, 1200, "my"), (1200, 1600, "fellow"), (1600, 2100, "Amerikans,")
)


def test_an_unchanged_cue_keeps_every_word_and_time() -> None:
    cues = [Cue(0, 2200, ("And so my fellow Amerikans,",))]
    again = edits.apply_cues(JFK, cues)
    assert again.words == JFK.words


def test_a_corrected_word_is_retimed_inside_the_words_it_replaces() -> None:
    cues = [Cue(0, 2200, ("And so my fellow", "Americans,"))]
    words = edits.apply_cues(JFK, cues).words
    assert [w.text for w in words] == [" And", " so", " my", " fellow", " Americans,"]
    assert words[:4] == JFK.words[:4]
    fixed = words[4]
    assert (fixed.start_ms, fixed.end_ms, fixed.probability) == (1600, 2100, 1.0)
    assert fixed.flags == (edits.FLAG_EDITED,)


def test_added_and_removed_words() -> None:
    cues = [Cue(0, 2200, ("And so, my dear fellow citizens",))]
    words = edits.apply_cues(JFK, cues).words
    assert [w.text.strip() for w in words] == ["And", "so,", "my", "dear", "fellow", "citizens"]
    # "so," is the recognised "so" with the person's comma: same time, marked as edited.
    assert words[1].start_ms == 500 and edits.FLAG_EDITED in words[1].flags
    dear = words[3]
    # Between "my" and "fellow", which touch: it has no time of its own.
    assert (dear.start_ms, dear.end_ms) == (1200, 1200)
    assert all(a.start_ms <= b.start_ms for a, b in itertools.pairwise(words))
    assert edits.apply_cues(JFK, [Cue(0, 2200, ("",))]).words == ()


def test_words_go_to_the_nearest_cue_and_each_cue_becomes_a_segment() -> None:
    cues = [Cue(0, 1000, ("And so",)), Cue(1100, 2200, ("my fellow Americans",))]
    corrected = edits.apply_cues(JFK, cues)
    assert [s.text for s in corrected.segments] == [" And so", " my fellow Americans"]
    # "my" (800-1200, middle 1000) lies between the cues: it goes to the nearer one.
    assert [w.text.strip() for w in corrected.segments[1].words] == ["my", "fellow", "Americans"]


def test_a_persons_cues_are_placed_as_given_and_cut_to_the_statement() -> None:
    rules = SubtitleRules()
    cues = [Cue(500, 2500, ("And so my fellow Americans",)), Cue(9000, 9500, ("outside",))]
    placed = edits.place_fixed_cues(cues, shift_ms=4000, window=(4200, 8000), rules=rules, statement_id="s01")
    assert [(c.start_ms, c.end_ms, c.lines) for c in placed] == [
        (4500, 6500, ("And so my fellow Americans",))
    ]
    long_line = Cue(0, 4000, ("ask not what your country can do for you, ask what you can do",))
    (broken,) = edits.place_fixed_cues([long_line], 0, (0, 5000), rules, "s01")
    assert len(broken.lines) == 2 and all(len(line) <= 42 for line in broken.lines)


def test_the_starting_yaml_is_valid_and_changes_nothing() -> None:
    import yaml

    anna = statement(topic="Trafik på Skolevej", trim=(3200, 23400))
    data = yaml.safe_load(edits.starting_yaml(anna))
    fields = StatementEdit.model_validate(data)
    assert edits.apply_fields(anna, edits.StatementEdits("a.mp4", None, fields)) == anna
    assert edits.StatementEdits("a.mp4", None, fields).approval is None


def test_fields_a_person_filled_in(tmp_path: Path) -> None:
    anna = statement(topic="Trafik", trim=(3200, 23400))
    fields = StatementEdit.model_validate(
        {"topic": "Trafik på Skolevej", "in": 4.0, "approved": True, "approved_by": "Ida Holm",
         "approved_at": "2026-11-21T10:30:00"}
    )  # fmt: skip
    found = edits.StatementEdits("a.mp4", None, fields)
    changed = edits.apply_fields(anna, found)
    assert changed.topic == "Trafik på Skolevej" and changed.trim_ms == (4000, 23400)
    assert found.approval is not None and found.approval.by == "Ida Holm"
    assert found.approval.at == "2026-11-21T10:30"


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
