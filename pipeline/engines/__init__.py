"""Speech engines behind one small interface (``base.Engine``), and the models they can run.

Importing this package is cheap: torch, whisper, faster_whisper and ctranslate2 take seconds to import,
so they are imported only inside the functions that need them.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from dataclasses import dataclass
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
    model_location,
)
from pipeline.engines.device import CPU_INT8, DeviceChoice, key_part
from pipeline.engines.embedded import cache_root
from pipeline.errors import MissingToolError, ModelError, UsageError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "SAMPLE_RATE",
    "Engine",
    "EngineResult",
    "ModelInfo",
    "ProgressCallback",
    "TranscribeSettings",
    "cache_identity",
    "cache_root",
    "check_usable",
    "list_models",
    "load_engine",
    "model_for_run",
]

ENGINES = ("faster-whisper", "openai-whisper")
DEFAULT_ENGINE = "faster-whisper"
EMBEDDED_NAMES = (None, "base")
# A form's speech.model asking for the best model fit for Danish installed here (``model_for_run``).
BEST_FOR_DANISH = "best-for-danish"

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


def load_engine(
    name: str, model: str | None = None, device: DeviceChoice | None = None, hearing: Sequence[int] = ()
) -> Engine:
    """The engine ``name`` with ``model`` loaded and ready to transcribe, faster-whisper on ``device``
    (default: the CPU in int8; openai-whisper always runs on the CPU, ``engines.device``), set up for
    the statements of the lengths ``hearing`` (ms; what ``side_by_side`` would set it up for after).

    ``model`` None or "base" is the embedded offline model (when its wheels are installed); another name
    ("small", "large-v3", ...) is loaded by the engine itself, from its cache or the network; anything
    that exists on disk is a local model (a CTranslate2 folder, or for openai-whisper also a .pt file).
    Every way of not getting a usable model is a ModelError (exit 4) that says what to do.
    """
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    from pipeline.engines import embedded, faster, openai

    engine_module: Any = faster
    on: dict[str, Any] = {"device": device or CPU_INT8, "hearing": hearing}
    if name == "openai-whisper":
        # Before any model work, which would be wasted without the package.
        openai.import_whisper()
        engine_module = openai
        on = {}

    stored = _stored(model)
    if model in EMBEDDED_NAMES and embedded.embedded_available():
        return engine_module.load_embedded(**on)
    if stored is not None:
        return _load_stored(name, stored, device or CPU_INT8, hearing)
    if model in EMBEDDED_NAMES:
        try:
            return engine_module.load_named("base", **on)
        except ModelError as error:
            raise ModelError(
                "the embedded Whisper base model is not installed and 'base' is not cached",
                f"install it with {embedded.REINSTALL_HINT.replace(' --force-reinstall', '')}, "
                "or pass --model NAME_OR_PATH",
            ) from error
    assert model is not None
    path = Path(model).expanduser()
    if path.exists():
        return engine_module.load_path(path.resolve(), **on)
    if looks_like_path(model):
        raise ModelError(
            f"model path {model} does not exist",
            "check the path, or pass --model with a model name such as base, small or large-v3",
        )
    return engine_module.load_named(model, **on)


def _stored(model: str | None) -> Any:
    """The model ``hearing models get`` installed under this name, if any (read from its manifest)."""
    from pipeline.engines import download

    return download.find_installed(model or "base")


def _load_stored(engine: str, stored: Any, device: DeviceChoice, hearing: Sequence[int]) -> Engine:
    """A model from the store, offline: faster-whisper runs its folder; openai-whisper a checkpoint
    converted once from it (CTranslate2 float weights only), kept beside it."""
    info = ModelInfo(stored.name, "catalogue", str(stored.path), stored.model_sha256)
    if engine == "openai-whisper":
        from pipeline.engines import openai

        target = stored.path.parent / f".{stored.name}-openai.pt"
        return openai.load_ct2_folder(stored.path, stored.name, "catalogue", stored.model_sha256, target)
    from pipeline.engines.faster import FasterWhisperEngine

    return FasterWhisperEngine(stored.path, info, device, hearing=hearing)


def model_origin(model: str | None) -> dict[str, Any] | None:
    """Where a model ``hearing models get`` stored came from, as its manifest records it: the hub
    repository, the revision, and the conversion (converter, version, quantization, command) where the
    weights were converted; for run.json and the archive's provenance. None for any other model
    (the embedded base is found first, as ``load_engine`` finds it)."""
    from pipeline.engines import embedded

    if model in EMBEDDED_NAMES and embedded.embedded_available():
        return None
    stored = _stored(model)
    if stored is None:
        return None
    return {
        "repo": stored.repo,
        "revision": stored.revision,
        "requested_revision": stored.requested_revision,
        "format": stored.format,
        "licence": stored.licence,
        "downloaded": stored.downloaded,
        "conversion": stored.conversion,
    }


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
        from huggingface_hub import constants, scan_cache_dir

        # The cache as the hub's settings say now (its scanner keeps the folder it saw when imported).
        info = scan_cache_dir(constants.HF_HUB_CACHE)
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


def _stored_names() -> set[str]:
    """Every model ``hearing models get`` stored with a valid manifest."""
    from pipeline.engines import download

    return {m.name for m in download.installed()}


def _installed_catalogue_names(embedded_row: dict[str, Any]) -> set[str]:
    """The catalogue's models on this machine: the embedded base where it is usable, and every model
    ``hearing models get`` stored with a valid manifest."""
    return _stored_names() | ({"base"} if embedded_row["usable_offline"] else set())


def model_for_run(engine: str, given: str | None, form_model: str | None) -> str | None:
    """The model a run transcribes with: ``--model`` where given (it always wins, so ``--model base``
    accepts base knowingly), else the form's ``speech.model``; None is the engine's default, base.
    The form's BEST_FOR_DANISH is the stored catalogue model fit for Danish (and for ``engine``) with
    the lowest published error rate; where there is none the run stops before any work, with the one
    command that gets the recommended model. Asked by a run, `hearing watch` and a dry run alike."""
    if given is not None:
        return given
    if form_model != BEST_FOR_DANISH:
        return form_model
    from pipeline.engines import catalogue

    usable = {e.name for e in catalogue.ENTRIES if engine in e.engines}
    best = catalogue.best_installed(_stored_names() & usable)
    if best is not None:
        return best.name
    # The recommended model, or where it is not made for this engine the best one that is.
    wanted = catalogue.best_installed(usable) or catalogue.recommended()
    raise ModelError(
        f"the form asks for a model fit for Danish (speech.model: {BEST_FOR_DANISH}) and none is "
        f"installed; the embedded base gets about every second Danish word wrong",
        f"get {wanted.name} once with `{wanted.get_command}`, or accept base knowingly with --model base",
    )


def _size_text(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _catalogue_rows(installed_names: set[str]) -> list[dict[str, Any]]:
    """The catalogue of models fit for Danish, each marked installed or with the command that gets it."""
    from pipeline.engines import catalogue

    best = catalogue.recommended().name
    rows = []
    for e in catalogue.ENTRIES:
        installed = e.name in installed_names
        rows.append(
            {
                "kind": "catalogue",
                "name": e.name,
                "title": e.title,
                "repo": e.repo,
                "revision": e.revision,
                "format": e.format,
                "size_bytes": e.size_bytes,
                "size": ("about " if e.size_is_estimate else "") + _size_text(e.size_bytes),
                "size_source": e.size_source,
                "licence": e.licence,
                "licence_conditions": e.licence_conditions,
                "published": [
                    {"dataset": p.dataset, "wer_percent": p.wer_percent, "source": p.source}
                    for p in e.published
                ],
                "mean_wer": e.mean_wer,
                "speed": e.speed,
                "engines": list(e.engines),
                "fit_for_danish": e.fit_for_danish,
                "recommended": e.name == best,
                "installed": installed,
                "get": None if installed else e.get_command,
                "use": f"--model {e.name}",
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
    engine that runs it is installed. Catalogue rows (``kind="catalogue"``, pipeline/engines/catalogue.py):
    the models fit for Danish, each with repo, revision, format, size, licence (and its conditions),
    the published Danish word error rates with their source, speed, recommended, installed, and get
    (the command that fetches it, when it is not installed). Reads the caches only: nothing is
    assembled or downloaded.
    """
    engines = _engine_rows()
    installed = {row["name"] for row in engines if row["installed"]}
    embedded_row = _embedded_row(installed)
    return [
        *engines,
        embedded_row,
        *_huggingface_rows(installed),
        *_openai_rows(installed),
        *_catalogue_rows(_installed_catalogue_names(embedded_row)),
    ]


