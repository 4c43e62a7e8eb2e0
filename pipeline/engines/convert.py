"""Turn a Whisper model in transformers format into a CTranslate2 folder that faster-whisper runs.

Some of the best Danish models (CoRal's Røst) are published as transformers weights only. CTranslate2's
own converter does the work, in this process (it has a Python API, and the project starts processes in
one module only). The folder appears at ``target`` whole or not at all: the conversion writes into a
staging folder beside it, which is renamed when everything in it is checked.

transformers (and torch) are needed only here: the ``convert`` extra installs them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import MissingToolError, ModelError, PipelineError, UsageError

log = logging.getLogger(__name__)

CONVERTER = "ctranslate2.converters.TransformersConverter"
# What CTranslate2's converter accepts for --quantization.
QUANTIZATIONS = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
# Copied beside model.bin when the source has them: faster-whisper reads its tokenizer from
# tokenizer.json (without it, it fetches one from the network) and its mel count from
# preprocessor_config.json (without it, 80: a 128-mel model such as large-v3 then fails on every file).
COPIED_FILES = ("tokenizer.json", "preprocessor_config.json")
INSTALL_HINT = "install the converter with: pip install 'hearing-pipeline[convert]'"
_DEFAULT_MELS = 80
# A staging folder older than this was left by a conversion that died, even where its process id has
# since been given to another process.
_STALE_STAGING_S = 6 * 3600.0


@dataclass(frozen=True)
class Conversion:
    """What was done to the weights, for the model's manifest and the run's provenance."""

    converter: str  # CTranslate2's converter class
    converter_version: str  # the ctranslate2 package's version
    quantization: str
    command: str  # one readable line: the equivalent ct2-transformers-converter command and versions

    def as_dict(self) -> dict[str, str]:
        return {
            "converter": self.converter,
            "converter_version": self.converter_version,
            "quantization": self.quantization,
            "command": self.command,
        }


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "…"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelError(
            f"cannot convert {path.parent}: {path.name} is unreadable ({_first_line(error)})",
            "pass a folder with a transformers Whisper model (config.json, the weights, tokenizer.json)",
        ) from error
    if not isinstance(data, dict):
        raise ModelError(
            f"cannot convert {path.parent}: {path.name} is not a JSON object",
            "pass a folder with a transformers Whisper model (config.json, the weights, tokenizer.json)",
        )
    return data


def mel_count(source: Path) -> int:
    """The number of mel bands the model listens with, checked against its preprocessor_config.json: a
    disagreement would make every transcription fail with "Invalid input features shape"."""
    config = _read_json(source / "config.json")
    mels = config.get("num_mel_bins", _DEFAULT_MELS)
    if not isinstance(mels, int) or isinstance(mels, bool) or mels <= 0:
        raise ModelError(
            f"cannot convert {source}: config.json has num_mel_bins {mels!r}",
            "pass a folder with a transformers Whisper model",
        )
    preprocessor = source / "preprocessor_config.json"
    if preprocessor.is_file():
        feature_size = _read_json(preprocessor).get("feature_size", _DEFAULT_MELS)
        if feature_size != mels:
            raise ModelError(
                f"cannot convert {source}: preprocessor_config.json has feature_size {feature_size!r} "
                f"but the model listens with {mels} mel bands",
                "get the model's files again from where it is published",
            )
    return mels


def check_source(source: Path) -> int:
    """What can be known about ``source`` before loading anything: a folder with a Whisper config and a
    tokenizer. Returns its mel count."""
    if not source.is_dir():
        raise ModelError(
            f"cannot convert {source}: it is not a folder",
            "pass the folder of a transformers Whisper model",
        )
    if not (source / "config.json").is_file():
        raise ModelError(
            f"cannot convert {source}: it has no config.json (not a transformers model folder)",
            "pass a folder with a transformers Whisper model (config.json, the weights, tokenizer.json)",
        )
    model_type = _read_json(source / "config.json").get("model_type")
    if model_type != "whisper":
        raise ModelError(
            f"cannot convert {source}: it holds a {model_type!r} model, not Whisper",
            "pass the folder of a transformers Whisper model",
        )
    # Without it the converter writes a vocabulary from a tokenizer it guesses, and faster-whisper would
    # fetch a tokenizer from the network: the words would be another model's.
    if not (source / "tokenizer.json").is_file():
        raise ModelError(
            f"cannot convert {source}: it has no tokenizer.json",
            "get the model's tokenizer.json from where it is published and put it in the folder",
        )
    return mel_count(source)


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.converting-"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: running
        return True
    return True


def _remove_stale_staging(target: Path) -> None:
    """Staging folders of conversions that died (killed, or the machine turned off): gigabytes for a
    large model. One whose process still runs is left to it, unless it is too old to be alive."""
    prefix = _staging_prefix(target)
    now = time.time()
    for folder in target.parent.glob(prefix + "*"):
        suffix = folder.name[len(prefix) :]
        with suppress(OSError):
            dead = not suffix.isdigit() or not _running(int(suffix))
            if dead or now - folder.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(folder)


@contextlib.contextmanager
def _quiet_progress_bars(transformers: Any) -> Iterator[None]:
    """transformers draws its own progress bars while loading; the caller shows progress its own way."""
    hub_logging = transformers.utils.logging
    enabled = hub_logging.is_progress_bar_enabled()
    hub_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hub_logging.enable_progress_bar()


def describe(
    source: Path, target: Path, quantization: str, copied: list[str], float16: bool, mels: int
) -> str:
    """The conversion as the equivalent command line (folder names only: the record travels with the
    model and into archives, where this machine's paths mean nothing)."""
    parts = [
        "ct2-transformers-converter",
        f"--model {source.name}",
        f"--output_dir {target.name}",
        f"--quantization {quantization}",
    ]
    if float16:
        parts.append("--load_as_float16 --low_cpu_mem_usage")
    if copied:
        parts.append("--copy_files " + " ".join(copied))
    if "preprocessor_config.json" not in copied:
        parts.append(f"; then preprocessor_config.json written with feature_size {mels}")
    versions = (
        f"ctranslate2 {_version('ctranslate2')}, transformers {_version('transformers')}, "
        f"torch {_version('torch')}"
    )
    return " ".join(parts) + f" ({versions})"


def to_ctranslate2(source: Path, target: Path, *, quantization: str = "int8") -> Conversion:
    """Convert the transformers Whisper model in ``source`` into a CTranslate2 folder ``target`` (model.bin,
    config.json, the vocabulary, tokenizer.json and preprocessor_config.json).

    ``target`` must not exist; it appears whole or not at all. Every way of failing is one
    MissingToolError (transformers not installed) or ModelError (the weights cannot be converted) that
    says what to do.
    """
    if quantization not in QUANTIZATIONS:
        raise UsageError(f"unknown quantization {quantization!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    source = Path(source)
    target = Path(target)
    mels = check_source(source)
    if target.exists() or target.is_symlink():
        raise ModelError(
            f"cannot convert into {target}: it already exists",
            "delete it first, or choose another folder",
        )
    try:
        import ctranslate2.converters
        import torch  # noqa: F401  (the converter needs it; missing, say so before any work)
        import transformers
    except ImportError as error:
        raise MissingToolError(
            f"converting transformers weights needs {error.name or 'transformers'}, which is not installed",
            INSTALL_HINT,
        ) from error

    copied = [name for name in COPIED_FILES if (source / name).is_file()]
    # Weights at half precision halve the memory a large model needs while loading (a 1.5B model: 3 GB
    # instead of 6); quantizing to int8 or float16 loses nothing by it. Other targets keep the stored dtype.
    float16 = quantization in ("int8", "int8_float16", "float16")
    command = describe(source, target, quantization, copied, float16, mels)
    staging = target.parent / f"{_staging_prefix(target)}{os.getpid()}"
    started = time.monotonic()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(target)
        shutil.rmtree(staging, ignore_errors=True)
        converter = ctranslate2.converters.TransformersConverter(
            str(source), copy_files=copied, load_as_float16=float16, low_cpu_mem_usage=float16
        )
        with _quiet_progress_bars(transformers):
            converter.convert(str(staging), quantization=quantization)
        if "preprocessor_config.json" not in copied:
            # faster-whisper assumes 80 mel bands without this file; say what the model listens with.
            (staging / "preprocessor_config.json").write_text(
                json.dumps({"feature_size": mels}) + "\n", encoding="utf-8"
            )
        missing = [n for n in ("model.bin", "config.json", "tokenizer.json") if not (staging / n).is_file()]
        if missing:
            raise ModelError(
                f"converting {source} left no {', '.join(missing)}",
                "report this with the model's name and the ctranslate2 version",
            )
        os.rename(staging, target)
    except PipelineError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        # transformers reports a folder without weights as an OSError of its own (no errno); a real
        # file-system failure (disk full, no permission) has one, and another remedy.
        if error.errno is None:
            raise _unconvertible(source, error) from error
        raise ModelError(
            f"cannot convert {source} into {target} ({error.strerror or _first_line(error)})",
            "free disk space and check that the model folder is readable and the target's folder writable",
        ) from error
    except Exception as error:  # the converter and transformers raise many kinds for unusable weights
        shutil.rmtree(staging, ignore_errors=True)
        raise _unconvertible(source, error) from error
    except BaseException:  # interrupted: leave nothing half made
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("converted %s to CTranslate2 %s in %.1f s", source, quantization, time.monotonic() - started)
    return Conversion(CONVERTER, _version("ctranslate2"), quantization, command)


def _unconvertible(source: Path, error: BaseException) -> ModelError:
    return ModelError(
        f"cannot convert the weights in {source} to CTranslate2 ({_first_line(error)})",
        "check that the folder holds a complete transformers Whisper model (config.json, "
        "model.safetensors or pytorch_model.bin, tokenizer.json); get its files again if one is damaged",
    )
