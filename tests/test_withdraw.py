"""`hearing withdraw`: a statement whose consent was withdrawn leaves the delivery, the work cache and,
when asked, the archive; the other statements' segments are reused byte for byte, and the archive
records the withdrawal.

The delivery is searched in every file, inside the binary ones too: the clip's subtitle tracks (by
ffmpeg), the PDFs' text (pdftotext), the Word document's (python-docx) and every member of the ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import DemoRun, run_here
from test_corrections import Run, copy_of, delivered, report_of

from pipeline import withdrawal
from pipeline.stages.archive.layout import RECORDINGS, payload_path
from pipeline.stages.archive.premis import DEACCESSION, REDACTION, Software

ANNA = "recordings/01-anna.mp4"
NAMES = ("Anna Jensen", "Jensen", "Anna", "anna")
# Markup for HTML and XML, quotes for JSON and YAML, a line break, Danish letters, a PDF string's
# delimiters and escape: none of it may reach the delivery, and the archive keeps it exactly.
HOSTILE_REASON = (
    'Borgeren ringede <script>alert("x")</script> & <b>bad</b> \\ (parenteser) ]]> "citat" \'enkelt\'\n'
    "Ny linje: æøå ÆØÅ — kontaktet af sagsbehandler " + "meget lang begrundelse " * 120
)


def _texts(path: Path) -> list[str]:
    """Every text a file holds, as a person or a program could read it out."""
    data = path.read_bytes()
    texts = [data.decode("utf-8", "ignore"), data.decode("latin-1")]
    suffix = path.suffix.lower()
    if suffix == ".json":
        texts.append(json.dumps(json.loads(data), ensure_ascii=False))
    if suffix == ".pdf":
        texts.append(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout)
    if suffix == ".docx":
        import docx

        document = docx.Document(str(path))
        texts.append("\n".join(p.text for p in document.paragraphs))
        texts += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    if suffix in (".mp4", ".mov"):
        for index in range(4):  # every subtitle track there is
            found = subprocess.run(
                ["ffmpeg", "-v", "quiet", "-i", str(path), "-map", f"0:s:{index}", "-f", "srt", "-"],
                capture_output=True,
                text=True,
            )
            texts.append(found.stdout)
    if suffix == ".zip":
        with zipfile.ZipFile(path) as packed:
            for member in packed.namelist():
                texts.append(member)
                inner = packed.read(member)
                texts.append(inner.decode("utf-8", "ignore"))
                if member.endswith(".docx"):
                    import docx

                    texts.append("\n".join(p.text for p in docx.Document(io.BytesIO(inner)).paragraphs))
    return texts


BINARY = {".mp4", ".mov", ".wav", ".png", ".jpg", ".pdf", ".docx", ".zip"}


def _holding(places: list[Path], needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for each needle found in a file below ``places`` (or its name), case ignored. The
    raw bytes of a picture or a sound hold any short string by chance: there only the long needles
    are looked for, and the short ones in what is read out of them."""
    found = []
    files = [p for place in places for p in ([place] if place.is_file() else sorted(place.rglob("*")))]
    for path in files:
        if not path.is_file():
            continue
        texts = _texts(path)
        raw = 2 if path.suffix.lower() in BINARY else 0
        for k, text in enumerate([path.name, *texts]):
            wanted = [n for n in needles if len(n) >= 6] if 0 < k <= raw else needles
            found += [(str(path), n) for n in wanted if n.casefold() in text.casefold()]
    return sorted(set(found))


def _srt_words(path: Path) -> set[str]:
    text = "\n".join(
        line for line in path.read_text(encoding="utf-8").splitlines() if line and "-->" not in line
    )
    return {w.casefold() for w in re.findall(r"\w{6,}", text) if not w.isdigit()}


