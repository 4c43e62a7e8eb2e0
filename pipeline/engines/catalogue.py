"""STAND-IN for the catalogue of models fit for Danish (issue 25, item 1), written by another helper.

Only the embedded base entry, in the shape of the agreed interface, so that ``hearing models get`` can be
built and tested before the real catalogue lands; the real module replaces this file at merge.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UsageError


@dataclass(frozen=True)
class PublishedWer:
    dataset: str
    wer_percent: float
    source: str


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    repo: str
    revision: str
    format: str  # "ct2" | "transformers"
    files: tuple[str, ...]  # empty: every file of the repository
    size_bytes: int
    licence: str
    licence_conditions: str | None
    published: tuple[PublishedWer, ...]
    speed: str
    engines: tuple[str, ...]


ENTRIES: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        name="base",
        repo="Systran/faster-whisper-base",
        revision="ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66",
        format="ct2",
        files=("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"),
        size_bytes=145_217_532,
        licence="MIT",
        licence_conditions=None,
        published=(),
        speed="fast",
        engines=("faster-whisper", "openai-whisper"),
    ),
)


def entry(name: str) -> CatalogueEntry:
    for found in ENTRIES:
        if found.name == name:
            return found
    raise UsageError(f"no model named {name!r} in the catalogue; known: {', '.join(e.name for e in ENTRIES)}")
