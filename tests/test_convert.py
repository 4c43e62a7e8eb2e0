"""Transformers Whisper weights to a CTranslate2 folder, and a real run with what comes out.

The model is made here: a tiny Whisper with random weights and the embedded base model's tokenizer,
saved as transformers saves a model on the hub. Its words are nonsense; what the tests hold is the path
(conversion, the record of it, the transcript cache, the run's and the archive's provenance).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import MEDIA, REPO, run_cli, run_here, tree_digest

from pipeline.engines import convert
from pipeline.errors import MissingToolError, ModelError, UsageError

RECORDING = "da-nst-u0013002.wav"  # 4.2 s of real read Danish


def base_model() -> Path:
    from pipeline.engines import embedded

    return embedded.ensure_embedded_model().path


def make_tiny_whisper(folder: Path, *, seed: int, mels: int = 80, preprocessor: bool = True) -> Path:
    """A Whisper of base's vocabulary and special tokens but two small layers each side, with random
    weights, saved with base's tokenizer.json and (optionally) a preprocessor_config.json (the
    benchmark's models of the large shapes are made the same way)."""
    sys.path.insert(0, str(REPO / "bench"))
    import shapes  # the benchmark's module, beside the benchmarks

    tiny = shapes.Shape(
        "tiny", decoder_layers=2, alignment_heads=((1, 0), (1, 1)), encoder_layers=2, d_model=64, heads=2,
        ffn=128, mels=mels,
    )  # fmt: skip
    return shapes.make_transformers(tiny, folder, seed=seed, half=False, preprocessor=preprocessor)


class Converted:
    def __init__(self, source: Path, target: Path, conversion: convert.Conversion, seconds: float) -> None:
        self.source = source
        self.target = target
        self.conversion = conversion
        self.seconds = seconds


def converted(root: Path, name: str, seed: int) -> Converted:
    source = make_tiny_whisper(root / f"{name}-transformers", seed=seed)
    target = root / "models" / name
    started = time.monotonic()
    conversion = convert.to_ctranslate2(source, target)
    return Converted(source, target, conversion, time.monotonic() - started)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Converted:
    return converted(tmp_path_factory.mktemp("tiny"), "tiny-whisper", seed=1)