def _segment_digests(out: Path, files: set[str]) -> dict[str, str]:
    """The SHA-256 of each statement segment in the cache of the statements of ``files``."""
    report = report_of(out)
    ids = {s["id"]: s["file"] for s in report["statements"]}
    found = {}
    for stage in report["stages"]:
        if (
            stage["stage"] == "render"
            and stage.get("part") == "statement"
            and ids[stage["statement"]] in files
        ):
            path = out / "work" / "segments" / f"{stage['key']}.mov"
            found[ids[stage["statement"]]] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _provenance(out: Path) -> dict:
    return json.loads((out / "archive/data/metadata/provenance.json").read_text(encoding="utf-8"))


def _manifest(out: Path) -> dict[str, str]:
    lines = (out / "archive/manifest-sha512.txt").read_text(encoding="utf-8").splitlines()
    return {path: digest for digest, path in (line.split("  ", 1) for line in lines)}


@pytest.mark.slow
def test_a_withdrawn_statement_leaves_the_delivery_the_cache_and_then_the_archive(demo_run: DemoRun) -> None:
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    form = Path(demo_run.report["options"]["form"])
    run = copy_of(Run(Path(demo_run.report["options"]["meeting_dir"]), demo_run.out, form), "demo-withdrawn")
    out = run.out
    edits = out / "edits" / "recordings"
    others = {"recordings/02-soeren.mov", "recordings/03-karen.mp4", "recordings/04-mads.m4a"}
    # Her words: what the engine heard of her that nobody else said and the meeting file does not hold.
    meeting_text = (run.meeting / "meeting.yaml").read_text(encoding="utf-8").casefold()
    said_by_others = set().union(*(_srt_words(p) for p in edits.glob("*.srt") if "anna" not in p.name))
    words = sorted(w for w in _srt_words(edits / "01-anna.mp4.srt") - said_by_others if w not in meeting_text)
    assert len(words) >= 3, words
    assert _holding([out / "delivery"], ["Anna Jensen", *words[:3]])  # the search finds what is there
    segments = _segment_digests(out, others)
    assert len(segments) == 3
    anna_sha512 = _manifest(out)[payload_path(ANNA)]
    others_in_bag = {
        p: d for p, d in _manifest(out).items() if p.startswith(RECORDINGS) and p != payload_path(ANNA)
    }
    assert len(others_in_bag) == 3  # Mads gave no consent to the archive; Lise's is there

    result = run_here("withdraw", out, "s01", "--reason", HOSTILE_REASON, "--zip", "-q")
    assert result.returncode == 0, result.stderr

    report = report_of(out)
    assert [s["file"] for s in report["statements"]] == sorted(others)
    assert _segment_digests(out, others) == segments  # reused byte for byte
    assert all(
        s["cached"] for s in report["stages"] if s["stage"] == "render" and s.get("part") == "statement"
    )
    clip = delivered(out, ".mp4")
    check = run_here("check", clip, "--form", form, "-q")
    assert check.returncode == 0, check.stdout + check.stderr
    assert list(out.glob("*.zip"))
    leaks = _holding([out / "delivery", out / "work", out / "edits", *out.glob("*.zip")], [*NAMES, *words])
    assert leaks == [], leaks
    # The delivery says that a statement was withdrawn and when; the reason is for the archive.
    page = (out / "delivery" / "index.html").read_text(encoding="utf-8")
    assert "Trukket tilbage" in page and "1 indlæg trukket tilbage" in page
    letter = delivered(out, "-foelgebrev.pdf")
    assert "Et indlæg er trukket tilbage den" in subprocess.run(
        ["pdftotext", str(letter), "-"], capture_output=True, text=True
    ).stdout.replace("\n", " ")
    assert _holding([out / "delivery"], ["Borgeren ringede", "meget lang begrundelse"]) == []

    verified = run_here("verify", out)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"withdrawn from the delivery: {ANNA}" in verified.stdout
    redactions = [e for e in _provenance(out)["events"] if e["eventType"] == REDACTION]
    assert len(redactions) == 1
    note = redactions[0]["eventOutcomeInformation"]["eventOutcomeDetail"]["eventOutcomeDetailNote"]
    assert note.endswith(f"reason: {HOSTILE_REASON.strip()}")  # exactly as given, JSON-escaped on disk
    assert (out / "archive" / payload_path(ANNA)).is_file()  # without --from-archive the recording stays

    # Twice: refused, nothing changes. By its path, since s01 now names another statement.
    before = (out / "withdrawn.json").read_bytes()
    again = run_here("withdraw", out, ANNA, "--reason", "igen")
    assert again.returncode == 2 and "withdrawn already" in again.stderr
    assert (out / "withdrawn.json").read_bytes() == before

    # Then from the archive too: a new bag without its bytes, whose provenance keeps their digests.
    result = run_here("withdraw", out, ANNA, "--reason", "Også fra arkivet: <æøå>", "--from-archive", "-q")
    assert result.returncode == 0, result.stderr
    assert not (out / "archive" / payload_path(ANNA)).exists()
    assert {p: d for p, d in _manifest(out).items() if p.startswith(RECORDINGS)} == others_in_bag
    assert payload_path(ANNA) not in _manifest(out)
    provenance = _provenance(out)
    (removed,) = provenance["removed"]
    assert removed["file"] == ANNA and removed["sha512"] == anna_sha512
    assert removed["reason"].endswith("Også fra arkivet: <æøå>")
    assert [e["eventType"] for e in provenance["events"]].count(REDACTION) == 1
    assert [e["eventType"] for e in provenance["events"]].count(DEACCESSION) == 1
    assert ANNA in {w["file"] for w in provenance["withheld"]}
    verified = run_here("verify", out)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"removed from the bag: {ANNA}" in verified.stdout
    assert _segment_digests(out, others) == segments
    assert _holding([out / "delivery", out / "work", out / "edits"], [*NAMES, *words]) == []
    assert run_here("withdraw", out, ANNA, "--reason", "x", "--from-archive").returncode == 2

    # A later render keeps it out; a damaged record stops the run rather than deliver it again.
    assert run_here("render", out, "-q").returncode == 0
    assert ANNA not in {s["file"] for s in report_of(out)["statements"]}
    (out / "withdrawn.json").write_text('{"kind": "hearing-pipeline withdrawals", "version": 1, "withd')
    broken = run_here("render", out, "-q")
    assert broken.returncode == 3 and "withdrawn.json" in broken.stderr


