"""The words the pipeline writes for people, one room for each reader:

- ``review``: what the organiser reads in Danish about corrections, approvals and subtitle rules (the
  review page, a stopped render, the documents' approval notes); its names are here too, as ``texts.X``;
- ``documents``: the Danish of the delivered documents: the transcript, the cards, dates, the fallbacks
  for what meeting.yaml does not say, and the archive's English description of the meeting;
- ``letters``: the cover letter to the official and the note to the participants (Danish);
- ``page``: the delivery page's labels, in Danish and English;
- ``checks``: the checks' names and results on a Danish page (the QC report keeps their English titles);
- ``report``: the QC report's bilingual (Danish / English) lines.

Pure: values in, sentences out. Log lines and errors for the organiser stay beside the code that writes
them.
"""

from __future__ import annotations

from pipeline.texts.review import (
    RULE_NAMES,
    SEVERITY,
    UNSAFE,
    approved_by,
    changed_after_approval,
    cue_label,
    listed,
    moved,
    not_text,
    number,
    rule_break,
    rule_limit,
    rule_problem,
    seconds,
    split_only,
    statement_label,
    too_crowded,
    unsafe_line,
)

__all__ = [
    "RULE_NAMES",
    "SEVERITY",
    "UNSAFE",
    "approved_by",
    "changed_after_approval",
    "cue_label",
    "listed",
    "moved",
    "not_text",
    "number",
    "rule_break",
    "rule_limit",
    "rule_problem",
    "seconds",
    "split_only",
    "statement_label",
    "too_crowded",
    "unsafe_line",
]
