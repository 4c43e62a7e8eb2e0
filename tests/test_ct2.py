"""The CTranslate2 model.bin reader and the conversion to an openai-whisper checkpoint."""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.engines import ct2
from pipeline.errors import ModelError

DTYPE_IDS = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("float16"): 4}


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_model_bin(
    path: Path,
    variables: dict[str, np.ndarray],
    aliases: dict[str, str] | None = None,
    version: int = 6,
    spec: str = "WhisperSpec",
) -> Path:
    """The format as the issue describes it, written independently of the reader under test."""
    out = [struct.pack("<I", version), _string(spec), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, array in variables.items():
        data = np.asarray(array)  # not ascontiguousarray: that turns a scalar into shape (1,)
        out.append(_string(name))
        out.append(struct.pack("<B", data.ndim))
        out.extend(struct.pack("<I", d) for d in data.shape)
        out.append(struct.pack("<B", DTYPE_IDS[data.dtype]))
        raw = data.astype(data.dtype.newbyteorder("<")).tobytes()
        out.append(struct.pack("<I", len(raw)))
        out.append(raw)
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out.append(_string(alias) + _string(target))
    path.write_bytes(b"".join(out))
    return path


# A Whisper small enough to write inline: 2 mels, state 8, 2 heads, one layer each side, 7 tokens
# (openai-whisper fixes the MLP at 4 x state).
TINY = {"mels": 2, "audio_ctx": 3, "state": 8, "heads": 2, "vocab": 7, "text_ctx": 5, "ffn": 32}


def tiny_whisper_variables(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, f = TINY["state"], TINY["ffn"]

    def rand(*shape: int, dtype: str = "float16") -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    def attention(prefix: str, stacked_rows: int) -> dict[str, np.ndarray]:
        return {
            f"{prefix}/linear_0/weight": rand(stacked_rows, n),
            f"{prefix}/linear_0/bias": rand(stacked_rows),
            f"{prefix}/linear_1/weight": rand(n, n),
            f"{prefix}/linear_1/bias": rand(n),
            f"{prefix}/layer_norm/gamma": rand(n, dtype="float32"),
            f"{prefix}/layer_norm/beta": rand(n, dtype="float32"),
        }

    def ffn(prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}/linear_0/weight": rand(f, n),
            f"{prefix}/linear_0/bias": rand(f),
            f"{prefix}/linear_1/weight": rand(n, f),
            f"{prefix}/linear_1/bias": rand(n),
            f"{prefix}/layer_norm/gamma": rand(n),
            f"{prefix}/layer_norm/beta": rand(n),
        }

    v: dict[str, np.ndarray] = {
        "decoder/num_heads": np.array(TINY["heads"], dtype=np.int16),
        "decoder/embeddings/weight": rand(TINY["vocab"], n),
        "decoder/position_encodings/encodings": rand(TINY["text_ctx"], n, dtype="float32"),
        "decoder/layer_norm/gamma": rand(n),
        "decoder/layer_norm/beta": rand(n),
        "encoder/num_heads": np.array(TINY["heads"], dtype=np.int16),
        "encoder/conv1/weight": rand(n, TINY["mels"], 3),
        "encoder/conv1/bias": rand(n),
        "encoder/conv2/weight": rand(n, n, 3),
        "encoder/conv2/bias": rand(n),
        "encoder/position_encodings/encodings": rand(TINY["audio_ctx"], n, dtype="float32"),
        "encoder/layer_norm/gamma": rand(n),
        "encoder/layer_norm/beta": rand(n),
    }
    v.update(attention("encoder/layer_0/self_attention", 3 * n))
    v.update(ffn("encoder/layer_0/ffn"))
    v.update(attention("decoder/layer_0/self_attention", 3 * n))
    cross = attention("decoder/layer_0/attention", n)
    cross["decoder/layer_0/attention/linear_1/weight"] = rand(2 * n, n)
    cross["decoder/layer_0/attention/linear_1/bias"] = rand(2 * n)
    cross["decoder/layer_0/attention/linear_2/weight"] = rand(n, n)
    cross["decoder/layer_0/attention/linear_2/bias"] = rand(n)
    v.update(cross)
    v.update(ffn("decoder/layer_0/ffn"))
    return v


HEADS_BASE = [[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]]
TINY_ALIASES = {"decoder/projection/weight": "decoder/embeddings/weight"}


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-ct2"
    folder.mkdir()
    write_model_bin(folder / "model.bin", tiny_whisper_variables(), TINY_ALIASES)
    (folder / "config.json").write_text(json.dumps({"alignment_heads": [[0, 1]]}))
    return folder


def test_reader_reads_shapes_dtypes_values_and_aliases(tmp_path: Path) -> None:
    half = np.arange(6, dtype=np.float16).reshape(2, 3) / 4
    single = np.array([1.5, -2.25, 3.0], dtype=np.float32)
    path = write_model_bin(
        tmp_path / "model.bin",
        {"a/half": half, "b/single": single, "c/scalar": np.array(8, dtype=np.int16)},
        {"z/alias": "a/half"},
    )
    model = ct2.read_model_bin(path)
    assert (model.spec, model.version, model.revision) == ("WhisperSpec", 6, 3)
    assert model.get("a/half").dtype == "float16"
    assert model.get("a/half").shape == (2, 3)
    np.testing.assert_array_equal(model.get("a/half").data, half)
    assert model.get("b/single").dtype == "float32"
    np.testing.assert_array_equal(model.get("b/single").data, single)
    assert model.get("c/scalar").shape == ()
    assert model.get("c/scalar").scalar() == 8
    assert "z/alias" in model
    assert model.get("z/alias") is model.get("a/half")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: struct.pack("<I", 2) + raw[4:], "format version 2"),
        (lambda raw: raw[:-7], "ends too early"),
        (lambda raw: raw + b"x", "unexpected bytes"),
        (lambda raw: b"", "ends too early"),
    ],
)
def test_reader_rejects_damaged_files(tmp_path: Path, damage: Callable[[bytes], bytes], message: str) -> None:
    path = write_model_bin(tmp_path / "model.bin", {"a": np.zeros(4, np.float16)}, {"b": "a"})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelError, match=message) as caught:
        ct2.read_model_bin(path)
    assert caught.value.exit_code == 4