# ------------------------------------------------------------------------------- refused at once


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """An output folder with a run's record and nothing else: enough for every refusal below, which
    happens before anything is read from the work cache or written."""
    out = tmp_path / "out"
    out.mkdir()
    statements = [
        {"id": "s01", "file": ANNA, "sha256": "a" * 64},
        {"id": "s02", "file": "recordings/02 søren <b>.mov", "sha256": "b" * 64},
    ]
    report = {
        "kind": "hearing-pipeline run report",
        "version": 1,
        "options": {"meeting_dir": str(tmp_path / "meeting"), "form": "demo"},
        "statements": statements,
        "stages": [],
    }
    (out / "run.json").write_text(json.dumps(report), encoding="utf-8")
    return out


@pytest.mark.parametrize(
    ("statement", "said"),
    [
        ("s09", "no statement 's09' in the delivery; the statements are: s01 (recordings/01-anna.mp4), s02"),
        ("recordings/99.mp4", "no statement 'recordings/99.mp4'"),
        ("../recordings/01-anna.mp4", "no statement"),
        ("s01\nerror: fake", "no statement 's01\\nerror: fake'"),
        ("", "no statement ''"),
    ],
)
def test_an_unknown_statement_is_refused_in_one_line_naming_the_known_ones(
    recorded: Path, statement: str, said: str
) -> None:
    result = run_here("withdraw", recorded, statement, "--reason", "x")
    assert result.returncode == 2
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not withdrawal.path_of(recorded).exists()


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("", "--reason is empty"),
        (" \n\t ", "--reason is empty"),
        ("x" * (withdrawal.MAX_REASON + 1), "characters long"),
        ("bell\x07", "U+0007"),
        ("escape \x1b[31m red", "U+001B"),
        ("nul\x00", "U+0000"),
        ("right-to-left \u202e override", "U+202E"),
    ],
)
def test_a_reason_that_cannot_be_kept_as_text_is_refused(recorded: Path, reason: str, said: str) -> None:
    with pytest.raises(withdrawal.WithdrawalRefused, match=re.escape(said)):
        withdrawal.check_reason(reason)
    if "\x00" not in reason:  # a process argument cannot hold NUL at all
        result = run_here("withdraw", recorded, "s01", "--reason", reason)
        assert result.returncode == 2 and said in result.stderr
    assert not withdrawal.path_of(recorded).exists()


