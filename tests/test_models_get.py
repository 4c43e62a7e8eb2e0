"""`hearing models get NAME` against a local hub on 127.0.0.1 that serves the embedded base model's real
files as the model hub does: downloaded with progress, resumed after a kill and after a cut connection,
a changed file refused with nothing installed, and then `hearing run --model NAME` with the network gone.

The model is got under a name of its own ("base-from-hub", the catalogue's base entry renamed), so that
a run with it must find the downloaded copy and cannot fall back on the embedded model."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, run_cli
from hub_server import Hub, describe

NAME = "base-from-hub"
REPO_ID = "Systran/faster-whisper-base"
FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
LFS = ("model.bin", "tokenizer.json")

# `hearing models get` in a process of its own, with the catalogue's base entry also known as NAME (and
# licence conditions when asked): the catalogue ships no test entry.
CLI_WITH_TEST_ENTRY = """
import dataclasses, json, os, sys
from pipeline.engines import catalogue
extra = dataclasses.replace(
    catalogue.entry("base"), name=os.environ["TEST_ENTRY_NAME"], repo="Systran/faster-whisper-base",
    files=tuple(json.loads(os.environ["TEST_ENTRY_FILES"])),
    licence_conditions=os.environ.get("TEST_ENTRY_CONDITIONS") or None,
)
known = catalogue.entry
catalogue.entry = lambda name: extra if name == extra.name else known(name)
from pipeline.cli import main
main(sys.argv[1:], prog_name="hearing")
"""


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    from pipeline.engines import embedded

    folder = embedded.ensure_embedded_model().path  # verified against its SHA-256
    served = {name: describe(folder / name, name in LFS) for name in FILES}
    server = Hub({REPO_ID: served}).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_hub(hub: Hub) -> Hub:
    hub.reset()
    return hub


@pytest.fixture
def online(fresh_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """This process talks to the local hub (huggingface_hub reads its settings once, when imported)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", fresh_hub.endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return fresh_hub


