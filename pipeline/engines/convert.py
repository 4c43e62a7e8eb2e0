"""STAND-IN for the conversion of transformers weights to CTranslate2 (issue 25), written by another
helper: only the agreed interface, so that `hearing models get` can call it; the real module replaces this
file at merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ModelError


@dataclass(frozen=True)
class Conversion:
    converter: str
    version: str
    quantization: str
    command: str


def to_ctranslate2(source: Path, target: Path, *, quantization: str = "int8") -> Conversion:
    raise ModelError(
        f"cannot convert {source.name} to CTranslate2 ({quantization}) in this build",
        "get a model published in CTranslate2 form",
    )