def test_a_reason_keeps_its_lines_its_markup_and_its_letters() -> None:
    assert withdrawal.check_reason('  a <b>&</b>\r\nb æøå "q"\r') == 'a <b>&</b>\nb æøå "q"'


def test_an_output_folder_that_is_not_a_runs_output_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_here("withdraw", empty, "s01", "--reason", "x")
    assert result.returncode == 2 and "holds no earlier run" in result.stderr
    (empty / "run.json").write_text("[1, 2", encoding="utf-8")
    result = run_here("withdraw", empty, "s01", "--reason", "x")
    assert result.returncode == 2 and "run.json" in result.stderr
    assert run_here("withdraw", tmp_path / "missing", "s01", "--reason", "x").returncode == 2
    assert not withdrawal.path_of(empty).exists()


def test_a_statement_withdrawn_is_refused_again_unless_it_now_also_leaves_the_archive(recorded: Path) -> None:
    first = withdrawal.Withdrawal(ANNA, "a" * 64, "s01", "2026-12-05T10:00:00Z", "ida", "why")
    delivered_now = [{"id": "s01", "file": "recordings/02-soeren.mov", "sha256": "b" * 64}]
    meeting = recorded.parent / "meeting"
    for given in (ANNA, f"./{ANNA}", str(meeting / ANNA)):
        with pytest.raises(withdrawal.WithdrawalRefused, match=r"withdrawn already.*--from-archive"):
            withdrawal.resolve(given, delivered_now, [first], meeting, from_archive=False)
        assert withdrawal.resolve(given, delivered_now, [first], meeting, from_archive=True)[0] == ANNA
    later = withdrawal.Withdrawal(ANNA, "a" * 64, "s01", "2026-12-06T09:00:00Z", "ida", "arkiv", True)
    both = withdrawal.added([first], later)
    (kept,) = both
    # The first withdrawal stays as it was: the archive's record of it is the same event.
    program = Software("hearing-pipeline", "1")
    assert withdrawal.events([kept], program)[0].note == withdrawal.events([first], program)[0].note
    assert kept.from_archive and kept.archive_reason == "arkiv" and "2026-12-06" in kept.withheld_reason()
    with pytest.raises(withdrawal.WithdrawalRefused, match=r"withdrawn already, on 2026-12-05T10:00:00Z$"):
        withdrawal.resolve(ANNA, delivered_now, both, meeting, from_archive=True)


def test_the_cache_forgets_every_entry_of_the_keys_the_files_named_and_what_every_statement_shares(
    tmp_path: Path,
) -> None:
    from pipeline.cache import WorkCache
    from pipeline.files import HashCache

    work = WorkCache.of(tmp_path)
    hers, theirs, subtitles = "a" * 64, "b" * 64, "c" * 64
    made = {
        "hers": [work.transcript(hers), work.audio(hers), work.segment(hers), work.alignment(hers)],
        "sealed": [work.segment(hers).with_name(work.segment(hers).name + ".sha256")],
        "named": [work.subtitles(subtitles)],
        "shared": [work.clip_folder / f"{theirs}.mp4", work.review_video(theirs), work.still(theirs)],
        "theirs": [work.transcript(theirs), work.segment(theirs), work.subtitles(theirs)],
    }
    for path in [p for paths in made.values() for p in paths]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    recording = tmp_path / "meeting" / "01-anna.mp4"
    recording.parent.mkdir()
    recording.write_bytes(b"her voice")
    hashes = HashCache(work.hashes_file)
    for path in [recording, work.segment(hers), work.segment(theirs)]:
        hashes.sha256(path)
    hashes.save()
    command = f"ffmpeg -i x -vf subtitles=filename=/elsewhere/cache/subtitles/{subtitles}.ass out.mov"
    gone = work.forget({hers}, named_in=[command], sources=[recording])
    expected = [p for kind in ("hers", "sealed", "named", "shared") for p in made[kind]]
    assert sorted(gone) == sorted(expected)
    assert all(p.is_file() for p in made["theirs"])
    remembered = work.hashes_file.read_text(encoding="utf-8")
    assert theirs in remembered and hers not in remembered and "anna" not in remembered