def test_the_converted_folder_is_what_faster_whisper_loads(tiny: Converted) -> None:
    base = base_model()
    assert sorted(p.name for p in tiny.target.iterdir()) == [
        "config.json",
        "model.bin",
        "preprocessor_config.json",
        "tokenizer.json",
        "vocabulary.json",
    ]
    # The tokenizer and the preprocessor's mel count arrive byte for byte.
    for name in ("tokenizer.json", "preprocessor_config.json"):
        assert (tiny.target / name).read_bytes() == (tiny.source / name).read_bytes()
    # The vocabulary and the special tokens are base's: the tokenizer and the generation settings
    # went through the converter, not a guess of its own.
    vocabulary = json.loads((tiny.target / "vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary == (base / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    ours = json.loads((tiny.target / "config.json").read_text(encoding="utf-8"))
    theirs = json.loads((base / "config.json").read_text(encoding="utf-8"))
    for key in ("lang_ids", "suppress_ids", "suppress_ids_begin"):
        assert ours[key] == theirs[key], key
    # Quantized to int8: the file is a fraction of the float32 weights it came from.
    weights = (tiny.source / "model.safetensors").stat().st_size
    assert (tiny.target / "model.bin").stat().st_size < weights * 0.5
    # Nothing else was left beside it.
    assert sorted(p.name for p in tiny.target.parent.iterdir()) == ["tiny-whisper"]

    import ctranslate2

    model = ctranslate2.models.Whisper(str(tiny.target), device="cpu", compute_type="int8")
    assert model.is_multilingual and model.n_mels == 80


def test_the_record_says_what_was_done(tiny: Converted) -> None:
    from importlib import metadata

    record = tiny.conversion
    assert record.converter == "ctranslate2.converters.TransformersConverter"
    assert record.converter_version == metadata.version("ctranslate2")
    assert record.quantization == "int8"
    assert record.command.startswith(
        "ct2-transformers-converter --model tiny-whisper-transformers --output_dir tiny-whisper "
        "--quantization int8"
    )
    assert "--copy_files tokenizer.json preprocessor_config.json" in record.command
    assert f"transformers {metadata.version('transformers')}" in record.command
    # The record travels with the model and into archives: folder names, never this machine's paths.
    assert str(tiny.source.parent) not in record.command
    assert json.loads(json.dumps(record.as_dict())) == {
        "converter": record.converter,
        "converter_version": record.converter_version,
        "quantization": "int8",
        "command": record.command,
    }


def test_without_a_preprocessor_config_the_mel_count_is_written(tmp_path: Path) -> None:
    """faster-whisper assumes 80 mel bands without preprocessor_config.json; a 128-band model (large-v3's
    shape) would then fail on every file."""
    source = make_tiny_whisper(tmp_path / "src", seed=2, mels=128, preprocessor=False)
    conversion = convert.to_ctranslate2(source, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text(encoding="utf-8"))
    assert written == {"feature_size": 128}
    assert "preprocessor_config.json written with feature_size 128" in conversion.command

    from faster_whisper import WhisperModel

    whisper = WhisperModel(str(tmp_path / "out"), device="cpu", compute_type="int8")
    assert whisper.feature_extractor.mel_filters.shape[0] == 128


# ------------------------------------------------------------------------------------ a real run


def plan_of(
    meeting: Path, out: Path, form: Path, model: Path | str, env: dict[str, str] | None = None
) -> dict[str, dict[str, object]]:
    """The steps a run would take, by stage, for the one statement (a dry run: nothing is loaded)."""
    done = run_here(
        "run",
        meeting,
        "--out",
        out,
        "--form",
        form,
        "--language",
        "da",
        "--model",
        model,
        "--dry-run",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["plan"]["steps"]
    return {step["stage"]: step for step in steps if step["statement"] == "s01"}


TINY_REPO = "test-org/tiny-whisper"


def got_from_a_hub(source: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``source`` (transformers weights) published on a local hub and got as `hearing models get` gets a
    catalogue model: downloaded, verified, converted by CTranslate2's converter, stored with its
    manifest in the model cache HEARING_PIPELINE_CACHE names (set here for this test)."""
    import dataclasses

    from hub_server import Hub, describe
    from huggingface_hub import constants

    from pipeline.engines import catalogue, download

    files = sorted(p.name for p in source.iterdir())
    hub = Hub(
        {TINY_REPO: {f: describe(source / f, f.endswith((".safetensors", "tokenizer.json"))) for f in files}}
    )
    hub.start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        entry = dataclasses.replace(
            catalogue.entry("base"),
            name=name,
            repo=TINY_REPO,
            format="transformers",
            files=tuple(files),
            licence_conditions=None,
        )
        return download.get(entry)
    finally:
        hub.stop()


@pytest.mark.slow
def test_a_converted_model_runs_a_meeting_and_is_named_wherever_the_words_are_accounted_for(
    tiny: Converted, make_meeting, small_form: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    cache = {"HEARING_PIPELINE_CACHE": str(tmp_path / "cache")}
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", cache["HEARING_PIPELINE_CACHE"])
    stored = got_from_a_hub(tiny.source, "tiny-whisper", monkeypatch)
    manifest = json.loads((stored / "hearing-model.json").read_text(encoding="utf-8"))
    model_sha = next(f["sha256"] for f in manifest["installed_files"] if f["name"] == "model.bin")

    meeting = make_meeting({RECORDING: MEDIA / RECORDING})
    before = tree_digest(meeting)
    out = tmp_path / "ud"
    started = time.monotonic()
    run = run_cli(
        "run", meeting, "--out", out, "--form", small_form, "--language", "da", "--model", "tiny-whisper",
        env=cache,
    )  # fmt: skip
    seconds = time.monotonic() - started
    # Random weights write nonsense, word by word with no confidence at all: the statement reaches the
    # committee with its words, each flagged for a person to check, and the run succeeds.
    assert run.returncode == 0, run.stderr
    assert tree_digest(meeting) == before
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert report["rejected"] == [] and report["exit_code"] == 0
    assert [s["no_text"] for s in report["statements"]] == [False]

    # The model by its place and its content, and where it came from as its manifest says, in the
    # run's record; and where it ran (no GPU here).
    engine = report["engine"]
    assert (engine["name"], engine["model"], engine["model_source"]) == (
        "faster-whisper", "tiny-whisper", "catalogue",
    )  # fmt: skip
    assert engine["model_path"] == str(stored) and engine["model_sha256"] == model_sha
    assert (engine["device"], engine["compute_type"]) == ("cpu", "int8")
    origin = engine["model_origin"]
    assert (origin["repo"], origin["revision"], origin["format"]) == (
        TINY_REPO, manifest["revision"], "transformers",
    )  # fmt: skip
    conversion = origin["conversion"]
    assert conversion == manifest["conversion"]
    assert conversion["converter"] == convert.CONVERTER
    assert conversion["converter_version"] == metadata.version("ctranslate2")
    assert conversion["quantization"] == "int8"
    assert conversion["command"].startswith("ct2-transformers-converter --model ")
    assert "--quantization int8" in conversion["command"]

    # The transcript the engine made, stored under a key that names the model.
    transcribe = next(s for s in report["stages"] if s["stage"] == "transcribe" and s["statement"] == "s01")
    made = json.loads((out / "work" / "transcripts" / f"{transcribe['key']}.json").read_text("utf-8"))
    assert made["model"] == "tiny-whisper"
    words = [w for segment in made["segments"] for w in segment["words"]]
    assert words and all("low_confidence" in w["flags"] for w in words)
    text = (out / "delivery").glob("*-transkription.txt")
    header = next(text).read_text(encoding="utf-8")
    assert "Whisper tiny-whisper, faster-whisper" in header
    assert all(w["text"].strip() in header for w in words)

    # The cache: the same model finds the transcript; another model (the same shape, other weights)
    # and the embedded base each need their own.
    other = converted(tmp_path, "other-whisper", seed=2)
    plans = {
        name: plan_of(meeting, out, small_form, model, env=cache)["transcribe"]
        for name, model in (("same", "tiny-whisper"), ("other", other.target), ("base", "base"))
    }
    assert plans["same"]["key"] == transcribe["key"] and plans["same"]["cached"] is True
    assert plans["other"]["cached"] is False and plans["base"]["cached"] is False
    assert len({plan["key"] for plan in plans.values()}) == 3

    # The archive's provenance names the model that wrote the words, with its digest, where it came
    # from and how it was converted; each transcription where it ran.
    provenance = json.loads((out / "archive" / "data" / "metadata" / "provenance.json").read_text("utf-8"))
    models = [a for a in provenance["agents"] if a["agentNote"].startswith("speech model")]
    assert [(a["agentName"], a["agentVersion"]) for a in models] == [("tiny-whisper", "catalogue")]
    (agent,) = models
    assert agent["agentNote"].startswith(f"speech model; sha256={model_sha}; from {TINY_REPO} at revision ")
    assert manifest["revision"] in agent["agentNote"]
    assert (
        f"converted to CTranslate2 (int8) by {convert.CONVERTER} {conversion['converter_version']}"
        in (agent["agentNote"])
    )
    assert conversion["command"] in agent["agentNote"]
    assert agent["agentExtension"]["model_origin"] == origin
    (event,) = [e for e in provenance["events"] if e["eventType"] == "transcription"]
    detail = event["eventDetailInformation"]["eventDetail"]
    assert "device=cpu compute_type=int8" in detail and model_sha in detail
    print(f"conversion {tiny.seconds:.1f} s, other {other.seconds:.1f} s, run {seconds:.1f} s")


# ------------------------------------------------------------------------------------ failures


def source_without(tmp_path: Path, *, drop: tuple[str, ...] = (), seed: int = 3) -> Path:
    source = make_tiny_whisper(tmp_path / "src", seed=seed)
    for name in drop:
        (source / name).unlink()
    return source


def assert_nothing_at(target: Path) -> None:
    assert not target.exists()
    # Not even a staging folder beside it.
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}")] == []


def test_a_folder_without_weights_leaves_nothing_at_the_target(tmp_path: Path) -> None:
    source = source_without(tmp_path, drop=("model.safetensors",))
    target = tmp_path / "models" / "out"
    with pytest.raises(ModelError, match="cannot convert the weights in") as caught:
        convert.to_ctranslate2(source, target)
    assert str(source) in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 4
    assert_nothing_at(target)


def test_damaged_weights_leave_nothing_at_the_target(tmp_path: Path) -> None:
    source = source_without(tmp_path)
    weights = source / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    target = tmp_path / "out"
    with pytest.raises(ModelError, match="cannot convert the weights"):
        convert.to_ctranslate2(source, target)
    assert_nothing_at(target)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no-config", "no config.json"),
        ("no-tokenizer", "no tokenizer.json"),
        ("not-whisper", "'bert' model, not Whisper"),
        ("config-not-json", "config.json is unreadable"),
        ("config-a-list", "config.json is not a JSON object"),
        ("mels-disagree", "feature_size 128 but the model listens with 80 mel bands"),
        ("a-file", "it is not a folder"),
    ],
)
def test_what_cannot_be_a_whisper_model_is_refused_before_loading(
    tmp_path: Path, case: str, reason: str
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    config: object = {"model_type": "whisper", "num_mel_bins": 80}
    (source / "tokenizer.json").write_text("{}", encoding="utf-8")
    if case == "no-tokenizer":
        (source / "tokenizer.json").unlink()
    if case == "not-whisper":
        config = {"model_type": "bert"}
    if case == "config-a-list":
        config = ["whisper"]
    if case == "mels-disagree":
        (source / "preprocessor_config.json").write_text('{"feature_size": 128}', encoding="utf-8")
    if case != "no-config":
        (source / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if case == "config-not-json":
        (source / "config.json").write_bytes(b"\xff\xfe{not json")
    if case == "a-file":
        shutil.rmtree(source)
        source.write_bytes(b"weights?")
    target = tmp_path / "out"
    with pytest.raises(ModelError, match="cannot convert") as caught:
        convert.to_ctranslate2(source, target)
    assert reason in str(caught.value)
    assert_nothing_at(target)


def test_an_interrupted_conversion_leaves_nothing_at_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the converter has written its files into the staging folder, before the rename."""
    from ctranslate2.specs import model_spec

    save = model_spec.ModelSpec.save

    def save_then_interrupt(self: object, output_dir: str) -> None:
        save(self, output_dir)
        assert (Path(output_dir) / "model.bin").is_file()
        raise KeyboardInterrupt

    monkeypatch.setattr(model_spec.ModelSpec, "save", save_then_interrupt)
    source = source_without(tmp_path)
    target = tmp_path / "models" / "out"
    with pytest.raises(KeyboardInterrupt):
        convert.to_ctranslate2(source, target)
    assert_nothing_at(target)


def test_what_a_killed_conversion_left_is_cleared_by_the_next(tmp_path: Path) -> None:
    import subprocess
    import sys

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = int(ended.stdout)
    models = tmp_path / "models"
    left = models / f".out.converting-{dead}"
    (left / "half").mkdir(parents=True)
    (left / "half" / "model.bin").write_bytes(b"half a model")
    # Another conversion of the same name still at work in a running process, and another model's.
    busy = models / f".out.converting-{os.getppid()}"
    busy.mkdir()
    other = models / f".else.converting-{dead}"
    other.mkdir()
    convert.to_ctranslate2(source_without(tmp_path), models / "out")
    assert not left.exists()
    assert busy.is_dir() and other.is_dir()
    assert (models / "out" / "model.bin").is_file()


def test_an_existing_target_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "model.bin").write_bytes(b"someone's model")
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "whisper"}', encoding="utf-8")
    (source / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelError, match="already exists"):
        convert.to_ctranslate2(source, target)
    assert (target / "model.bin").read_bytes() == b"someone's model"


def test_an_unknown_quantization_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="int4"):
        convert.to_ctranslate2(tmp_path, tmp_path / "out", quantization="int4")


def test_without_transformers_it_names_the_extra(tmp_path: Path) -> None:
    """In a process where transformers cannot be imported, the one error names the extra to install."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "whisper"}', encoding="utf-8")
    (source / "tokenizer.json").write_text("{}", encoding="utf-8")
    shadow = tmp_path / "shadow" / "transformers"
    shadow.mkdir(parents=True)
    hidden = "raise ImportError('hidden', name='transformers')\n"
    (shadow / "__init__.py").write_text(hidden, encoding="utf-8")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; from pipeline.engines import convert; from pipeline.errors import *;\n"
        "try: convert.to_ctranslate2(Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "except MissingToolError as e: print(type(e).__name__, e.exit_code, e)"
    )
    import subprocess
    import sys

    from conftest import REPO

    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "shadow"), str(source), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.stdout.strip() == (
        "MissingToolError 4 converting transformers weights needs transformers, which is not installed: "
        + convert.INSTALL_HINT
    ), done.stderr
    assert convert.INSTALL_HINT.endswith("pip install 'hearing-pipeline[convert]'")
    assert not (tmp_path / "out").exists()
    assert issubclass(ModelError, MissingToolError)
