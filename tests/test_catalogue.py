"""The catalogue of speech models fit for Danish: every entry well-formed, the lookups, and the choice of
the recommended and the best installed model."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from pipeline.engines import ENGINES, catalogue
from pipeline.errors import UsageError

HEX40 = re.compile(r"[0-9a-f]{40}")
CORE = {
    catalogue.CORAL_CONVERSATION,
    catalogue.CORAL_READ,
    catalogue.COMMON_VOICE,
    catalogue.FLEURS,
    catalogue.FTSPEECH,
}


@pytest.mark.parametrize("e", catalogue.ENTRIES, ids=lambda e: e.name)
def test_every_entry_is_well_formed(e: catalogue.CatalogueEntry) -> None:
    assert e.name and e.name == e.name.strip().lower() and " " not in e.name
    assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", e.repo), e.repo
    assert e.revision is None or HEX40.fullmatch(e.revision), e.revision
    assert e.format in ("ct2", "transformers")
    # A CTranslate2 model is loaded from its files: the ones faster-whisper reads must be fetched.
    if e.format == "ct2":
        assert {"model.bin", "config.json", "tokenizer.json"} <= set(e.files)
    assert len(set(e.files)) == len(e.files) and all(f and "/" not in f for f in e.files)
    assert 10_000_000 < e.size_bytes < 20_000_000_000
    assert e.size_source.startswith(("exact:", "estimate:"))
    assert e.licence.strip() and e.licence_source.strip()
    assert e.licence_conditions is None or len(e.licence_conditions) > 40
    assert e.speed in ("fast", "medium", "slow")
    assert e.engines and set(e.engines) <= set(ENGINES)


@pytest.mark.parametrize("e", catalogue.ENTRIES, ids=lambda e: e.name)
def test_every_published_figure_has_a_source_and_a_plausible_value(e: catalogue.CatalogueEntry) -> None:
    assert e.published, f"{e.name}: no published Danish WER"
    datasets = [p.dataset for p in e.published]
    assert len(set(datasets)) == len(datasets)
    for p in e.published:
        # WER counts insertions too, so above 100 % is possible (base on conversation), but not wild.
        assert 0 < p.wer_percent < 400, p
        assert p.source.strip() and "/" in p.source, p
        # A source names a page or a repository, never a file on some machine.
        assert not p.source.startswith(("/", "~", ".")) and "\\" not in p.source, p
    # The mean the catalogue ranks by is the mean of the five test sets it is published with.
    assert e.mean_wer is not None and set(datasets) >= CORE
    core = [p.wer_percent for p in e.published if p.dataset in CORE]
    assert e.mean_wer == pytest.approx(sum(core) / len(core), abs=0.01)


def test_names_are_unique_and_entry_finds_each() -> None:
    names = [e.name for e in catalogue.ENTRIES]
    assert len(set(names)) == len(names)
    assert {"roest-v3-1.5b", "large-v3", "large-v3-turbo", "base"} <= set(names)
    for e in catalogue.ENTRIES:
        assert catalogue.entry(e.name) is e


@pytest.mark.parametrize("bad", ["", "Large-V3", "large-v3 ", "../base", "roest", "large-v3\n", "ø"])
def test_an_unknown_name_is_a_usage_error_naming_the_known_ones(bad: str) -> None:
    with pytest.raises(UsageError) as raised:
        catalogue.entry(bad)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert all(e.name in message for e in catalogue.ENTRIES)


def test_entries_are_frozen() -> None:
    e = catalogue.ENTRIES[0]
    with pytest.raises(FrozenInstanceError):
        e.name = "other"  # type: ignore[misc]


def test_the_recommended_model_is_fit_for_danish_and_has_the_lowest_published_mean() -> None:
    best = catalogue.recommended()
    assert best.fit_for_danish and best.name != "base"
    fit = [e for e in catalogue.ENTRIES if e.fit_for_danish]
    assert best.mean_wer == min(e.mean_wer for e in fit if e.mean_wer is not None)
    # Base is in the catalogue for the demo, and says it is not for a real meeting.
    assert not catalogue.entry("base").fit_for_danish


def test_best_installed_ranks_by_published_mean_and_passes_over_base_and_strangers() -> None:
    assert catalogue.best_installed([]) is None
    assert catalogue.best_installed(["base"]) is None
    assert catalogue.best_installed(["base", "small", "/models/x", ""]) is None
    assert catalogue.best_installed(["large-v3-turbo", "base"]) == catalogue.entry("large-v3-turbo")
    assert catalogue.best_installed(iter(["large-v3-turbo", "large-v3"])) == catalogue.entry("large-v3")
    everything = [e.name for e in catalogue.ENTRIES]
    assert catalogue.best_installed(everything) == catalogue.recommended()


def test_an_entry_without_a_published_mean_ranks_last() -> None:
    e = catalogue.entry("large-v3")
    bare = replace(e, published=())
    assert bare.mean_wer is None
    assert catalogue._rank(bare) > max(catalogue._rank(x) for x in catalogue.ENTRIES)


def test_a_model_whose_licence_restricts_use_says_so_before_download() -> None:
    roest = catalogue.entry("roest-v3-1.5b")
    assert roest.licence_conditions is not None
    assert "speech synthesis" in roest.licence_conditions
    assert "biometric" in roest.licence_conditions
    assert roest.format == "transformers"  # converted here: no CTranslate2 build from its publisher


def test_the_embedded_base_is_the_catalogue_s_base() -> None:
    """The model the package embeds is the catalogue's base, file for file."""
    from pipeline.engines import embedded

    base = catalogue.entry("base")
    assert set(base.files) == {"model.bin", *embedded.SMALL_FILES}
    model = embedded.ensure_embedded_model()
    assert sum((model.path / f).stat().st_size for f in base.files) == base.size_bytes
    assert (model.path / "model.bin").stat().st_size == embedded.MODEL_SIZE


