"""timing.line_up: the one way a group of tokens (a cue's words, a word's letters) finds its place in a
stream of timed tokens; the check's speech spans and the aligner's word times both ask it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.stages import timing


def test_groups_line_up_in_order_and_an_empty_group_has_no_place() -> None:
    stream = ["kære", "udvalg", "vi", "vil", "have", "en", "sti"]
    groups = [["kære", "udvalg"], [], ["vi", "vil", "have"], ["en", "sti"]]
    assert timing.line_up(groups, stream) == [slice(0, 2), None, slice(2, 5), slice(5, 7)]


def test_a_changed_word_a_missing_word_or_a_word_left_over_lines_up_nothing() -> None:
    stream = ["æ", "ø", "å"]
    assert timing.line_up([["æ", "ø"], ["a"]], stream) is None  # not the same token
    assert timing.line_up([["æ", "ø", "å", "x"]], stream) is None  # more than the stream holds
    assert timing.line_up([["æ", "ø"]], stream) is None  # a token of the stream left unread
    assert timing.line_up([], []) == []


@given(st.lists(st.lists(st.sampled_from("abæøå"), max_size=4), max_size=6))
def test_any_grouping_of_a_stream_lines_up_to_the_slices_it_was_cut_at(groups: list[list[str]]) -> None:
    stream = [token for group in groups for token in group]
    lined = timing.line_up(groups, stream)
    assert lined is not None and len(lined) == len(groups)
    for group, taken in zip(groups, lined, strict=True):
        assert (taken is None) == (not group)
        if taken is not None:
            assert stream[taken] == group
