"""Read CTranslate2's model.bin and turn a Whisper model in it into an openai-whisper checkpoint.

This lets openai-whisper run the embedded model (which only exists in CTranslate2 form) without the
network. The format: u32 version, string spec name, u32 revision, u32 variable count; per variable a
string name, u8 rank, u32 per dimension, u8 dtype, u32 byte count and the raw little-endian data; then
u32 alias count and (alias, target) string pairs. A string is a u16 length that counts a trailing NUL,
the bytes, the NUL.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from pipeline.engines.embedded import models_dir, remove_stale_temp_files, size_and_sha256
from pipeline.errors import ModelError
from pipeline.files import atomic_open

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = (6,)
# Dtype ids in the order of CTranslate2's DataType enum. bfloat16 has no numpy type: kept as raw uint16.
DTYPES: dict[int, tuple[str, str]] = {
    0: ("float32", "<f4"),
    1: ("int8", "<i1"),
    2: ("int16", "<i2"),
    3: ("int32", "<i4"),
    4: ("float16", "<f2"),
    5: ("bfloat16", "<u2"),
}
FLOAT_DTYPES = ("float32", "float16", "bfloat16")

# What Whisper base measures; other sizes differ, which is why dims are read from the shapes.
BASE_DIMS = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 512,
    "n_audio_head": 8,
    "n_audio_layer": 6,
    "n_vocab": 51865,
    "n_text_ctx": 448,
    "n_text_state": 512,
    "n_text_head": 8,
    "n_text_layer": 6,
}
# Bump when the conversion changes, so cached checkpoints made by older code are rebuilt.
CONVERTER_VERSION = 1
_MAX_STRING = 4096


@dataclass(frozen=True)
class Ct2Variable:
    name: str
    dtype: str  # "float32", "int8", "int16", "int32", "float16" or "bfloat16"
    shape: tuple[int, ...]
    data: np.ndarray  # flat-shaped to ``shape``; bfloat16 as uint16 bit patterns

    def scalar(self) -> float:
        return float(self.data.reshape(-1)[0])


@dataclass(frozen=True)
class Ct2Model:
    spec: str
    version: int
    revision: int
    variables: dict[str, Ct2Variable]
    aliases: dict[str, str]

    def __contains__(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def get(self, name: str) -> Ct2Variable:
        """The variable under ``name``, following aliases."""
        seen = set()
        while name in self.aliases and name not in self.variables:
            if name in seen:
                raise ModelError(f"model.bin has an alias loop at {name!r}", "the model file is damaged")
            seen.add(name)
            name = self.aliases[name]
        try:
            return self.variables[name]
        except KeyError:
            raise ModelError(
                f"model.bin has no variable {name!r}; is it a Whisper model?",
                "pass a CTranslate2 Whisper model (e.g. from Systran/faster-whisper-*)",
            ) from None


class _Reader:
    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.f = f
        self.path = path

    def _damaged(self, what: str) -> ModelError:
        return ModelError(
            f"{self.path} is not a readable CTranslate2 model.bin ({what})",
            "download or convert the model again, or pass --model with another model",
        )

    def exact(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise self._damaged("the file ends too early")
        return data

    def u8(self) -> int:
        return int(self.exact(1)[0])

    def u16(self) -> int:
        return int(struct.unpack("<H", self.exact(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.exact(4))[0])

    def string(self) -> str:
        length = self.u16()
        if not 1 <= length <= _MAX_STRING:
            raise self._damaged(f"implausible string length {length}")
        raw = self.exact(length)
        if raw[-1] != 0:
            raise self._damaged("a name is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise self._damaged("a name is not UTF-8") from None


def read_model_bin(path: Path) -> Ct2Model:
    """Parse a CTranslate2 model.bin into memory (one copy of the weights, nothing more)."""
    try:
        with open(path, "rb") as f:
            r = _Reader(f, path)
            version = r.u32()
            if version not in SUPPORTED_VERSIONS:
                raise r._damaged(
                    f"format version {version}; this reader knows " + ", ".join(map(str, SUPPORTED_VERSIONS))
                )
            spec = r.string()
            revision = r.u32()
            variables: dict[str, Ct2Variable] = {}
            for _ in range(r.u32()):
                name = r.string()
                shape = tuple(r.u32() for _ in range(r.u8()))
                type_id = r.u8()
                if type_id not in DTYPES:
                    raise r._damaged(f"unknown dtype id {type_id} for {name!r}")
                dtype, np_dtype = DTYPES[type_id]
                nbytes = r.u32()
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if count * np.dtype(np_dtype).itemsize != nbytes:
                    raise r._damaged(f"{name!r} has {nbytes} bytes for shape {list(shape)} of {dtype}")
                # A writable buffer, so torch can share it without a copy or a warning.
                buffer = bytearray(nbytes)
                if f.readinto(buffer) != nbytes:
                    raise r._damaged("the file ends too early")
                data = np.frombuffer(buffer, dtype=np_dtype).reshape(shape)
                if not data.dtype.isnative:
                    data = data.astype(data.dtype.newbyteorder("="))
                variables[name] = Ct2Variable(name, dtype, shape, data)
            aliases = {}
            for _ in range(r.u32()):
                alias = r.string()
                aliases[alias] = r.string()
            if f.read(1):
                raise r._damaged("unexpected bytes after the aliases")
    except OSError as error:
        raise ModelError(f"cannot read {path} ({error.strerror or error})", "check the path") from error
    return Ct2Model(spec, version, revision, variables, aliases)


def _layer_count(model: Ct2Model, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    if indices != set(range(len(indices))):
        raise ModelError(f"model.bin has gaps in its {stack} layers", "the model file is damaged")
    return len(indices)


def _heads(model: Ct2Model, stack: str, state: int) -> int:
    name = f"{stack}/num_heads"
    if name in model:
        return int(model.get(name).scalar())
    # Every released Whisper size uses 64-dimensional heads.
    return state // 64


def infer_dims(model: Ct2Model) -> dict[str, int]:
    """openai-whisper's ModelDimensions, read from the variables' shapes."""
    conv1 = model.get("encoder/conv1/weight").shape  # (n_audio_state, n_mels, 3)
    audio_pos = model.get("encoder/position_encodings/encodings").shape
    embeddings = model.get("decoder/embeddings/weight").shape  # (n_vocab, n_text_state)
    text_pos = model.get("decoder/position_encodings/encodings").shape
    return {
        "n_mels": conv1[1],
        "n_audio_ctx": audio_pos[0],
        "n_audio_state": conv1[0],
        "n_audio_head": _heads(model, "encoder", conv1[0]),
        "n_audio_layer": _layer_count(model, "encoder"),
        "n_vocab": embeddings[0],
        "n_text_ctx": text_pos[0],
        "n_text_state": embeddings[1],
        "n_text_head": _heads(model, "decoder", embeddings[1]),
        "n_text_layer": _layer_count(model, "decoder"),
    }


def _tensor(variable: Ct2Variable) -> torch.Tensor:
    import torch

    if variable.dtype not in FLOAT_DTYPES:
        raise ModelError(
            f"{variable.name} in model.bin is quantized ({variable.dtype}); openai-whisper needs float "
            "weights",
            "use a float16 or float32 CTranslate2 model (ct2-transformers-converter --quantization "
            "float16), or run it with --engine faster-whisper",
        )
    tensor = torch.from_numpy(variable.data)
    return tensor.view(torch.bfloat16) if variable.dtype == "bfloat16" else tensor


def convert_to_openai(model: Ct2Model) -> dict[str, Any]:
    """Build ``{"dims": ..., "model_state_dict": ...}`` as ``whisper.load_model`` expects.

    The tensors share memory with ``model`` where they can (splits of stacked matrices are views), so
    the conversion costs little beyond the model itself.
    """
    if model.spec != "WhisperSpec":
        raise ModelError(
            f"model.bin holds a {model.spec}, not a Whisper model",
            "pass a CTranslate2 Whisper model (e.g. from Systran/faster-whisper-*)",
        )
    dims = infer_dims(model)
    state: dict[str, torch.Tensor] = {}

    def put(target: str, source: str) -> None:
        state[target] = _tensor(model.get(source))

    def linear(target: str, source: str) -> None:
        put(f"{target}.weight", f"{source}/weight")
        put(f"{target}.bias", f"{source}/bias")

    def norm(target: str, source: str) -> None:
        put(f"{target}.weight", f"{source}/gamma")
        put(f"{target}.bias", f"{source}/beta")

    def stacked(targets: tuple[str, ...], source: str, n_state: int) -> None:
        weight = _tensor(model.get(f"{source}/weight"))
        bias = _tensor(model.get(f"{source}/bias"))
        if weight.shape[0] != n_state * len(targets) or bias.shape[0] != weight.shape[0]:
            raise ModelError(
                f"{source} in model.bin has shape {list(weight.shape)}, expected "
                f"{[n_state * len(targets), n_state]}",
                "the model is not a standard Whisper model",
            )
        for k, target in enumerate(targets):
            rows = slice(k * n_state, (k + 1) * n_state)
            state[f"{target}.weight"] = weight[rows]
            # openai's key projection has no bias; dropping it is exact because a bias on the key adds
            # the same amount to every score of a query, which softmax cancels.
            if not target.endswith(".key"):
                state[f"{target}.bias"] = bias[rows]

    def block(target: str, source: str, n_state: int, cross: bool) -> None:
        attn = ("query", "key", "value")
        stacked(tuple(f"{target}.attn.{p}" for p in attn), f"{source}/self_attention/linear_0", n_state)
        linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        if cross:
            linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            stacked(
                (f"{target}.cross_attn.key", f"{target}.cross_attn.value"),
                f"{source}/attention/linear_1",
                n_state,
            )
            linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
            norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
        linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")
        norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    put("encoder.positional_embedding", "encoder/position_encodings/encodings")
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", dims["n_audio_state"], cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.token_embedding.weight", "decoder/embeddings/weight")
    put("decoder.positional_embedding", "decoder/position_encodings/encodings")
    for i in range(dims["n_text_layer"]):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", dims["n_text_state"], cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return {"dims": dims, "model_state_dict": state}


def alignment_heads_dump(heads: Iterable[Iterable[int]], n_text_layer: int, n_text_head: int) -> bytes:
    """Encode (layer, head) pairs the way ``Whisper.set_alignment_heads`` decodes them: a dense bool
    mask of shape (n_text_layer, n_text_head), row-major, gzip-compressed, then base85."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for pair in heads:
        layer, head = (int(v) for v in pair)
        if not (0 <= layer < n_text_layer and 0 <= head < n_text_head):
            raise ModelError(
                f"alignment head ({layer}, {head}) is outside a {n_text_layer}x{n_text_head} decoder",
                "the model's config.json does not belong to its model.bin",
            )
        mask[layer, head] = True
    # mtime=0 keeps the bytes reproducible, so the dump can sit in a cache key.
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def read_alignment_heads(config_json: Path | None) -> list[list[int]] | None:
    if config_json is None or not config_json.is_file():
        return None
    try:
        heads = json.loads(config_json.read_text(encoding="utf-8")).get("alignment_heads")
    except (OSError, ValueError, AttributeError):
        return None
    if not heads:
        return None
    return [[int(layer), int(head)] for layer, head in heads]