def hub_entry(**changes: object) -> object:
    from pipeline.engines import catalogue

    base = catalogue.entry("base")
    return dataclasses.replace(base, name=NAME, repo=REPO_ID, files=FILES, **changes)  # type: ignore[type-var]


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def cli_env(cache: Path, endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(
        HEARING_PIPELINE_CACHE=str(cache),
        HF_ENDPOINT=endpoint,
        HF_HOME=str(cache / "hf"),
        TEST_ENTRY_NAME=NAME,
        TEST_ENTRY_FILES=json.dumps(FILES),
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


def get_cli(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI_WITH_TEST_ENTRY, "models", "get", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def served_digests(hub: Hub) -> dict[str, str]:
    return {name: f.sha256 for name, f in hub.repos[REPO_ID].items()}


def assert_nothing_installed(store: Path) -> None:
    from pipeline.engines import download

    assert download.installed(store) == []
    assert not (store / NAME).exists()
    assert not list(store.glob(".staging-*")), "a half-built model folder was left"


# ------------------------------------------------------------------------------------- downloading


def test_get_downloads_verifies_and_installs_with_progress(online: Hub, tmp_path: Path) -> None:
    from pipeline.engines import download

    store = tmp_path / "models"
    seen: list[tuple[int, int]] = []
    entry = hub_entry()
    path = download.get(entry, store=store, on_progress=lambda done, total: seen.append((done, total)))

    assert path == store / NAME
    total = sum(f.size for f in online.repos[REPO_ID].values())
    assert {t for _, t in seen} == {total}
    assert [d for d, _ in seen] == sorted(d for d, _ in seen), "progress went backwards"
    assert seen[-1] == (total, total) and len(seen) > 10
    digests = served_digests(online)
    from pipeline.engines.embedded import size_and_sha256

    assert {n: size_and_sha256(path / n)[1] for n in FILES} == digests
    manifest = json.loads((path / download.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["name"] == NAME and manifest["repo"] == REPO_ID
    assert manifest["revision"] == entry.revision  # type: ignore[attr-defined]
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == digests
    kinds = {f["name"]: f["hub_digest"].split(":")[0] for f in manifest["files"]}
    assert kinds == {
        "config.json": "git-sha1",
        "model.bin": "sha256",
        "tokenizer.json": "sha256",
        "vocabulary.txt": "git-sha1",
    }
    assert manifest["licence"] and manifest["conversion"] is None and manifest["downloaded"]
    (found,) = download.installed(store)
    assert found.name == NAME and found.model_sha256 == digests["model.bin"]
    assert not [
        p.name for p in store.iterdir() if p.name.startswith((".download-", ".staging-")) and p.is_dir()
    ]

    # Downloaded once: asked again, it answers from the store without a request.
    before = len(online.requests)
    assert download.get(entry, store=store) == path
    assert len(online.requests) == before


def test_a_cut_connection_resumes_where_it_stopped(online: Hub, tmp_path: Path) -> None:
    from pipeline.engines import download

    online.faults.cut_after["model.bin"] = 50_000_000
    path = download.get(hub_entry(), store=tmp_path / "models")
    ranges = online.ranges("model.bin")
    assert ranges[0] is None and len(ranges) == 2 and ranges[1] is not None
    assert 40_000_000 < int(ranges[1].removeprefix("bytes=").rstrip("-")) <= 50_000_000
    size = online.repos[REPO_ID]["model.bin"].size
    assert online.sent["model.bin"] < size + 11_000_000, "the file was fetched again from the start"
    assert download.read_manifest(path) is not None


def test_a_killed_download_leaves_nothing_installed_and_resumes(
    fresh_hub: Hub, online: Hub, tmp_path: Path
) -> None:
    from pipeline.engines import download

    cache = tmp_path / "cache"
    store = cache / "models"
    fresh_hub.faults.slow_after["model.bin"] = 40_000_000  # then 64 KiB per 50 ms: time to kill it
    process = subprocess.Popen(
        [sys.executable, "-c", CLI_WITH_TEST_ENTRY, "models", "get", NAME, "--quiet"],
        env=cli_env(cache, fresh_hub.endpoint),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    digest = served_digests(fresh_hub)["model.bin"]
    partial = store / f".download-{NAME}" / f"{digest}.part"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= 40_000_000):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the download never got going"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    got = partial.stat().st_size
    assert_nothing_installed(store)

    fresh_hub.faults.slow_after.clear()
    fresh_hub.requests.clear()
    path = download.get(hub_entry(), store=store)
    (asked,) = fresh_hub.ranges("model.bin")
    assert asked == f"bytes={got}-", "the second run did not resume from the partial file"
    # config.json, finished before the kill (the files come in name order), is not fetched again.
    assert fresh_hub.ranges("config.json") == [] and fresh_hub.ranges("tokenizer.json") == [None]
    from pipeline.engines.embedded import size_and_sha256

    assert size_and_sha256(path / "model.bin")[1] == digest
    assert [m.name for m in download.installed(store)] == [NAME]


@pytest.mark.parametrize("changed", ["config.json", "model.bin"])
def test_a_file_that_differs_from_its_published_digest_is_refused(
    online: Hub, tmp_path: Path, changed: str
) -> None:
    """Both kinds of published digest: a small file's git blob id and an LFS file's SHA-256."""
    from pipeline.engines import download
    from pipeline.errors import ModelError

    store = tmp_path / "models"
    online.faults.tamper.add(changed)
    with pytest.raises(ModelError) as refused:
        download.get(hub_entry(), store=store)
    message = str(refused.value)
    served = online.repos[REPO_ID][changed]
    assert changed in message and (served.sha256 if changed in LFS else served.git_sha1) in message
    assert len(message.splitlines()) == 1
    assert_nothing_installed(store)
    assert not list(store.glob(f".download-{NAME}/*.part")), "the wrong bytes were kept to resume from"

    # The hub serves the right file again: the next run installs it.
    online.faults.tamper.clear()
    assert download.read_manifest(download.get(hub_entry(), store=store)) is not None


# ------------------------------------------------------------------------------------- disk space


def test_the_room_needed_is_what_is_still_to_fetch_and_the_conversion(tmp_path: Path) -> None:
    from pipeline.engines import download

    files = (
        download.RemoteFile("model.safetensors", 3_000_000_000, "a" * 64, "sha256"),
        download.RemoteFile("config.json", 2_000, "b" * 40, "git-sha1"),
    )
    listing = download.Listing("c" * 40, files)
    margin = download.SPACE_MARGIN
    assert download.space_needed(listing, {}, converts=False) == 3_000_002_000 + margin
    # Converted: half of everything downloaded beside it (int8 from float16 weights is half of them).
    assert download.space_needed(listing, {}, converts=True) == 3_000_002_000 + 1_500_001_000 + margin
    # A resumed download needs room for the rest only; the conversion still needs its room.
    present = {"model.safetensors": 2_000_000_000, "config.json": 2_000}
    assert download.space_needed(listing, present, converts=True) == 1_000_000_000 + 1_500_001_000 + margin

    # What is beside the store, read from the disk: a verified file whole, a partial one so far.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / f"{'a' * 64}.part").write_bytes(b"x" * 1234)
    (downloads / ("b" * 40)).write_bytes(b"y" * 2_000)
    assert download.bytes_present(listing, downloads) == {"model.safetensors": 1234, "config.json": 2_000}
    assert download.bytes_present(listing, tmp_path / "none") == {}

    download.check_room("x", tmp_path, need=10, free=10)
    with pytest.raises(download.NoRoomForModel) as refused:
        download.check_room("large-v3", tmp_path, need=3_200_000_000, free=1_100_000_000)
    line = str(refused.value)
    assert len(line.splitlines()) == 1 and refused.value.exit_code == 4
    assert "needs about 3.2 GB" in line and "1.1 GB is free" in line and str(tmp_path) in line
    assert download.free_bytes(tmp_path / "not" / "made" / "yet") == download.free_bytes(tmp_path) > 0


def test_too_little_room_fetches_nothing_and_installs_nothing(online: Hub, tmp_path: Path) -> None:
    from pipeline.engines import download

    store = tmp_path / "models"
    asked: list[Path] = []

    def nearly_full(folder: Path) -> int:
        asked.append(folder)
        return 5_000_000

    with pytest.raises(download.NoRoomForModel) as refused:
        download.get(hub_entry(), store=store, free_space=nearly_full)
    total = sum(f.size for f in online.repos[REPO_ID].values())
    assert refused.value.need == total + download.SPACE_MARGIN and refused.value.free == 5_000_000
    assert asked == [store]
    assert [p for _, p, _ in online.requests if "/resolve/" in p] == [], "a file was fetched"
    assert_nothing_installed(store)
    # With the room, the same call installs it.
    assert download.read_manifest(download.get(hub_entry(), store=store)) is not None


def test_a_model_larger_than_the_disk_is_refused_by_the_command(
    fresh_hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub lists model.bin as a petabyte: no disk here has that room, and the command says so in
    one line before it fetches a byte."""
    served = fresh_hub.repos[REPO_ID]
    monkeypatch.setitem(served, "model.bin", dataclasses.replace(served["model.bin"], size=10**15))
    cache = tmp_path / "cache"
    result = get_cli(NAME, env=cli_env(cache, fresh_hub.endpoint))
    assert result.returncode == 4, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "not enough free disk space to get" in line and "needs about 1000.0 TB" in line
    assert " is free" in line and "HEARING_PIPELINE_CACHE" in line and "Traceback" not in result.stderr
    assert [p for _, p, _ in fresh_hub.requests if "/resolve/" in p] == []
    assert_nothing_installed(cache / "models")


def test_the_hub_listing_a_file_outside_the_folder_is_refused() -> None:
    from pipeline.engines import download
    from pipeline.errors import ModelError

    lfs = SimpleNamespace(size=3, sha256="a" * 64)
    for hostile in ("../model.bin", "/etc/model.bin", "a/../../b", "./x", ""):
        sibling = SimpleNamespace(rfilename=hostile, size=3, blob_id="b" * 40, lfs=lfs)
        entry = SimpleNamespace(repo=REPO_ID, files=(), name=NAME)
        with pytest.raises(ModelError, match="refusing"):
            download.listing_of(entry, [sibling], "c" * 40)
    # A digest names the partial file: anything but hex of the right length is no digest.
    for blob_id, lfs_sha in [(None, None), ("../../" + "b" * 34, None), ("b" * 39, None), (None, "a" * 63),
                             (None, "../" * 21 + "a"), ("b" * 40, "a" * 63)]:  # fmt: skip
        lfs_info = None if lfs_sha is None else SimpleNamespace(size=3, sha256=lfs_sha)
        hostile_sibling = SimpleNamespace(rfilename="model.bin", size=3, blob_id=blob_id, lfs=lfs_info)
        with pytest.raises(ModelError, match="no digest"):
            download.listing_of(
                SimpleNamespace(repo=REPO_ID, files=(), name=NAME), [hostile_sibling], "c" * 40
            )
    for size in (-1, "3", None, 2.5, True):
        odd = SimpleNamespace(rfilename="model.bin", size=size, blob_id="b" * 40, lfs=None)
        with pytest.raises(ModelError, match="size"):
            download.listing_of(SimpleNamespace(repo=REPO_ID, files=(), name=NAME), [odd], "c" * 40)
    with pytest.raises(ModelError, match=r"no file 'model\.bin'"):
        download.listing_of(SimpleNamespace(repo=REPO_ID, files=("model.bin",), name=NAME), [], "c" * 40)


def test_a_folder_without_its_manifest_is_not_installed(tmp_path: Path) -> None:
    from pipeline.engines import download

    store = tmp_path / "models"
    (store / NAME).mkdir(parents=True)
    (store / NAME / "model.bin").write_bytes(b"x")
    assert download.installed(store) == [] and download.find_installed(NAME, store) is None
    (store / NAME / download.MANIFEST).write_text("{not json", encoding="utf-8")
    assert download.installed(store) == []
    for hostile in ("../models", "/etc", "Name With Space", ""):
        assert download.find_installed(hostile, store) is None


# ------------------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def got_by_cli(
    hub: Hub, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`hearing models get NAME` once for the module, in a process of its own, into a cache of its own."""
    hub.reset()
    cache = tmp_path_factory.mktemp("got") / "cache"
    return cache, get_cli(NAME, env=cli_env(cache, hub.endpoint))


def test_the_command_gets_the_model(got_by_cli: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    cache, result = got_by_cli
    assert result.returncode == 0, result.stderr
    assert f"installed {NAME}" in result.stdout and f"--model {NAME}" in result.stdout
    from pipeline.engines import catalogue
    from pipeline.errors import human_bytes

    size = human_bytes(catalogue.entry("base").size_bytes)
    assert "getting" in result.stderr and f"about {size}" in result.stderr
    assert (cache / "models" / NAME / "hearing-model.json").is_file()


def test_no_network_is_one_line_naming_the_endpoint_setting(tmp_path: Path) -> None:
    result = get_cli(NAME, env=cli_env(tmp_path / "cache", closed_port()))
    assert result.returncode == 4, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HF_ENDPOINT" in errors[0] and "Traceback" not in result.stderr
    assert_nothing_installed(tmp_path / "cache" / "models")

    offline = get_cli(NAME, env=cli_env(tmp_path / "cache", closed_port(), HF_HUB_OFFLINE="1"))
    assert offline.returncode == 4 and "HF_HUB_OFFLINE" in offline.stderr


def test_a_changed_file_through_the_command(fresh_hub: Hub, tmp_path: Path) -> None:
    fresh_hub.faults.tamper.add("config.json")
    result = get_cli(NAME, env=cli_env(tmp_path / "cache", fresh_hub.endpoint))
    assert result.returncode == 4, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    served = fresh_hub.repos[REPO_ID]["config.json"]
    assert "config.json" in line and served.git_sha1 in line
    assert_nothing_installed(tmp_path / "cache" / "models")


def test_licence_conditions_are_shown_and_must_be_accepted(fresh_hub: Hub, tmp_path: Path) -> None:
    conditions = "Only for research; name the authors when you publish."
    env = cli_env(tmp_path / "cache", fresh_hub.endpoint, TEST_ENTRY_CONDITIONS=conditions)
    refused = get_cli(NAME, env=env)
    assert refused.returncode == 2, refused.stderr
    assert conditions in refused.stderr and "--yes" in refused.stderr
    assert fresh_hub.requests == [], "something was fetched before the conditions were accepted"
    accepted = get_cli(NAME, "--accept-licence", "--quiet", env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stderr == ""


def test_an_unknown_name_exits_2_naming_the_known_ones(tmp_path: Path) -> None:
    result = get_cli("no-such-model", env=cli_env(tmp_path / "cache", closed_port()))
    assert result.returncode == 2, result.stderr
    assert "no-such-model" in result.stderr and "base" in result.stderr


def test_plain_models_still_lists() -> None:
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    assert any(row["kind"] == "engine" for row in json.loads(result.stdout))


# ------------------------------------------------------------------------------------- offline use


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
def test_a_got_model_runs_with_the_network_gone(
    engine: str,
    got_by_cli: tuple[Path, subprocess.CompletedProcess[str]],
    real_media: Path,
    make_meeting,  # type: ignore[no-untyped-def]
    out_dir: Path,
    small_form: Path,
) -> None:
    cache, got = got_by_cli
    assert got.returncode == 0, got.stderr
    manifest = json.loads((cache / "models" / NAME / "hearing-model.json").read_text(encoding="utf-8"))
    meeting = make_meeting({"a.wav": real_media / "da-nst-u0042008.wav"})
    out = out_dir
    gone = {
        "HEARING_PIPELINE_CACHE": str(cache),
        "HF_ENDPOINT": closed_port(),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(cache / "hf"),
    }
    result = run_cli(
        "run",
        meeting,
        "--out",
        out,
        "--model",
        NAME,
        "--engine",
        engine,
        "--form",
        small_form,
        "--quiet",
        env=gone,
    )
    assert result.returncode == 0, result.stderr
    (transcript,) = (out / "delivery").glob("*-transkription.json")
    said = " ".join(s["text"] for s in json.loads(transcript.read_text(encoding="utf-8"))["statements"])
    assert any(ch in said.lower() for ch in "æøå") or len(said.split()) >= 3, said
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))["engine"]
    assert record["model"] == NAME and record["model_source"] == "catalogue"
    # Where it came from, as its manifest says: CTranslate2 files as published, nothing converted.
    origin = record["model_origin"]
    assert (origin["repo"], origin["revision"], origin["format"]) == (REPO_ID, manifest["revision"], "ct2")
    assert origin["conversion"] is None and origin["licence"] == manifest["licence"]
    assert (record["device"], record["compute_type"]) == (
        ("cpu", "int8") if engine == "faster-whisper" else ("cpu", "float32")
    )
    model_sha = next(f["sha256"] for f in manifest["installed_files"] if f["name"] == "model.bin")
    if engine == "faster-whisper":
        assert record["model_sha256"] == model_sha
        assert record["model_path"] == str(cache / "models" / NAME)
    else:  # the checkpoint converted once from the stored model, kept beside it
        assert Path(record["model_path"]).parent == cache / "models"
        assert record["model_sha256"] and record["model_sha256"] != model_sha


def test_a_got_model_is_known_by_its_name_and_its_manifest(
    online: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks before a run accept the name, and every cache key and provenance names the model by
    the repository, the revision and the digest its manifest records."""
    from pipeline import engines
    from pipeline.engines import download
    from pipeline.errors import ModelError

    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelError):
        engines.check_usable("faster-whisper", NAME)
    entry = hub_entry()
    path = download.get(entry)
    assert path == tmp_path / "cache" / "models" / NAME
    model_sha = served_digests(online)["model.bin"]
    for engine in engines.ENGINES:
        engines.check_usable(engine, NAME)
        key = engines.model_key(engine, NAME)
        assert key.id == f"catalogue:{NAME}:{REPO_ID}@{entry.revision}:sha256:{model_sha}"  # type: ignore[attr-defined]
        assert key.sha256 == model_sha and key.path == str(path)
        _, info = engines.identity(engine, NAME, key=key)
        assert (info.name, info.source, info.path, info.sha256) == (NAME, "catalogue", str(path), model_sha)


def test_transformers_weights_go_through_the_conversion_into_the_manifest(
    online: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download's side of the conversion (the conversion itself: its own tests): a failing one
    installs nothing and keeps the verified files, so the next run does not fetch them again; a
    successful one is recorded in the manifest, and the folder holds what it made."""
    import shutil

    from pipeline.engines import convert, download
    from pipeline.errors import ModelError

    store = tmp_path / "models"
    entry = hub_entry(format="transformers")
    calls: list[tuple[Path, Path, set[str]]] = []

    def broken(source: Path, target: Path, *, quantization: str = "int8") -> object:
        calls.append((source, target, {p.name for p in source.iterdir()}))
        raise ModelError("the converter failed", "see its log")

    monkeypatch.setattr(convert, "to_ctranslate2", broken)
    with pytest.raises(ModelError, match="converter failed"):
        download.get(entry, store=store)
    assert calls[0][2] == set(FILES), "the converter did not get the verified files under their names"
    assert calls[0][1].parent == store  # built beside the store, renamed into place when finished
    assert_nothing_installed(store)
    assert not calls[0][0].exists(), "the converter's input was left behind"

    @dataclasses.dataclass(frozen=True)
    class Made:
        converter: str = "test converter 1.0"
        quantization: str = "int8"
        command: str = "copied the files"

    def working(source: Path, target: Path, *, quantization: str = "int8") -> Made:
        shutil.copytree(source, target)
        return Made(quantization=quantization)

    monkeypatch.setattr(convert, "to_ctranslate2", working)
    online.requests.clear()
    path = download.get(entry, store=store)
    assert [p for m, p, _ in online.requests if "/resolve/" in p] == [], "verified files were fetched again"
    manifest = json.loads((path / download.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == "transformers"
    assert manifest["conversion"] == {
        "converter": "test converter 1.0",
        "quantization": "int8",
        "command": "copied the files",
    }
    assert {f["name"] for f in manifest["installed_files"]} == set(FILES)
