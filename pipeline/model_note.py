"""What the delivered documents tell their reader about the speech model that wrote the text: its name,
and the Danish word error rate others published for it, with the source, or that none is known.

The transcript (every format), the cover letter, the delivery page and the QC report all take it from
one ``ModelNote``, so they say the same thing; their sentences are in ``pipeline.texts.documents``. The
figures are the catalogue's (``pipeline.engines.catalogue``): published ones, never measured on the
meeting at hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline import escape
from pipeline.engines import catalogue

# A model's name is a folder's name or whatever a transcript beside a clip says: shown on one line, its
# direction closed, and cut where it is longer than any real model's name.
NAME_LIMIT = 200


@dataclass(frozen=True)
class ModelNote:
    model: str  # as the run recorded it (a catalogue name, a folder's name, a hub id), made fit to show
    title: str | None  # as a person calls it; None: not in the catalogue
    fit_for_danish: bool | None  # None: not known (not in the catalogue)
    mean_wer: float | None  # the published mean Danish WER in percent; None: none known
    conversation_wer: float | None  # the published WER on CoRal's conversation set, nearest to a meeting
    source: str | None  # where the figures were published (the leaderboard's name)
    published: tuple[catalogue.PublishedWer, ...] = ()

    @property
    def known(self) -> bool:
        """A published Danish error rate is known for the model."""
        return self.mean_wer is not None

    @property
    def warn(self) -> bool:
        """The model is for demos and tests: an official must be warned before reading its text."""
        return self.fit_for_danish is False

    def to_json(self) -> dict[str, Any]:
        """The transcript's and the QC report's structured fields; ``published_wer`` is None where no
        published figure is known."""
        return {
            "model": self.model,
            "title": self.title,
            "in_catalogue": self.title is not None,
            "fit_for_danish": self.fit_for_danish,
            "published_wer": {
                "measured_here": False,  # published by others, never measured on this meeting
                "mean_percent": self.mean_wer,
                "dataset": catalogue.MEAN,
                "source": self.source,
                "datasets": [
                    {"dataset": p.dataset, "wer_percent": p.wer_percent, "source": p.source}
                    for p in self.published
                    if p.dataset != catalogue.MEAN
                ],
            }
            if self.known
            else None,
        }


def note_for(model: str | None) -> ModelNote:
    """The note on ``model`` as a run recorded it (None: the engine's default, base)."""
    name = model or "base"
    entry = catalogue.lookup(name)
    if entry is None:
        shown = escape.bidi_closed(escape.fit(escape.one_line(name), NAME_LIMIT))
        return ModelNote(shown, None, None, None, None, None)
    mean = next((p for p in entry.published if p.dataset == catalogue.MEAN), None)
    conversation = next((p for p in entry.published if p.dataset == catalogue.CORAL_CONVERSATION), None)
    source = None
    if mean is not None:
        source = catalogue.LEADERBOARD if mean.source.startswith(catalogue.LEADERBOARD) else mean.source
    return ModelNote(
        model=name,
        # The catalogue's titles go on to say who converted the weights and what the entry is for, in
        # English: the model's name is what the reader needs.
        title=re.split(r":|, CTranslate2", entry.title)[0].strip(),
        fit_for_danish=entry.fit_for_danish,
        mean_wer=entry.mean_wer,
        conversation_wer=conversation.wer_percent if conversation else None,
        source=source,
        published=entry.published,
    )
