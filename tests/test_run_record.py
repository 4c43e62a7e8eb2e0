"""run.json is read back by one loader that knows its kind and versions (pipeline.run_record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import hearing

from pipeline import run_record


def write(folder: Path, data: object) -> Path:
    path = run_record.path_of(folder)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_record_of_this_version_is_read(tmp_path: Path) -> None:
    write(tmp_path, {"kind": run_record.KIND, "version": run_record.VERSION, "options": {"form": "demo"}})
    assert run_record.read_in(tmp_path) == {
        "kind": run_record.KIND,
        "version": run_record.VERSION,
        "options": {"form": "demo"},
    }
    assert run_record.read_in(tmp_path / "none") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"kind": run_record.KIND, "version": run_record.VERSION + 1}, "newer hearing-pipeline"),
        ({"kind": run_record.KIND, "version": "1"}, "not a record version"),
        ({"kind": run_record.KIND, "version": True}, "not a record version"),
        ({"kind": run_record.KIND}, "not a record version"),
        ({"version": 1, "options": {}}, "not a run record of hearing-pipeline"),
        ([1, 2], "no JSON object"),
    ],
)
def test_a_record_this_version_cannot_read_is_refused_with_its_reason(
    tmp_path: Path, data: object, reason: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(run_record.UnreadableRecord) as caught:
        run_record.read_in(tmp_path)
    assert caught.value.path == path and reason in str(caught.value)


def test_a_damaged_record_is_refused_and_render_says_why(tmp_path: Path) -> None:
    run_record.path_of(tmp_path).write_bytes(b'{"kind": "hearing-pipeline run rep')
    with pytest.raises(run_record.UnreadableRecord, match="cannot be read"):
        run_record.read_in(tmp_path)
    write(tmp_path, {"kind": run_record.KIND, "version": run_record.VERSION + 1, "options": {}})
    result = hearing("render", tmp_path)
    assert result.exit_code == 2 and "newer hearing-pipeline" in result.stderr, result.stderr
