"""Retention: how long the recordings and the work cache are kept (meeting.yaml's or the form's
``retention:``), the dates the archive records, `hearing run` and `hearing verify` saying when one has
passed, and `hearing purge` removing exactly what is due and recording it in the provenance."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO, TEST_OUTPUT, DemoRun, run_cli, run_here
from test_corrections import demo_copy

from pipeline import purge, retention
from pipeline.config import load_form, load_meeting
from pipeline.errors import ConfigError
from pipeline.retention import Kept, Retention, add_period, check_period, resolve

DEMO_MEETING = REPO / "samples" / "borgermoede-nordby"
DEMO_FORM = REPO / "configs" / "forms" / "demo.yaml"

# ------------------------------------------------------------------------------------------ periods


@pytest.mark.parametrize("period", ["1d", "90d", "2w", "6m", "5y", "100y", "1200m", "5218w", "36525d"])
def test_a_period_of_a_number_and_a_unit_is_taken(period: str) -> None:
    assert check_period(period) == period


@pytest.mark.parametrize(
    "period",
    [
        "0d", "00y", "-5y", "+5y", "101y", "1201m", "5219w", "36526d", "99999999999999999999d",  # range
        "5", "y", "5x", "5Y", "5 y", " 5y", "5y ", "5y\n", "5yy", "5d3", "1.5y", "1e3d", "0x10d",  # form
        "５y", "5\u200by", "5у", "٥y", "5y\u202e", "",  # other scripts' digits and letters, hidden marks
    ],
)  # fmt: skip
def test_a_period_of_any_other_shape_is_refused(period: str) -> None:
    with pytest.raises(ValueError, match=r"d \(days\), w \(weeks\), m \(months\) or y \(years\)"):
        check_period(period)


def test_months_and_years_end_on_the_last_day_of_a_shorter_month() -> None:
    assert add_period(dt.date(2027, 1, 31), "1m") == dt.date(2027, 2, 28)
    assert add_period(dt.date(2028, 2, 29), "1y") == dt.date(2029, 2, 28)
    assert add_period(dt.date(2026, 11, 20), "5y") == dt.date(2031, 11, 20)
    assert add_period(dt.date(2026, 11, 20), "90d") == dt.date(2027, 2, 18)
    assert add_period(dt.date(2026, 11, 20), "2w") == dt.date(2026, 12, 4)
    assert add_period(dt.date(2026, 11, 20), "14m") == dt.date(2028, 1, 20)


def test_a_date_is_kept_through_its_last_day_and_due_the_day_after() -> None:
    kept = Kept("90d", dt.date(2027, 2, 18), "form")
    assert not kept.passed(dt.date(2027, 2, 18))
    assert kept.passed(dt.date(2027, 2, 19))


# ------------------------------------------------------------------------------- form and meeting.yaml


def _resolve(form: dict, meeting: dict, date: dt.date | None = dt.date(2026, 11, 20), first=None):  # type: ignore[no-untyped-def]
    return resolve(
        form,
        meeting,
        form_where="forms/agreed.yaml",
        meeting_file="m/meeting.yaml",
        meeting_date=date,
        first_archived=first,
        today=dt.date(2026, 12, 5),
    )


def test_the_form_wins_meeting_yaml_fills_what_it_leaves_and_may_not_differ() -> None:
    dates = _resolve({"recordings": "5y", "work": None}, {"recordings": "5y", "work": "90d"})
    assert dates == Retention(
        dt.date(2026, 11, 20),
        retention.MEETING_DATE,
        Kept("5y", dt.date(2031, 11, 20), "form"),
        Kept("90d", dt.date(2027, 2, 18), "meeting.yaml"),
    )
    with pytest.raises(ConfigError) as refused:
        _resolve({"recordings": "5y"}, {"recordings": "1y"})
    assert refused.value.exit_code == 3
    assert str(refused.value).startswith("m/meeting.yaml: retention.recordings: 1y differs from")
    assert "forms/agreed.yaml: retention.recordings: 5y" in str(refused.value)
    assert _resolve({}, {}) is None
    assert _resolve({"recordings": None}, {"work": None}) is None


def test_without_a_meeting_date_the_first_archiving_then_the_run_date_is_the_basis() -> None:
    first = _resolve({"work": "1w"}, {}, date=None, first=dt.date(2026, 1, 1))
    assert first is not None and (first.basis, first.basis_kind) == (dt.date(2026, 1, 1), "first archived")
    assert first.work == Kept("1w", dt.date(2026, 1, 8), "form")
    today = _resolve({"work": "1w"}, {}, date=None)
    assert today is not None and (today.basis, today.basis_kind) == (dt.date(2026, 12, 5), "run date")


def test_a_date_past_the_calendar_is_refused_with_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^m/meeting.yaml: retention.work: 100y from the meeting date"):
        _resolve({}, {"work": "100y"}, date=dt.date(9950, 1, 1))
    with pytest.raises(ConfigError, match=r"^forms/agreed.yaml: retention.recordings: 36525d from"):
        _resolve({"recordings": "36525d"}, {}, date=dt.date(9950, 1, 1))


def test_the_recorded_dates_read_back_as_written() -> None:
    dates = _resolve({"recordings": "5y"}, {"work": "90d"})
    assert dates is not None
    assert retention.recorded(dates.bag_info()) == dates
    assert retention.recorded({}) is None
    assert retention.recorded({"Retention-Basis": "not a date"}) is None
    assert retention.recorded({"Retention-Basis": ["2026-01-01", "2026-01-02"]}) is None


HOSTILE_VALUES = [
    "-5y", "0d", "0", "101y", "99999999999999999999999d", "5x", "5Y", "'5 y'", "' 5y'", '"5y\\n"',
    "1.5y", "90", "-90", "1.5", "0x10", ".inf", ".nan", "true", "no", "2027-01-01", "[5y]", "{y: 5}",
    "''", '"５y"', '"5\\u200by"', "!!binary NXk=", "!!str 5 y", "!!int 5",
]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("kind", ["recordings", "work"])
def test_a_hostile_retention_value_is_refused_naming_the_file_and_field(
    tmp_path: Path, kind: str, value: str
) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    (meeting / "meeting.yaml").write_text(f"retention:\n  {kind}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_meeting(meeting)
    assert refused.value.exit_code == 3
    # A tag that is not a plain one is refused where it stands, before any field is read.
    where = "not valid YAML at line 2" if value.startswith("!!binary") else f"retention.{kind}: "
    assert str(refused.value).startswith(f"{meeting / 'meeting.yaml'}: {where}")
    form = tmp_path / "form.yaml"
    form.write_text(f"retention:\n  {kind}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_form(form)
    assert str(refused.value).startswith(f"{form}: {where}")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("retention: 5y\n", "retention"),
        ("retention: [5y]\n", "retention"),
        ("retention:\n  photos: 1y\n", "retention.photos"),
        ("retention:\n  work: 1y\n  work: 2y\n", "retention.work"),
        ("retention: {recordings: 5y, Recordings: 1y}\n", "retention.Recordings"),
        ("retention: {recordings: &p 5y, work: *p}\n", "line 1: an alias"),
        ("retention:\n  <<: {work: 5y}\n", "retention: line 2: a merge key"),
    ],
)
def test_a_retention_that_is_not_a_mapping_of_the_two_periods_is_refused(
    tmp_path: Path, text: str, field: str
) -> None:
    (tmp_path / "meeting.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_meeting(tmp_path)
    assert f"meeting.yaml: {field}" in str(refused.value)


def test_null_periods_and_an_empty_retention_mean_kept_until_removed(tmp_path: Path) -> None:
    (tmp_path / "meeting.yaml").write_text("retention: {recordings: null, work: ~}\n", encoding="utf-8")
    meeting, _ = load_meeting(tmp_path)
    assert meeting.retention is not None and meeting.retention.periods() == {"recordings": None, "work": None}


def _meeting_copy(name: str, extra: str, date: str | None = None) -> Path:
    folder = TEST_OUTPUT / "meetings" / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(DEMO_MEETING, folder)
    text = (folder / "meeting.yaml").read_text(encoding="utf-8")
    if date:
        text = text.replace("date: 2026-11-20", f"date: {date}").replace(
            "committee_meeting: 2026-12-03", f"committee_meeting: {date}"
        )
    (folder / "meeting.yaml").write_text(text + extra, encoding="utf-8")
    return folder


def test_a_dry_run_refuses_what_the_run_refuses_and_warns_as_it_does(tmp_path: Path) -> None:
    for extra, field in (
        ("retention: {work: 0d}\n", "retention.work"),
        ("retention: {recordings: 5 years}\n", "retention.recordings"),
    ):
        meeting = _meeting_copy("retention-bad", extra)
        result = run_here("run", meeting, "--form", DEMO_FORM, "--out", tmp_path / "out", "--dry-run")
        assert result.returncode == 3, result.stderr
        assert f"meeting.yaml: {field}: must be a whole number and a unit" in result.stderr
    form = tmp_path / "agreed.yaml"
    form.write_text(DEMO_FORM.read_text(encoding="utf-8") + "\nretention: {recordings: 5y}\n", "utf-8")
    meeting = _meeting_copy("retention-differs", "retention: {recordings: 1y}\n")
    result = run_here("run", meeting, "--form", form, "--out", tmp_path / "out", "--dry-run")
    assert result.returncode == 3, result.stderr
    assert "meeting.yaml: retention.recordings: 1y differs from the period agreed" in result.stderr
    meeting = _meeting_copy("retention-past", "retention: {work: 1d}\n", date="2020-01-15")
    result = run_here("run", meeting, "--form", form, "--out", tmp_path / "out", "--dry-run")
    assert result.returncode == 0, result.stderr
    recordings, work = warnings(result.stderr)
    assert "until 2025-01-15 (5y from the meeting date 2020-01-15, set by form)" in recordings
    assert "until 2020-01-16 (1d from the meeting date 2020-01-15, set by meeting.yaml)" in work
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- purge, end to end


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its SHA-256, and every link with its target (never followed)."""
    found: dict[str, str] = {}
    for folder, dirs, names in os.walk(root):
        for name in [*names, *(d for d in dirs if Path(folder, d).is_symlink())]:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            found[rel] = (
                f"-> {os.readlink(path)}"
                if path.is_symlink()
                else hashlib.sha256(path.read_bytes()).hexdigest()
            )
    return found