def test_conversion_maps_names_splits_stacks_and_drops_the_key_bias(tiny_model_dir: Path) -> None:
    variables = tiny_whisper_variables()
    checkpoint = ct2.convert_to_openai(ct2.read_model_bin(tiny_model_dir / "model.bin"))
    n = TINY["state"]
    assert checkpoint["dims"] == {
        "n_mels": TINY["mels"],
        "n_audio_ctx": TINY["audio_ctx"],
        "n_audio_state": n,
        "n_audio_head": TINY["heads"],
        "n_audio_layer": 1,
        "n_vocab": TINY["vocab"],
        "n_text_ctx": TINY["text_ctx"],
        "n_text_state": n,
        "n_text_head": TINY["heads"],
        "n_text_layer": 1,
    }
    state = {k: v.numpy() for k, v in checkpoint["model_state_dict"].items()}
    qkv = variables["encoder/layer_0/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(state["encoder.blocks.0.attn.query.weight"], qkv[:n])
    np.testing.assert_array_equal(state["encoder.blocks.0.attn.key.weight"], qkv[n : 2 * n])
    np.testing.assert_array_equal(state["encoder.blocks.0.attn.value.weight"], qkv[2 * n :])
    qkv_bias = variables["encoder/layer_0/self_attention/linear_0/bias"]
    np.testing.assert_array_equal(state["encoder.blocks.0.attn.value.bias"], qkv_bias[2 * n :])
    assert "encoder.blocks.0.attn.key.bias" not in state
    kv = variables["decoder/layer_0/attention/linear_1/weight"]
    np.testing.assert_array_equal(state["decoder.blocks.0.cross_attn.key.weight"], kv[:n])
    np.testing.assert_array_equal(state["decoder.blocks.0.cross_attn.value.weight"], kv[n:])
    assert "decoder.blocks.0.cross_attn.key.bias" not in state
    np.testing.assert_array_equal(
        state["decoder.blocks.0.cross_attn.out.weight"],
        variables["decoder/layer_0/attention/linear_2/weight"],
    )
    np.testing.assert_array_equal(state["encoder.ln_post.weight"], variables["encoder/layer_norm/gamma"])
    np.testing.assert_array_equal(state["decoder.ln.bias"], variables["decoder/layer_norm/beta"])
    np.testing.assert_array_equal(
        state["decoder.blocks.0.mlp.2.weight"], variables["decoder/layer_0/ffn/linear_1/weight"]
    )
    np.testing.assert_array_equal(
        state["decoder.token_embedding.weight"], variables["decoder/embeddings/weight"]
    )
    # float32 variables stay float32, float16 stay float16
    assert state["encoder.positional_embedding"].dtype == np.float32
    assert state["encoder.conv1.weight"].dtype == np.float16


def test_conversion_loads_strictly_into_openai_whisper(tiny_model_dir: Path) -> None:
    # The [openai] extra is part of the test environment (make install): its absence fails, never skips.
    import torch
    from whisper.model import ModelDimensions, Whisper

    checkpoint = ct2.convert_to_openai(ct2.read_model_bin(tiny_model_dir / "model.bin"))
    model = Whisper(ModelDimensions(**checkpoint["dims"]))
    # strict: every parameter of openai's model is filled and nothing is left over
    loaded = model.load_state_dict(checkpoint["model_state_dict"], strict=True)
    assert (loaded.missing_keys, loaded.unexpected_keys) == ([], [])
    # ... and holds the converted values, not ones it was initialised with.
    state = model.state_dict()
    for name, value in checkpoint["model_state_dict"].items():
        assert torch.equal(state[name], value.to(state[name].dtype)), name


def test_alias_is_followed_during_conversion(tmp_path: Path) -> None:
    variables = tiny_whisper_variables()
    variables["decoder/embeddings_real"] = variables.pop("decoder/embeddings/weight")
    path = write_model_bin(
        tmp_path / "model.bin", variables, {"decoder/embeddings/weight": "decoder/embeddings_real"}
    )
    state = ct2.convert_to_openai(ct2.read_model_bin(path))["model_state_dict"]
    np.testing.assert_array_equal(
        state["decoder.token_embedding.weight"].numpy(), variables["decoder/embeddings_real"]
    )


def test_quantized_weights_are_refused_with_a_fix(tmp_path: Path) -> None:
    variables = tiny_whisper_variables()
    variables["encoder/conv2/weight"] = np.ones((8, 8, 3), dtype=np.int8)
    path = write_model_bin(tmp_path / "model.bin", variables)
    with pytest.raises(ModelError, match="quantized"):
        ct2.convert_to_openai(ct2.read_model_bin(path))


def test_not_a_whisper_model_is_refused(tmp_path: Path) -> None:
    path = write_model_bin(tmp_path / "model.bin", {"a": np.zeros(2, np.float16)}, spec="TransformerSpec")
    with pytest.raises(ModelError, match="not a Whisper model"):
        ct2.convert_to_openai(ct2.read_model_bin(path))


def _mask(dump: bytes) -> np.ndarray:
    return np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool)