@dataclass(frozen=True)
class ConvertedModel:
    path: Path  # the openai-whisper checkpoint (.pt)
    sha256: str  # of the .pt
    source_sha256: str  # of the model.bin it was made from
    dims: dict[str, int]
    alignment_heads: list[list[int]] | None  # (decoder layer, head) pairs for word timestamps
    converted_now: bool

    def alignment_heads_dump(self) -> bytes | None:
        if not self.alignment_heads:
            return None
        return alignment_heads_dump(self.alignment_heads, self.dims["n_text_layer"], self.dims["n_text_head"])


def _sidecar(target: Path) -> Path:
    return target.with_suffix(".json")


def _cached(target: Path, source_sha256: str) -> ConvertedModel | None:
    try:
        meta = json.loads(_sidecar(target).read_text(encoding="utf-8"))
        if meta.get("converter_version") != CONVERTER_VERSION or meta.get("source_sha256") != source_sha256:
            return None
        size, sha = size_and_sha256(target)
        if size != meta["size"] or sha != meta["sha256"]:
            log.warning("cached checkpoint %s is damaged; converting again", target)
            return None
        return ConvertedModel(
            target, sha, source_sha256, dict(meta["dims"]), meta.get("alignment_heads"), converted_now=False
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def default_target(source_sha256: str) -> Path:
    """Cache place for a checkpoint converted from some CTranslate2 folder, keyed by its checksum."""
    return models_dir() / "openai-from-ct2" / f"{source_sha256[:16]}.pt"


def ensure_converted(
    model_bin: Path,
    config_json: Path | None = None,
    target: Path | None = None,
    source_sha256: str | None = None,
) -> ConvertedModel:
    """The openai-whisper checkpoint for ``model_bin``, converted once and cached.

    The cache is keyed by the SHA-256 of model.bin (pass it when it is already known, to skip hashing),
    so it is rebuilt only when the source changes. ``config_json`` supplies the alignment heads.
    """
    import torch

    if source_sha256 is None:
        source_sha256 = size_and_sha256(model_bin)[1]
    if target is None:
        target = default_target(source_sha256)
    found = _cached(target, source_sha256)
    if found is not None:
        return found

    started = time.monotonic()
    heads = read_alignment_heads(config_json)
    checkpoint = convert_to_openai(read_model_bin(model_bin))
    dims = dict(checkpoint["dims"])
    if heads:
        # Validates the pairs against the dims now rather than when a transcription starts.
        alignment_heads_dump(heads, dims["n_text_layer"], dims["n_text_head"])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(target.parent)
        with atomic_open(target) as out:
            torch.save(checkpoint, out)
        del checkpoint
        size, sha = size_and_sha256(target)
        meta = {
            "converter_version": CONVERTER_VERSION,
            "source": str(model_bin),
            "source_sha256": source_sha256,
            "size": size,
            "sha256": sha,
            "dims": dims,
            "alignment_heads": heads,
        }
        with atomic_open(_sidecar(target)) as out:
            out.write(json.dumps(meta, indent=2).encode("utf-8"))
    except OSError as error:
        raise ModelError(
            f"cannot write the converted model {target} ({error.strerror or error})",
            "free disk space or set HEARING_PIPELINE_CACHE to a writable folder",
        ) from error
    log.info("converted %s for openai-whisper in %.1f s", model_bin, time.monotonic() - started)
    return ConvertedModel(target, sha, source_sha256, dims, heads, converted_now=True)