def provenance(out: Path) -> dict:
    return json.loads((out / "archive/data/metadata/provenance.json").read_text(encoding="utf-8"))


def note_of(event: dict) -> str:
    return str(event["eventOutcomeInformation"]["eventOutcomeDetail"]["eventOutcomeDetailNote"])


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: retention:")]


@pytest.mark.slow
def test_a_past_retention_date_is_told_and_purge_removes_exactly_what_is_due(demo_run: DemoRun) -> None:
    run = demo_copy(demo_run, "demo-retention")
    out = run.out
    meeting = _meeting_copy("demo-retention", "retention: {recordings: 1y, work: 30d}\n", date="2020-01-15")
    made = run_cli("run", meeting, "--form", DEMO_FORM, "--out", out)
    assert made.returncode == 0, made.stderr
    told = warnings(made.stderr)
    assert len(told) == 2, made.stderr
    assert "recordings" in told[0] and "until 2021-01-15" in told[0] and "--recordings" in told[0]
    assert "work cache" in told[1] and "until 2020-02-14" in told[1]
    bag_info = (out / "archive/bag-info.txt").read_text(encoding="utf-8")
    for line in (
        "Retention-Basis: 2020-01-15 (meeting date)",
        "Retention-Recordings-Until: 2021-01-15",
        "Retention-Work-Until: 2020-02-14",
    ):
        assert line + "\n" in bag_info
    assert provenance(out)["retention"]["recordings"] == {
        "period": "1y", "until": "2021-01-15", "source": "meeting.yaml",
    }  # fmt: skip

    verified = run_here("verify", out / "archive")
    assert verified.returncode == 0 and verified.stdout.startswith("valid:"), verified.stderr
    assert len(warnings(verified.stderr)) == 2, verified.stderr
    as_json = json.loads(run_here("verify", out, "--json").stdout)
    assert as_json["valid"] and len(as_json["retention_passed"]) == 2

    # Drafts nobody received are due with the work cache; a link is removed, never what it points to.
    (out / "failed-delivery").mkdir()
    (out / "failed-delivery/clip.mp4").write_bytes(b"not delivered")
    elsewhere = TEST_OUTPUT / "runs" / "demo-retention-elsewhere"
    shutil.rmtree(elsewhere, ignore_errors=True)
    elsewhere.mkdir(parents=True)
    (elsewhere / "keep.txt").write_text("not OUT's", encoding="utf-8")
    (out / "draft").symlink_to(elsewhere, target_is_directory=True)
    before, events_before = tree(out), provenance(out)["events"]
    recordings = {p: d for p, d in before.items() if p.startswith("archive/data/recordings/")}
    assert len(recordings) == 4

    listed = run_here("purge", out, "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert [line.split(" (")[0] for line in listed.stdout.splitlines()] == [
        "would remove: work", "would remove: draft", "would remove: failed-delivery",
    ]  # fmt: skip
    assert "add --recordings" in listed.stderr
    assert tree(out) == before

    purged = run_here("purge", out)
    assert purged.returncode == 0, purged.stderr
    after = tree(out)
    gone = {p for p in before if p.split("/")[0] in ("work", "draft", "failed-delivery")}
    changed_tags = {"archive/bag-info.txt", "archive/data/metadata/provenance.json"}
    changed_tags |= {p for p in before if p.startswith(("archive/manifest-", "archive/tagmanifest-"))}
    assert set(after) == set(before) - gone
    assert {p for p in after if after[p] != before[p]} <= changed_tags
    assert tree(elsewhere) == {"keep.txt": hashlib.sha256(b"not OUT's").hexdigest()}
    events = provenance(out)["events"]
    assert events[: len(events_before)] == events_before
    [event] = events[len(events_before) :]
    assert event["eventType"] == "deletion"
    assert [o["linkingObjectIdentifierValue"] for o in event["linkingObjectIdentifier"]] == [
        "work", "draft", "failed-delivery",
    ]  # fmt: skip
    assert "until 2020-02-14" in note_of(event)
    verified = run_here("verify", out)
    assert verified.returncode == 0, verified.stderr
    [left] = warnings(verified.stderr)
    assert "recordings" in left

    manifest = (out / "archive/manifest-sha512.txt").read_text(encoding="utf-8")
    purged = run_here("purge", out, "--recordings")
    assert purged.returncode == 0, purged.stderr
    final = tree(out)
    assert set(final) == set(after) - set(recordings)
    assert {p for p in final if final[p] != after[p]} <= changed_tags
    assert not list((out / "archive/data").glob("recordings/**/*.mp4"))
    events = provenance(out)["events"]
    [event] = events[len(events_before) + 1 :]
    note = note_of(event)
    linked = [o["linkingObjectIdentifierValue"] for o in event["linkingObjectIdentifier"]]
    assert sorted(linked) == sorted(p.removeprefix("archive/") for p in recordings)
    for path, sha256 in recordings.items():
        sha512 = next(line.split()[0] for line in manifest.splitlines() if line.endswith(path[8:]))
        assert f"sha256={sha256}" in note and f"sha512={sha512}" in note
    verified = run_here("verify", out, "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["retention_passed"] == []
    assert "removed on" in (out / "archive/bag-info.txt").read_text(encoding="utf-8")

    again = run_here("purge", out, "--recordings")
    assert again.returncode == 0 and again.stdout == "" and "nothing is due" in again.stderr
    assert tree(out) == final


def test_purge_refuses_a_folder_that_is_not_a_runs_output(tmp_path: Path) -> None:
    for folder, reason in (
        (DEMO_MEETING, "is not the output folder of a hearing run (no run.json)"),
        (tmp_path / "missing", "not a folder"),
    ):
        before = tree(folder) if folder.exists() else {}
        result = run_here("purge", folder)
        assert result.returncode == 2 and reason in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert (tree(folder) if folder.exists() else {}) == before
    (tmp_path / "run.json").write_text('{"kind": "something else", "version": 1}', encoding="utf-8")
    result = run_here("purge", tmp_path)
    assert result.returncode == 2 and "not a run record of hearing-pipeline" in result.stderr
    (tmp_path / "run.json").write_text('{"kind": "hearing-pipeline run report", "version": 1}', "utf-8")
    (tmp_path / "work").mkdir()
    result = run_here("purge", tmp_path)
    assert result.returncode == 2 and "has no archive" in result.stderr
    assert (tmp_path / "work").is_dir()


def test_the_plan_keeps_what_is_not_due_and_recordings_unless_asked() -> None:
    dates = Retention(
        dt.date(2020, 1, 1),
        retention.MEETING_DATE,
        Kept("1y", dt.date(2021, 1, 1), "form"),
        Kept("30d", dt.date(2020, 1, 31), "form"),
    )
    work = [purge.Item("work", "work", 3, 10)]
    recordings = [purge.Item("recordings", "data/recordings/a.mp4", 1, 5, {"sha256": "0" * 64})]
    on_the_day = purge.plan(dates, dt.date(2020, 1, 31), work, recordings, with_recordings=True)
    assert on_the_day.remove == ()
    day_after = purge.plan(dates, dt.date(2020, 2, 1), work, recordings, with_recordings=True)
    assert day_after.remove == tuple(work)
    late = purge.plan(dates, dt.date(2021, 1, 2), work, recordings, with_recordings=False)
    assert late.remove == tuple(work) and any("add --recordings" in n for n in late.notes)
    asked = purge.plan(dates, dt.date(2021, 1, 2), work, recordings, with_recordings=True)
    assert asked.remove == (*work, *recordings)
    assert purge.plan(None, dt.date(2099, 1, 1), work, recordings, with_recordings=True).remove == ()
