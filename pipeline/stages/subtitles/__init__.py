"""Subtitles: cues from the word timestamps, to the form's rules, and the files that carry them.

A room for each concern; import from the room itself:

- ``rules``: the form's subtitle rules (``SubtitleRules``), the ``Cue``, and every rule a list of cues
  breaks (``rule_breaks``, ``RuleBreak``, ``rule_titles``);
- ``layout``: line breaking, the lines a cue's words are shown in (``break_lines``);
- ``cues``: a statement's words grouped into cues and timed in the clip (``build_statement_cues``,
  ``statement_cues``, ``StatementCues``), a card's caption (``card_cue``) and ``validate``;
- ``io``: SubRip, WebVTT and ASS written and read, each line escaped for its format, and what a person
  wrote that no format could carry (``unsafe_text``).

How a cue is timed and a rule break judged is the one timing model, ``pipeline.stages.timing``. The
rules and their sources are in docs/standards.md, section "Subtitles".
"""