def test_alignment_heads_dump_is_what_openai_whisper_decodes() -> None:
    whisper = pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")
    from whisper.model import ModelDimensions, Whisper

    heads = [[3, 1], [4, 2], [5, 6]]
    dims = ModelDimensions(80, 4, 64, 1, 1, 10, 4, 64, 8, 6)
    model = Whisper(dims)
    model.set_alignment_heads(ct2.alignment_heads_dump(heads, dims.n_text_layer, dims.n_text_head))
    assert model.alignment_heads.to_dense().nonzero().tolist() == heads
    # config.json's heads for base are the ones openai-whisper ships for base
    assert np.array_equal(
        _mask(ct2.alignment_heads_dump(HEADS_BASE, 6, 8)), _mask(whisper._ALIGNMENT_HEADS["base"])
    )
    with pytest.raises(ModelError, match="outside"):
        ct2.alignment_heads_dump([[6, 0]], 6, 8)


def test_converted_checkpoint_is_cached_by_source_checksum(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    target = tmp_path / "cache" / "tiny-openai.pt"
    first = ct2.ensure_converted(tiny_model_dir / "model.bin", tiny_model_dir / "config.json", target)
    assert first.converted_now and target.is_file()
    assert first.alignment_heads == [[0, 1]]
    assert first.dims["n_text_state"] == TINY["state"]
    again = ct2.ensure_converted(tiny_model_dir / "model.bin", tiny_model_dir / "config.json", target)
    assert not again.converted_now
    assert again.sha256 == first.sha256

    # a damaged cached checkpoint is rebuilt rather than handed to torch
    target.write_bytes(target.read_bytes()[:-10])
    repaired = ct2.ensure_converted(tiny_model_dir / "model.bin", tiny_model_dir / "config.json", target)
    assert repaired.converted_now

    # a changed source is converted again
    write_model_bin(tiny_model_dir / "model.bin", tiny_whisper_variables(seed=1), TINY_ALIASES)
    changed = ct2.ensure_converted(tiny_model_dir / "model.bin", tiny_model_dir / "config.json", target)
    assert changed.converted_now
    assert changed.source_sha256 != first.source_sha256
    assert not list(target.parent.glob(".*.part")), "temp files left behind"


@pytest.mark.slow
def test_embedded_model_converts_and_matches_ctranslate2(tmp_path: Path) -> None:
    """The real model: dims, tensors against the CTranslate2 data, and the same numbers out of both
    runtimes (encoder output and language probabilities, which run the whole decoder once)."""
    pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")
    import ctranslate2
    import torch
    import whisper

    from pipeline.engines import embedded

    if not embedded.embedded_available():
        pytest.skip("the embedded model wheels are not installed")
    source = embedded.ensure_embedded_model()
    converted = ct2.ensure_converted(
        source.model_bin, source.config_json, tmp_path / "base.pt", source_sha256=source.sha256
    )
    assert converted.dims == ct2.BASE_DIMS
    assert converted.alignment_heads == HEADS_BASE

    raw = ct2.read_model_bin(source.model_bin)
    checkpoint = torch.load(converted.path, weights_only=True)
    state = checkpoint["model_state_dict"]
    qkv = raw.get("decoder/layer_3/self_attention/linear_0/weight").data
    assert torch.equal(state["decoder.blocks.3.attn.key.weight"], torch.from_numpy(qkv[512:1024]))
    kv = raw.get("decoder/layer_5/attention/linear_1/weight").data
    assert torch.equal(state["decoder.blocks.5.cross_attn.value.weight"], torch.from_numpy(kv[512:]))
    embeddings = raw.get("decoder/projection/weight").data  # an alias in the real file
    assert torch.equal(state["decoder.token_embedding.weight"], torch.from_numpy(embeddings))
    del raw, checkpoint, state

    model = whisper.load_model(str(converted.path), device="cpu")
    model.set_alignment_heads(converted.alignment_heads_dump())
    assert model.alignment_heads.to_dense().nonzero().tolist() == HEADS_BASE

    mel = np.random.default_rng(0).standard_normal((1, 80, 3000)).astype(np.float32) * 0.5
    runtime = ctranslate2.models.Whisper(str(source.path), device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(mel)
    expected = np.array(runtime.encode(features, to_cpu=True))
    with torch.no_grad():
        actual = model.encoder(torch.from_numpy(mel)).numpy()
    assert np.abs(actual - expected).max() < 1e-2
    ct2_langs = dict(runtime.detect_language(features)[0][:3])
    assert len(ct2_langs) == 3
    with torch.no_grad():
        _, probs = model.detect_language(torch.from_numpy(mel))
    for token, p in ct2_langs.items():
        assert probs[0][token.strip("<|>")] == pytest.approx(p, abs=1e-3)


def test_openai_engine_takes_a_ct2_folder_or_a_checkpoint(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("whisper", reason="openai-whisper (the [openai] extra) is not installed")
    from pipeline.engines import load_engine

    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))
    engine = load_engine("openai-whisper", str(tiny_model_dir))
    assert engine.model.source == "path"
    converted = Path(engine.model.path)
    assert converted.parent == tmp_path / "cache" / "models" / "openai-from-ct2"
    assert engine._whisper.alignment_heads.to_dense().nonzero().tolist() == [[0, 1]]  # type: ignore[attr-defined]

    again = load_engine("openai-whisper", str(converted))
    assert again.model.path == str(converted)

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot load"):
        load_engine("openai-whisper", str(broken))