# Every package whose code turns the audio into words, for each engine: a new version of any of them may
# change the words, so each is in the key of every transcript (and alignment) the engine makes. Both
# engines hear speech with faster-whisper's voice detector (Silero on onnxruntime), and numpy makes the
# features both listen to.
ENGINE_PACKAGES = {
    "faster-whisper": ("faster-whisper", "ctranslate2", "tokenizers", "onnxruntime", "numpy"),
    "openai-whisper": (
        "openai-whisper", "torch", "tiktoken", "numba", "numpy", "faster-whisper", "onnxruntime",
    ),
}  # fmt: skip


def engine_versions(engine: str) -> dict[str, str]:
    return {package: _version(package) or "not installed" for package in ENGINE_PACKAGES[engine]}


def engine_id(engine: str, device: DeviceChoice | None = None) -> str:
    """The engine in a cache key: its name, the version of every package it listens with, and the device
    and compute type where they are not what the engine always ran on (``device.key_part``)."""
    parts = [engine, *(f"{name} {version}" for name, version in engine_versions(engine).items())]
    part = key_part(engine, device) if device is not None else None
    return "; ".join([*parts, *([part] if part else [])])


def _known_models(engine: str) -> dict[str, str] | None:
    """The engine's own table of model names (faster-whisper: name to Hugging Face repository;
    openai-whisper: name to download address, which carries the file's SHA-256), read from its source
    without importing it: importing openai-whisper imports torch, seconds on every run. None when the
    table cannot be read; then only loading the model can tell."""
    module, file = {
        "faster-whisper": ("faster_whisper", "utils.py"),
        "openai-whisper": ("whisper", "__init__.py"),
    }[engine]
    spec = util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    try:
        tree = ast.parse((Path(spec.origin).parent / file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_MODELS" for t in node.targets
        ):
            try:
                table = ast.literal_eval(node.value)
            except ValueError:
                return None
            return {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else None
    return None


def _cached_faster_model(name: str) -> Path | None:
    """The folder of a faster-whisper model by name in the Hugging Face cache, without the network."""
    repo = name if "/" in name else (_known_models("faster-whisper") or {}).get(name)
    if repo is None:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "model.bin")
    except Exception:  # no cache, or huggingface_hub missing: not cached
        return None
    return Path(found).parent if isinstance(found, str) else None


@dataclass(frozen=True)
class ModelKey:
    """What a model is, known without loading it."""

    id: str  # in every cache key: the model by its content wherever that is known
    sha256: str | None  # of the file, or of a folder's list of files and their SHA-256
    path: str | None  # where it is on this machine


def model_digests() -> Any:
    """The per-user memo of model digests (computed once per model file, not on every run)."""
    from pipeline.cache import ContentDigests

    return ContentDigests(cache_root() / "model-digests.json")


def model_key(engine: str, model: str | None, digests: Any = None) -> ModelKey:
    """The model as the cache keys name it: the embedded model and a name openai-whisper knows by the
    SHA-256 it verifies; a local path and a faster-whisper model in the Hugging Face cache by the
    digest of their files (so a model replaced in place is a new model); a name not on this machine by
    its name (the engine fetches it)."""
    from pipeline.engines import embedded

    name = model or "base"
    if name == "base" and embedded.embedded_available():
        return ModelKey(
            f"embedded:sha256:{embedded.MODEL_SHA256}", embedded.MODEL_SHA256, str(embedded.model_dir())
        )
    stored = _stored(name)
    if stored is not None:
        return ModelKey(stored.identity, stored.model_sha256, str(stored.path))
    digests = digests if digests is not None else model_digests()
    path = Path(name).expanduser()
    if path.exists():
        target = model_location(engine, path.resolve())
        digest = digests.of(target)
        digests.save()
        return ModelKey(f"path:sha256:{digest}", digest, str(target))
    if engine == "openai-whisper":
        address = (_known_models(engine) or {}).get(name)
        if address is not None:
            sha = address.split("/")[-2]
            return ModelKey(f"name:{name}:sha256:{sha}", sha, None)
    else:
        folder = _cached_faster_model(name)
        if folder is not None:
            digest = digests.of(folder)
            digests.save()
            return ModelKey(f"name:{name}:sha256:{digest}", digest, str(folder))
    return ModelKey(f"name:{name}", None, None)


def cache_identity(engine: str, model: str | None, device: DeviceChoice | None = None) -> tuple[str, str]:
    """(engine, model) as every transcript and alignment key names them: the engine with its packages'
    versions (and the device it runs on), the model by its content."""
    return engine_id(engine, device), model_key(engine, model).id


def check_usable(engine: str, model: str | None) -> None:
    """What can be known about the engine and the model without loading either, checked before any
    work (by a dry run and a run alike): the engine installed, a local model that can be one, a name
    the engine knows. Whether a name not cached can be downloaded only loading it tells."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if _version(_DISTRIBUTIONS[engine]) is None or util.find_spec(_MODULES[engine]) is None:
        raise MissingToolError(f"{engine} is not installed", _INSTALL[engine])
    if model in EMBEDDED_NAMES or _stored(model) is not None:
        return
    assert model is not None
    path = Path(model).expanduser()
    if path.exists():
        model_location(engine, path.resolve())
        return
    if looks_like_path(model):
        raise ModelError(
            f"model path {model} does not exist",
            "check the path, or pass --model with a model name such as base, small or large-v3",
        )
    _check_catalogue_name(engine, model)
    known = _known_models(engine)
    if known is not None and model not in known and not (engine == "faster-whisper" and "/" in model):
        raise ModelError(
            f"{engine} has no model named {model!r} (known: {', '.join(known)})",
            "pass one of those names"
            + (
                ", a Hugging Face id such as Systran/faster-whisper-small"
                if engine == "faster-whisper"
                else ""
            )
            + ", or --model /path/to/model",
        )


def _check_catalogue_name(engine: str, model: str) -> None:
    """A model of the catalogue that is not stored here and that the engine cannot fetch by that name
    itself: the one command that gets it."""
    from pipeline.engines import catalogue

    found = next((e for e in catalogue.ENTRIES if e.name == model), None)
    if found is None:
        return
    if engine not in found.engines:
        raise ModelError(
            f"{model} is not made for {engine}",
            f"use it with --engine {found.engines[0]}, after `{found.get_command}`",
        )
    known = _known_models(engine)
    if known is None or model not in known:
        raise ModelError(f"{model} is not installed", f"get it once with `{found.get_command}`")


def side_by_side(engine: Engine, lengths_ms: Sequence[int]) -> int:
    """How many of the statements of these lengths ``engine`` listens to at once, each from a thread of
    its own, set up for it (faster-whisper with a large model: ``faster.listening``); one for every
    other engine."""
    listen_to = getattr(engine, "listen_to", None)
    return max(1, int(listen_to(lengths_ms))) if callable(listen_to) else 1


def model_label(model: str | None) -> str:
    """What the model is called in a transcript and on screen."""
    return "base" if model is None else Path(model).name if Path(model).exists() else model


def identity(
    engine: str, model: str | None, loaded: Engine | None = None, key: ModelKey | None = None
) -> tuple[str, ModelInfo]:
    """The engine's version and the model, for provenance, also when every transcript was cached and
    the engine was never loaded. ``key`` (``model_key``) gives the model's content digest where the
    engine does not know it (a local folder, a cached download)."""
    from pipeline.engines import embedded

    sha256 = key.sha256 if key is not None else None
    if loaded is not None:
        info = loaded.model
        return loaded.version, ModelInfo(info.name, info.source, info.path, info.sha256 or sha256)
    distribution = "openai-whisper" if engine == "openai-whisper" else "faster-whisper"
    version = _version(distribution) or "unknown"
    name = model or "base"
    if name == "base" and embedded.embedded_available():
        return version, ModelInfo("base", "embedded", str(embedded.model_dir()), embedded.MODEL_SHA256)
    stored = _stored(name)
    if stored is not None:
        return version, ModelInfo(stored.name, "catalogue", str(stored.path), stored.model_sha256)
    if Path(name).expanduser().exists():
        where = key.path if key is not None and key.path else str(Path(name).expanduser().resolve())
        return version, ModelInfo(model_label(model), "path", where, sha256)
    return version, ModelInfo(model_label(model), "cache", key.path if key and key.path else name, sha256)