def test_the_model_table_in_docs_speech_says_what_the_catalogue_says() -> None:
    """The model table in docs/speech.md (the README links to it) is written by hand: it must not drift
    from the catalogue."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "speech.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| `")}
    for e in catalogue.ENTRIES:
        row = next(line for first, line in rows.items() if first.startswith(f"`{e.name}`"))
        assert f"`{e.repo}`" in row
        assert e.revision is None or f"`{e.revision[:7]}`" in row
        figures = {p.dataset: p.wer_percent for p in e.published}
        wer = [figures[catalogue.MEAN], figures[catalogue.CORAL_READ], figures[catalogue.CORAL_CONVERSATION]]
        assert " / ".join(f"{w:g} %" for w in wer) in row
        assert f"| {e.speed} |" in row
        assert ("(recommended)" in row) == (e == catalogue.recommended())
    assert catalogue.LEADERBOARD in page and catalogue._LEADERBOARD_COMMIT[:8] in page


def test_the_model_table_measured_here_is_the_latest_accuracy_benchmark() -> None:
    """Each model's "Measured here" cell is what the latest committed accuracy benchmark measured for it
    (the pipeline, and the bare engine beside it), and a model it did not measure says so."""
    import json
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    page = (repo / "docs" / "speech.md").read_text(encoding="utf-8")
    latest = sorted((repo / "bench" / "results").glob("accuracy-????-??-??.json"))[-1]
    result = json.loads(latest.read_text(encoding="utf-8"))
    measured = result["models"]
    assert "base" in measured
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| `")}
    for e in catalogue.ENTRIES:
        row = next(line for first, line in rows.items() if first.startswith(f"`{e.name}`"))
        cell = row.rstrip().rstrip("|").rsplit("|", 1)[-1].strip()
        if e.name not in measured:
            assert cell == "not installed here", cell
            continue
        wer = measured[e.name]["wer"]
        pipeline, bare = wer[result["in_use"]]["all"], wer["bare engine"]["all"]
        found = re.fullmatch(r"([\d.]+) % \(bare engine ([\d.]+) %\) on (\d+) real recordings, (\S+)", cell)
        assert found, cell
        assert float(found[1]) == round(pipeline * 100, 1) and float(found[2]) == round(bare * 100, 1)
        assert int(found[3]) == len(result["recordings"]) and found[4] == latest.stem.removeprefix(
            "accuracy-"
        )


def test_a_catalogue_model_not_stored_here_is_refused_before_any_work_with_the_command_that_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import REPO, hearing

    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "cache"))  # no model stored here
    meeting = REPO / "samples" / "borgermoede-nordby"
    checked = []
    for entry in catalogue.ENTRIES:
        if entry.name == "base" or entry.name in _faster_whisper_names():
            continue  # the embedded model, or a name faster-whisper fetches itself when asked
        out = tmp_path / entry.name
        result = hearing("run", meeting, "--model", entry.name, "--dry-run", "--out", out)
        assert result.exit_code == 4, result.stderr
        assert f"`hearing models get {entry.name}`" in result.stderr and not out.exists()
        checked.append(entry.name)
        for engine in ENGINES:
            if engine not in entry.engines:
                refused = hearing("run", meeting, "--engine", engine, "--model", entry.name, "--dry-run")
                assert refused.exit_code == 4 and f"not made for {engine}" in refused.stderr
    assert checked, "the catalogue names a model only it can get"


def _faster_whisper_names() -> set[str]:
    from faster_whisper.utils import available_models

    return set(available_models())
