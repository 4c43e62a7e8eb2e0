"""The documents and the delivery as the official and the participants receive them (issue 26): the
committee meeting's date, statements counted by kind, the delivery's names, name captions for sound
recordings, the clip's times in the transcript, the facts an official's `hearing check` needs in the
delivery, no lock files left behind, and where a dry run says the result would go."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, DemoRun, hearing

from pipeline.config import Form, Meeting
from pipeline.errors import Busy, ConfigError
from pipeline.meeting_facts import MeetingFacts, committee_meeting
from pipeline.out_folder import LOCK, hold_lock
from pipeline.preflight import check_committee_meeting
from pipeline.review.session import LOCK_FILE, review_lock
from pipeline.stages import letters
from pipeline.texts.documents import statements_by_kind

DEMO_NAME = "2026-11-20_Teknik-og-Miljoeudvalget_hoeringssvar"
DEC_3 = dt.date(2026, 12, 3)


def flat(text: str) -> str:
    return " ".join(text.split())


def pdf_text(path: Path) -> str:
    result = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return flat(result.stdout.decode("utf-8"))


# ------------------------------------------------------------------------------- the letters


def letter_facts(*, agreed_with: str | None, on: dt.date | None, statements: int = 4, sound_only: int = 1):  # type: ignore[no-untyped-def]
    meeting = MeetingFacts.named(
        Meeting(committee="Plan-, Teknik- og Miljøudvalget", committee_meeting=on, organiser="Lokalrådet"),
        "moede",
    )
    return letters.facts(
        meeting,
        None,
        Form(agreed_with=agreed_with),
        model="base",
        statements=statements,
        sound_only=sound_only,
        approved=statements,
        clip_ms=95_000,
        check_passed=True,
        check_verdict="ok",
        files={"a.mp4": "0" * 64},
    )


def test_the_cover_letter_names_the_committee_once_and_the_meeting_date() -> None:
    lines = [text for kind, text in letters.cover_letter_lines(letter_facts(agreed_with=None, on=DEC_3))]
    assert not any(line.startswith("Til: ") for line in lines), lines
    assert sum("Plan-, Teknik- og Miljøudvalget" in line for line in lines[:5]) == 1
    assert "Til udvalgsmødet: 3. december 2026" in lines
    assert not any("næste møde" in line for line in lines)
    # The official, where the form names one, is the addressee; the committee stays its own line.
    named = [text for _, text in letters.cover_letter_lines(letter_facts(agreed_with="Jens Berg", on=None))]
    assert "Til: Jens Berg" in named and "Udvalg: Plan-, Teknik- og Miljøudvalget" in named
    assert "Til udvalgsmødet: det næste møde" in named


def test_every_checksum_of_the_cover_letter_stands_whole_on_its_own_line(tmp_path: Path) -> None:
    long_name = "x" * 120 + "-transkription.docx"
    files = {"kort.mp4": "a" * 64, long_name: "b" * 64, "SHA256SUMS": "c" * 64}
    facts = letters.facts(
        MeetingFacts.named(Meeting(), "moede"),
        None,
        Form(),
        model="base",
        statements=1,
        approved=1,
        clip_ms=1000,
        check_passed=True,
        check_verdict="ok",
        files=files,
    )
    letter = tmp_path / "foelgebrev.pdf"
    letter.write_bytes(letters.cover_letter_pdf(facts))
    result = subprocess.run(["pdftotext", "-enc", "UTF-8", str(letter), "-"], capture_output=True, check=True)
    lines = [line.strip() for line in result.stdout.decode("utf-8").splitlines()]
    for digest in files.values():
        assert digest in lines, digest  # the whole checksum, alone on its line, whatever the name's length


@pytest.mark.parametrize(
    ("statements", "sound_only", "said"),
    [
        (4, 1, "3 videoindlæg og 1 lydindlæg"),
        (2, 1, "1 videoindlæg og 1 lydindlæg"),
        (4, 0, "4 videoindlæg"),
        (3, 3, "3 lydindlæg"),
        (1, 0, "1 videoindlæg"),
        (0, 0, "0 indlæg"),
    ],
)
def test_statements_are_counted_by_kind(statements: int, sound_only: int, said: str) -> None:
    assert statements_by_kind(statements, sound_only) == said
    facts = letter_facts(agreed_with=None, on=None, statements=statements, sound_only=sound_only)
    assert f"Jeres {said} er samlet i ét klip" in letters.participant_note_txt(facts)


def test_the_form_fixes_the_committee_meeting_and_a_different_date_in_meeting_yaml_is_refused() -> None:
    own = Meeting(committee_meeting=DEC_3)
    facts = MeetingFacts.named(own, "x")
    assert committee_meeting(facts, Form()) == DEC_3
    agreed = Form(committee_meeting=dt.date(2026, 12, 10))
    assert committee_meeting(MeetingFacts.named(Meeting(), "x"), agreed) == dt.date(2026, 12, 10)
    check_committee_meeting(
        agreed, Meeting(committee_meeting=dt.date(2026, 12, 10)), meeting_file=None, form_where="f"
    )
    with pytest.raises(ConfigError) as refused:
        check_committee_meeting(agreed, own, meeting_file=Path("meeting.yaml"), form_where="aftalt.yaml")
    assert refused.value.field == "committee_meeting"
    assert "2026-12-03" in str(refused.value) and "aftalt.yaml: committee_meeting: 2026-12-10" in str(
        refused.value
    )


def test_a_dry_run_refuses_a_committee_meeting_the_form_contradicts(
    real_media: Path,
    make_meeting,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"}, "committee_meeting: 2026-12-03\n")
    form = tmp_path / "aftalt.yaml"
    form.write_text("name: aftalt\ncommittee_meeting: 2026-12-10\n", encoding="utf-8")
    result = hearing(
        "run", meeting, "--form", form, "--out", tmp_path / "out", "--dry-run", "--model", "base"
    )
    assert result.exit_code == 3, result.stderr
    assert "committee_meeting: 2026-12-03 differs from the date agreed with the official" in result.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ the demo's delivery


@pytest.fixture(scope="module")
def delivery(demo_run: DemoRun) -> Path:
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    return demo_run.out / "delivery"


def test_the_demo_letters_name_the_date_and_count_the_sound_recording(delivery: Path) -> None:
    cover = pdf_text(delivery / f"{DEMO_NAME}-foelgebrev.pdf")
    assert "Til udvalgsmødet: 3. december 2026" in cover and "næste møde" not in cover
    assert cover.count("Udvalg: Teknik- og Miljøudvalget") == 1 and "Til: Demo: ingen aftale" in cover
    assert "4 indlæg fra borgerne (3 videoindlæg og 1 lydindlæg)" in cover
    note = (delivery / "deltagerbrev.txt").read_text(encoding="utf-8")
    assert "Jeres 3 videoindlæg og 1 lydindlæg er samlet i ét klip" in flat(note)
    assert "ser høringssvaret på sit møde 3. december 2026" in note
    transcript = (delivery / f"{DEMO_NAME}-transkription.txt").read_text(encoding="utf-8")
    assert "Antal indlæg: 4 (3 videoindlæg og 1 lydindlæg)" in transcript
    assert "Vises på udvalgsmødet: 3. december 2026" in transcript
    page = (delivery / "index.html").read_text(encoding="utf-8")
    assert "<dd>4 (3 videoindlæg og 1 lydindlæg)</dd>" in page and "<dd>3. december 2026</dd>" in page


FIXED_NAMES = (
    "SHA256SUMS",
    "index.html",
    "qc-report.json",
    "qc-report.txt",
    "deltagerbrev.txt",
    "deltagerbrev.html",
)


def test_every_delivered_name_follows_the_slug_rule(delivery: Path, demo_run: DemoRun) -> None:
    assert demo_run.report["delivery"]["name"] == DEMO_NAME
    for path in delivery.iterdir():
        assert re.fullmatch(r"[A-Za-z0-9_-]+(\.[a-z0-9]+)*", path.name), path.name
        assert path.name.startswith(DEMO_NAME) or path.name in FIXED_NAMES, path.name


def srt_cues(text: str) -> list[tuple[int, int, str]]:
    def ms(clock: str) -> int:
        h, m, rest = clock.split(":")
        s, milli = rest.split(",")
        return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(milli)

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        start, end = lines[1].split(" --> ")
        cues.append((ms(start), ms(end), " ".join(lines[2:])))
    return cues


def test_the_sound_recording_gets_its_name_caption(delivery: Path, demo_run: DemoRun) -> None:
    parts = demo_run.report["timeline"]
    card = next(p for p in parts if p["kind"] == "card" and p["statement"] == "s04")
    cues = srt_cues((delivery / f"{DEMO_NAME}.da.srt").read_text(encoding="utf-8"))
    (caption,) = [c for c in cues if c[2].startswith("[Mads Bøgh Nielsen")]
    assert card["start_ms"] <= caption[0] < caption[1] <= card["start_ms"] + card["duration_ms"]
    # Every card that names its speaker has its caption; the one without name consent (s03) has none.
    named = [c for c in cues if c[2].startswith("[")]
    assert [c[2].strip("[]").split(",")[0] for c in named] == [
        "Anna Jensen",
        "Søren Ærø Østergård",
        "Mads Bøgh Nielsen",
    ], named


def test_the_transcript_json_gives_each_statement_its_time_in_the_clip(
    delivery: Path, demo_run: DemoRun
) -> None:
    data = json.loads((delivery / f"{DEMO_NAME}-transkription.json").read_text(encoding="utf-8"))
    assert data["version"] == 2 and "in the clip" in data["times"]
    assert data["meeting"]["committee_meeting"] == "2026-12-03"
    parts = {p["statement"]: p for p in demo_run.report["timeline"] if p["kind"] == "statement"}
    recorded = {s["id"]: s for s in demo_run.report["statements"]}
    statements = data["statements"]
    for statement in statements:
        part = parts[statement["id"]]
        assert statement["start_ms"] == part["start_ms"]
        assert statement["duration_ms"] == part["duration_ms"]
        assert statement["end_ms"] == part["start_ms"] + part["duration_ms"]
        assert statement["recording_duration_ms"] == recorded[statement["id"]]["duration_ms"]
        # Its segments are timed from its start in the clip, inside its part (to the frame it is cut on).
        assert all(0 <= s["start_ms"] < statement["duration_ms"] for s in statement["segments"])
        assert all(s["end_ms"] <= statement["duration_ms"] + 40 for s in statement["segments"])
    for before, after in itertools.pairwise(statements):
        assert before["end_ms"] <= after["start_ms"], (before["id"], after["id"])
    # The trimmed statement: shorter in the clip than its recording, and said so.
    first = statements[0]
    assert first["duration_ms"] < first["recording_duration_ms"]


def test_no_lock_file_stays_after_the_run(demo_run: DemoRun) -> None:
    assert not (demo_run.out / LOCK).exists()
    assert not (demo_run.out / LOCK_FILE).exists()


# --------------------------------------------------------------- an official's check of the delivery


def official_check(clip: Path, form: str | Path) -> tuple[int, dict]:
    result = hearing("check", clip, "--form", form, "--json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_the_officials_check_of_the_delivery_alone_judges_every_statement_length(
    delivery: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "modtaget"
    shutil.copytree(delivery, copy)  # the delivery folder alone: no run.json, no work folder
    clip = copy / f"{DEMO_NAME}.mp4"
    timeline = json.loads((copy / f"{DEMO_NAME}-tidslinje.json").read_text(encoding="utf-8"))
    lengths = {p["statement"]: p["duration_ms"] for p in timeline["parts"] if p["kind"] == "statement"}
    assert list(lengths) == ["s01", "s02", "s03", "s04"]
    sums = (copy / "SHA256SUMS").read_text(encoding="utf-8")
    assert f"  {DEMO_NAME}-tidslinje.json" in sums

    code, report = official_check(clip, "demo")
    assert code == 0, report
    judged = {c["check"]: c for c in report["checks"] if c["check"].startswith("clip.statement.")}
    assert list(judged) == [f"clip.statement.{sid}" for sid in lengths]
    for number, (sid, ms) in enumerate(lengths.items(), start=1):
        check = judged[f"clip.statement.{sid}"]
        assert check["title"] == f"length of statement {number} ({sid})"
        assert check["measured"].startswith(f"{ms / 1000:.2f} s") and check["status"] == "pass"
        assert check["expected"].startswith("≤ 60.00 s")
    assert not any("length of each statement" in line for line in report["not_checked"])
    assert next(f for f in report["files"] if f["role"] == "timeline")["found"]

    # A form that allows less than the longest statement: that statement fails, the others pass.
    longest = max(lengths, key=lambda sid: lengths[sid])
    limit = lengths[longest] / 1000 - 0.5
    strict = tmp_path / "strammere.yaml"
    demo_form = (REPO / "configs" / "forms" / "demo.yaml").read_text(encoding="utf-8")
    strict.write_text(re.sub(r"max_statement: \d+", f"max_statement: {limit}", demo_form), encoding="utf-8")
    code, report = official_check(clip, strict)
    failed = {c["check"] for c in report["checks"] if c["status"] == "fail"}
    assert code == 1 and f"clip.statement.{longest}" in failed
    assert all(c.startswith("clip.statement.") for c in failed), failed

    # Facts that do not describe this clip are not used, and the report says the lengths went unchecked.
    timeline["parts"][-1]["duration_ms"] += 5000
    (copy / f"{DEMO_NAME}-tidslinje.json").write_text(json.dumps(timeline), encoding="utf-8")
    code, report = official_check(clip, "demo")
    assert any("length of each statement" in line for line in report["not_checked"])
    note = next(f for f in report["files"] if f["role"] == "timeline")["note"]
    assert "not used: describes a clip of" in note


# ---------------------------------------------------------------------------------- lock files


def test_the_run_lock_goes_when_the_run_ends_however_it_ends(tmp_path: Path) -> None:
    lock = tmp_path / LOCK
    with hold_lock(tmp_path):
        assert lock.read_text(encoding="ascii") == str(os.getpid())
        # A second run in the same folder is refused, naming the first one's process.
        with pytest.raises(Busy, match=str(os.getpid())), hold_lock(tmp_path):
            pass
        assert lock.exists()
    assert not lock.exists()
    for stop in (RuntimeError("a stage failed"), KeyboardInterrupt()):
        with pytest.raises(type(stop)), hold_lock(tmp_path):
            raise stop
        assert not lock.exists(), stop


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    holder = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(REPO)!r})
        from pipeline.out_folder import hold_lock
        with hold_lock(Path({str(tmp_path)!r})):
            print("held", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=str(child.pid)), hold_lock(tmp_path):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # Killed: its file stays, holding no lock; the next run takes it over, and removes it when done.
    assert (tmp_path / LOCK).read_text(encoding="ascii") == str(child.pid)
    with hold_lock(tmp_path):
        assert (tmp_path / LOCK).read_text(encoding="ascii") == str(os.getpid())
    assert not (tmp_path / LOCK).exists()


def test_the_review_lock_goes_with_the_review(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_FILE
    with review_lock(tmp_path) as (fd, running):
        assert fd >= 0 and running is None
        os.pwrite(fd, b"http://127.0.0.1:1/?token=x", 0)
        with review_lock(tmp_path) as (other, address):  # a second review joins the first
            assert other == -1 and address == "http://127.0.0.1:1/?token=x"
        assert lock.exists()
    assert not lock.exists()
    with pytest.raises(KeyboardInterrupt), review_lock(tmp_path):
        raise KeyboardInterrupt
    assert not lock.exists()


# ------------------------------------------------------------------------------------- dry run


def test_a_dry_run_says_draft_where_the_form_makes_one(
    real_media: Path, make_meeting, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    meeting = make_meeting({"a.flac": real_media / "en-jfk.flac"})
    out = tmp_path / "out"
    # The default form requires every statement approved: a first run makes a draft.
    result = hearing("run", meeting, "--out", out, "--dry-run", "--model", "base")
    assert result.exit_code == 0, result.stderr
    assert f"would be made in {out / 'draft'}" in result.stderr and "would be delivered" not in result.stderr
    # The demo form requires no approval: the delivery.
    result = hearing("run", meeting, "--form", "demo", "--out", out, "--dry-run", "--model", "base")
    assert result.exit_code == 0, result.stderr
    assert f"would be delivered to {out / 'delivery'}" in result.stderr