GOOD = {
    "file": ANNA,
    "sha256": "a" * 64,
    "statement": "s01",
    "at": "2026-12-05T10:00:00Z",
    "by": "ida",
    "reason": "r",
}


@pytest.mark.parametrize(
    "text",
    [
        '{"kind": "hearing-pipeline withdrawals", "version": 1, "withd',  # cut off
        "[]",
        json.dumps({"kind": "something else", "version": 1, "withdrawn": []}),
        json.dumps({"kind": withdrawal.KIND, "version": 99, "withdrawn": []}),
        json.dumps({"kind": withdrawal.KIND, "version": 1}),
        json.dumps({"kind": withdrawal.KIND, "version": 1, "withdrawn": [{"file": ANNA}]}),
        json.dumps({"kind": withdrawal.KIND, "version": 1, "withdrawn": [{**GOOD, "at": "yesterday"}]}),
        json.dumps({"kind": withdrawal.KIND, "version": 1, "withdrawn": [{**GOOD, "file": 7}]}),
        json.dumps({"kind": withdrawal.KIND, "version": 1, "withdrawn": [{**GOOD, "extra": 1}]}),
        json.dumps({"kind": withdrawal.KIND, "version": 1, "withdrawn": ["s01"]}),
    ],
)
def test_a_record_that_cannot_be_read_stops_a_run_rather_than_deliver_the_statement(
    tmp_path: Path, text: str
) -> None:
    from pipeline.errors import ConfigError

    withdrawal.path_of(tmp_path).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        withdrawal.read(tmp_path)
    assert refused.value.exit_code == 3 and "withdrawn.json" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_record_is_read_back_as_written(tmp_path: Path) -> None:
    one = withdrawal.Withdrawal(**GOOD, from_archive=True, edits_deleted=("recordings/01-anna.mp4.srt",))
    withdrawal.write(tmp_path, [one])
    assert withdrawal.read(tmp_path) == (one,)
    assert withdrawal.read(tmp_path / "nothing") == ()


def test_the_outputs_made_with_the_statement_go_before_the_delivery_is_made_again(
    recorded: Path, tmp_path: Path
) -> None:
    """Made again, the delivery may be a draft waiting for approvals, or nothing at all: the old
    delivery, draft, failed delivery and ZIP, which hold the withdrawn words, must not wait for it."""
    report = json.loads((recorded / "run.json").read_text(encoding="utf-8"))
    report["delivery"] = {"name": "2026-11-20_Udvalget_hoeringssvar", "zip": None}
    (recorded / "run.json").write_text(json.dumps(report), encoding="utf-8")
    for place in ("delivery", "draft", "failed-delivery", ".delivery-next"):
        (recorded / place).mkdir()
        (recorded / place / "index.html").write_text("Anna Jensen", encoding="utf-8")
    (recorded / "2026-11-20_Udvalget_hoeringssvar.zip").write_bytes(b"PK")
    elsewhere = tmp_path / "kept"
    elsewhere.mkdir()
    (recorded / "edits").mkdir()
    (recorded / "other.zip").write_bytes(b"PK")  # not the tool's: left alone
    meeting = recorded.parent / "meeting" / "recordings"
    meeting.mkdir(parents=True)
    (meeting / "01-anna.mp4").write_bytes(b"not really a recording")
    done = withdrawal.prepare(recorded, "s01", "trukket tilbage", from_archive=False)
    assert done.file == ANNA
    left = sorted(p.name for p in recorded.iterdir())
    assert left == ["edits", "other.zip", "run.json", "withdrawn.json"], left
    assert elsewhere.is_dir()
