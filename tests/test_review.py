"""`hearing review`: the page in a real headless browser (Debian's chromium, driven by Selenium) on a
real-speech run, and the guards of a server that can write files."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import REPO, TEST_OUTPUT, hearing, run_cli
from test_laptop import run_report
from test_render import docx_text

from pipeline.config import StatementEdit
from pipeline.review.changes import BadChange, fields_after, json_depth, parse_change, read_json
from pipeline.review.guards import allowed_hosts, inside, page_address, token_matches

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
NOW = dt.datetime(2026, 12, 1, 15, 30, 12)
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"
)


# ------------------------------------------------------------------------------------- pure core


def test_a_change_is_read_into_cues_and_fields() -> None:
    change = parse_change(
        {
            "version": "abc",
            "cues": [
                {"start_ms": 2000, "end_ms": 3000, "text": "Anden  linje"},
                {"start_ms": 0, "end_ms": 1500, "text": "Første\nlinje"},
                {"start_ms": 1600, "end_ms": 1900, "text": "   "},
            ],
            "speaker": "  Søren Ærø ",
            "topic": None,
            "in_ms": 1200,
            "out_ms": None,
            "approval": {"by": "Ida Holm"},
            "approved_at": "0001-01-01T00:00:00",
        },
        10_000,
    )
    assert [(c.start_ms, c.lines) for c in change.cues] == [
        (0, ("Første", "linje")),
        (2000, ("Anden linje",)),
    ]
    assert change.speaker == "Søren Ærø" and change.topic is None and change.in_ms == 1200
    assert change.version == "abc" and change.approve == "Ida Holm" and not change.withdraw
    # The time of an approval is the server's, never the browser's.
    fields = fields_after(StatementEdit(), change, now=NOW)
    assert fields.approved and fields.approved_by == "Ida Holm"
    assert fields.approved_at == dt.datetime(2026, 12, 1, 15, 30)
    kept = fields_after(fields, parse_change({"version": "v", "cues": []}, 10_000), now=NOW)
    assert kept.approved and kept.approved_at == fields.approved_at
    withdrawn = fields_after(
        fields, parse_change({"version": "v", "cues": [], "approval": False}, 10_000), now=NOW
    )
    assert not withdrawn.approved and withdrawn.approved_by is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ([], "JSON object"),
        ({"cues": "x"}, "cues"),
        ({"cues": [{"start_ms": 5, "end_ms": 5, "text": "a"}]}, "start_ms < end_ms"),
        ({"cues": [{"start_ms": 0, "end_ms": 99_000, "text": "a"}]}, "end_ms <="),
        ({"cues": [{"start_ms": "0", "end_ms": 10, "text": "a"}]}, "whole milliseconds"),
        ({"cues": [], "in_ms": 20_000}, "in_ms"),
        ({"cues": [], "in_ms": 3000, "out_ms": 2000}, "after in_ms"),
        ({"cues": [], "approval": {"by": "  "}}, "approval.by"),
        ({"cues": [], "approval": True}, "approval"),
        ({"cues": [], "speaker": "x" * 201}, "speaker"),
        ({"cues": [], "speaker": "Anna\x07"}, "kontroltegn"),
        ({"cues": [], "speaker": "Anna \u202enesnej"}, "U\\+202E"),
        ({"cues": [], "topic": "Skolevej \ufdd0"}, "U\\+FDD0"),
        ({"cues": [], "approval": {"by": "Ida\u2066"}}, "U\\+2066"),
        (
            {"cues": [{"start_ms": 0, "end_ms": 900, "text": "a\n00:00:01,000 --> 00:00:02,000"}]},
            "Undertekst 1",
        ),
        ({"cues": [{"start_ms": 0, "end_ms": 900, "text": "{\\an8}Hej"}]}, "formatering"),
        ({"cues": [{"start_ms": 0, "end_ms": 900, "text": "<i>Hej</i>"}]}, "formatering"),
        ({"cues": [{"start_ms": 0, "end_ms": 900, "text": "Hej \u6f22"}]}, "skrifttype"),
    ],
)
def test_a_change_that_cannot_be_saved_says_why(change: Any, words: str) -> None:
    if isinstance(change, dict):
        change = {"version": "v", **change}
    with pytest.raises(BadChange, match=words):
        parse_change(change, 10_000)


@pytest.mark.parametrize("version", [None, "", 7, ["v"], {"v": "abc"}, "missing"])
def test_a_change_without_the_version_it_started_from_is_refused(version: Any) -> None:
    # Otherwise a change that saves: only the version is wrong.
    change: dict[str, Any] = {"cues": [{"start_ms": 0, "end_ms": 900, "text": "Hej"}], "version": version}
    if version == "missing":
        del change["version"]
    with pytest.raises(BadChange, match=r"^version: "):
        parse_change(change, 10_000)
    assert parse_change({**change, "version": "abc"}, 10_000).version == "abc"


def test_text_a_person_types_is_kept_as_typed() -> None:
    typed = ["a --> b", "{x} og [y]", "a < b > c & d", "\\N er ikke et linjeskift", "42", "Æøå … 😀"]
    change = parse_change(
        {
            "version": "v",
            "cues": [
                {"start_ms": k * 1000, "end_ms": k * 1000 + 900, "text": t} for k, t in enumerate(typed)
            ],
        },
        10_000,
    )
    assert [c.lines[0] for c in change.cues] == typed


def test_only_the_served_loopback_address_is_a_host() -> None:
    assert allowed_hosts(8765) == {"127.0.0.1:8765", "localhost:8765"}


def test_the_address_carries_the_token_and_only_that_token_matches() -> None:
    token = "Ab-_09" * 7
    assert page_address(8765, token) == f"http://127.0.0.1:8765/?token={token}"
    assert token_matches(token, token)
    for given in (None, "", token[:-1], token + "x", token.upper(), "æ" + token[1:], "\udcff", "\x00" * 42):
        assert not token_matches(given, token), given


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("null", 0),
        ('{"cues": [{"text": "a"}]}', 3),
        ('["[[[[[", "{{{{", "\\"[[["]', 1),  # brackets inside strings are text, escaped quotes too
        ('{"a": "\\"}', 1),  # a string ending in an escaped backslash ends there
        ("[" * 100_000, 65),  # counted no further than one past the limit
        ('{"a":' * 100_000, 65),
        ("[" * 64 + "]" * 64, 64),
        ('"' + "[" * 1000, 65),  # an unterminated string: its brackets count (json.loads refuses it anyway)
    ],
)
def test_json_depth_is_counted_without_recursion(text: str, depth: int) -> None:
    assert json_depth(text, 64) == depth


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "deeper than 64"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "deeper than 64"),
        (b"[" * 65 + b"]" * 65, "deeper than 64"),
        (b'{"cues": [1, 2', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"in_ms": NaN}', "NaN"),
        (b'{"in_ms": -Infinity}', "Infinity"),
        (b'{"in_ms": ' + b"9" * 5000 + b"}", "not JSON"),  # more digits than Python reads as an integer
    ],
)
def test_a_body_that_is_not_plain_json_is_refused_with_its_reason(body: bytes, words: str) -> None:
    with pytest.raises(BadChange, match=words):
        read_json(body)


def test_plain_json_is_read() -> None:
    assert read_json(b"") is None
    assert read_json(b"[" * 64 + b"]" * 64) is not None
    assert read_json('{"text": "[[[ {{{ Æøå"}'.encode()) == {"text": "[[[ {{{ Æøå"}


def test_a_file_is_inside_only_where_its_links_resolve_inside(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "work").mkdir(parents=True)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"secret")
    (root / "work" / "clip.mp4").write_bytes(b"clip")
    (root / "inner.mp4").symlink_to(root / "work" / "clip.mp4")
    (root / "absolute.mp4").symlink_to(outside)
    (root / "relative.mp4").symlink_to(Path("..") / "secret.mp4")
    (root / "away").symlink_to(tmp_path)
    (root / "loop.mp4").symlink_to(root / "loop.mp4")
    (tmp_path / "out-sibling").mkdir()
    root = root.resolve()
    assert inside(root / "work" / "clip.mp4", root) == root / "work" / "clip.mp4"
    assert inside(root / "inner.mp4", root) == root / "work" / "clip.mp4"
    assert inside(root / "work" / "not-yet.mp4", root) == root / "work" / "not-yet.mp4"
    for path in (
        root / "absolute.mp4",
        root / "relative.mp4",
        root / "away" / "secret.mp4",
        root / "away" / "out-sibling" / "x.mp4",  # a folder whose name begins like OUT's
        root / "loop.mp4",
        root / ".." / "secret.mp4",
    ):
        assert inside(path, root) is None, path


# ------------------------------------------------------------------------------------- the server


class Served:
    """A `hearing review` running in its own process: its address (with the session's token, as it
    printed it) and every line it logged."""

    def __init__(self, process: subprocess.Popen[str], url: str, lines: list[str]) -> None:
        self.process = process
        self.url = url
        self.lines = lines

    @property
    def log(self) -> str:
        return "".join(self.lines)


# Starts the pipeline with Ctrl-C ignored, as a shell starts a background job.
CTRL_C_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pipeline', *sys.argv[1:]])"
)


def start_served(out_dir: Path, *extra: str, ctrl_c_ignored: bool = False) -> Served:
    """`hearing review OUT_DIR --no-browser` in its own process, once it listens; its log is read on a
    thread (a server that logs much must never block on a full pipe)."""
    import threading

    start = ["-c", CTRL_C_IGNORED] if ctrl_c_ignored else ["-m", "pipeline"]
    process = subprocess.Popen(
        [sys.executable, *start, "review", str(out_dir), "--no-browser", *extra],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    address: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if not address and "http://" in line:
                address.append(line[line.index("http://") :].split()[0])
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(120) or not address:
        process.kill()
        raise AssertionError(f"hearing review did not print its address: {''.join(lines)}")
    LOGS[process.pid] = lines
    return Served(process, address[0], lines)


LOGS: dict[int, list[str]] = {}  # what each server started here logged, by its process id


def start_review(out_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """`hearing review OUT_DIR --no-browser`; its address with the session's token, once it listens."""
    served = start_served(out_dir, *extra)
    return served.process, served.url


def stop(process: subprocess.Popen[str]) -> int:
    """Ctrl-C; its exit code (the log is printed where it is not 0, for the failing test's report)."""
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        # How the server held Ctrl-C (ignored, blocked, caught), for the failing test's report.
        try:
            status = Path(f"/proc/{process.pid}/status").read_text(encoding="ascii")
        except OSError:
            status = ""
        held = [line for line in status.splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
        held_text = "; ".join(held)
        raise AssertionError(f"hearing review did not stop on Ctrl-C within 30 s ({held_text})") from None
    finally:
        if process.poll() is None:
            process.kill()
    if code != 0:
        time.sleep(0.2)  # the last lines, read on the log's thread
        print("".join(LOGS.get(process.pid, [])), file=sys.stderr)
    return code


def token_of(url: str) -> str:
    (token,) = parse_qs(urlsplit(url).query)["token"]
    return token


def request(
    url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    token: bool = True,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to the server at ``url``, as the page makes it: with the session's token in its
    header unless ``token`` is False. The status, the headers and the body."""
    address = urlsplit(url).netloc
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    sent = {"Host": address, **({TOKEN: token_of(url)} if token else {}), **(headers or {})}
    connection.request(method, path, body=data, headers=sent)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, response.headers, raw


def call(
    url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    token: bool = True,
) -> tuple[int, Any]:
    status, _, raw = request(url, method, path, headers=headers, body=body, token=token)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def listening_addresses(port: int) -> set[str]:
    """The local addresses a socket listens on at ``port``, from the kernel's own table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.fixture(scope="session")
def reviewed_once(real_media: Path) -> Path:
    """A real-speech run whose form asks for every statement to be approved: a draft to review, made
    once a session (each test reviews a copy of it)."""
    from conftest import SMALL_FORM

    root = TEST_OUTPUT / "runs" / "reviewed-once"
    shutil.rmtree(root, ignore_errors=True)
    meeting = root / "moede"
    meeting.mkdir(parents=True)
    shutil.copyfile(real_media / "en-jfk.flac", meeting / "jfk.flac")
    shutil.copyfile(real_media / "en-talking-head.mp4", meeting / "talk.mp4")
    form = root / "godkendes.yaml"
    form.write_text(SMALL_FORM + "require_approval: true\n", encoding="utf-8")
    first = run_cli("run", meeting, "--out", root / "out", "--form", form, "--language", "en", "--quiet")
    assert first.returncode == 6, first.stderr
    return root / "out"


@pytest.fixture
def reviewed(reviewed_once: Path, out_dir: Path) -> Iterator[Path]:
    shutil.rmtree(out_dir)
    shutil.copytree(reviewed_once, out_dir, symlinks=True)
    yield out_dir


@pytest.mark.slow
def test_ctrl_c_stops_a_review_started_with_ctrl_c_ignored(reviewed: Path) -> None:
    """A shell's background job starts with Ctrl-C ignored; the server still stops on it, as a run does."""
    process = start_served(reviewed, ctrl_c_ignored=True).process
    assert process.poll() is None, "the review is serving"
    assert stop(process) == 0


@pytest.mark.slow
def test_the_server_refuses_what_is_not_its_own_page(reviewed: Path) -> None:
    process, url = start_review(reviewed)
    try:
        port = urlsplit(url).port
        assert port is not None
        assert listening_addresses(port) == {"0100007F"}, "listens on 127.0.0.1 only"
        # The address it printed is the page's, with the session's token; the page passes it on.
        status, page = call(url, "GET", urlsplit(url).path + "?" + urlsplit(url).query, token=False)
        assert status == 200
        token = page.decode("utf-8").split('name="review-token" content="')[1].split('"')[0]
        assert token == token_of(url) and len(token) >= 40
        status, state = call(url, "GET", "/api/state")
        assert status == 200 and [s["file"] for s in state["statements"]] == ["jfk.flac", "talk.mp4"]
        jfk = state["statements"][0]

        # DNS rebinding: the same server under another name.
        assert call(url, "GET", "/api/state", headers={"Host": f"attacker.example:{port}"})[0] == 403
        # Another site's page posting here.
        change = {"version": jfk["version"], "cues": jfk["cues"]}
        foreign = {"Origin": "http://attacker.example", "X-Review-Token": token}
        assert call(url, "POST", f"/api/statements/{jfk['id']}", headers=foreign, body=change)[0] == 403
        # A write without this session's token.
        assert call(url, "POST", f"/api/statements/{jfk['id']}", body=change, token=False)[0] == 403
        assert call(url, "POST", "/api/render", headers={"X-Review-Token": "guess"}, body={})[0] == 403
        # Nothing a request names reaches outside OUT_DIR.
        for path in (
            "/media/../../etc/passwd",
            "/media/%2e%2e%2frun.json",
            "/static/../review.py",
            "/clip/../run.json",
        ):
            assert call(url, "GET", path)[0] == 404, path
        own = {"X-Review-Token": token}
        assert call(url, "POST", "/api/statements/../../x", headers=own, body=change)[0] == 404
        assert call(url, "POST", f"/api/statements/{jfk['id']}", headers=own, body={"cues": 1})[0] == 400
        # The page's own write is saved in OUT/edits.
        status, saved = call(
            url, "POST", f"/api/statements/{jfk['id']}", headers=own, body={**change, "topic": "Et"}
        )
        assert status == 200 and saved["cues"] == jfk["cues"] and saved["topic"] == "Et"
        # Another change from the version before that save: refused, never written over it.
        assert call(url, "POST", f"/api/statements/{jfk['id']}", headers=own, body=change)[0] == 409
        no_version = {"cues": jfk["cues"]}
        assert call(url, "POST", f"/api/statements/{jfk['id']}", headers=own, body=no_version)[0] == 400
        # Seeking needs byte ranges.
        status, part = call(url, "GET", f"/media/{jfk['id']}", headers={"Range": "bytes=0-99"})
        assert status == 206 and len(part) == 100

        # A second review of the same folder joins the first: the address, with its token, is in the
        # lock file, which only its owner may read.
        second = hearing("review", reviewed, "--no-browser")
        assert second.exit_code == 0 and url in second.stderr and "already open" in second.stderr
        lock = reviewed / ".review.lock"
        assert lock.read_text(encoding="ascii") == url and lock.stat().st_mode & 0o077 == 0
    finally:
        assert stop(process) == 0, "Ctrl-C stops it cleanly"
    assert not listening_addresses(port)
    assert not lock.exists(), "the lock file goes with the review"

    # A lock file that is a link: never written through (the address would land wherever it points).
    elsewhere = reviewed.parent / f"{reviewed.name}-elsewhere.txt"
    elsewhere.write_text("kept\n", encoding="utf-8")
    lock.symlink_to(elsewhere)
    linked = hearing("review", reviewed, "--no-browser")
    assert linked.exit_code == 2 and ".review.lock" in linked.stderr, linked.stderr
    assert elsewhere.read_text(encoding="utf-8") == "kept\n"


@pytest.mark.slow
@needs_chromium
def test_a_person_reads_corrects_approves_and_renders_in_the_browser(reviewed: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = TEST_OUTPUT / "review"
    shots.mkdir(parents=True, exist_ok=True)
    process, url = start_review(reviewed)
    try:
        with chromium() as driver:
            wait = WebDriverWait(driver, 120)
            driver.get(url)
            wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
            sections = driver.find_elements(By.CSS_SELECTOR, "section.statement")
            assert len(sections) == 2
            jfk = next(s for s in sections if "jfk.flac" in s.find_element(By.TAG_NAME, "h2").text)

            # Play from the second cue: the video goes there and the cue being spoken is highlighted.
            cues = jfk.find_elements(By.CSS_SELECTOR, ".cue")
            jfk_id = jfk.get_attribute("data-id")
            start_ms = driver.execute_script("return page.byId.get(arguments[0]).cues[1].start_ms", jfk_id)
            cues[1].find_element(By.CSS_SELECTOR, ".time").click()
            video = jfk.find_element(By.CSS_SELECTOR, "audio, video")
            wait.until(
                lambda d: d.execute_script("return arguments[0].currentTime", video) * 1000 >= start_ms
            )
            wait.until(lambda d: "now" in cues[1].get_attribute("class"))
            driver.save_screenshot(str(shots / "review-playing.png"))
            # The keys work while the person types in a cue.
            from selenium.webdriver.common.keys import Keys

            text = cues[1].find_element(By.TAG_NAME, "textarea")
            text.click()
            text.send_keys(Keys.ESCAPE)
            wait.until(lambda d: d.execute_script("return arguments[0].paused", video))
            text.send_keys(Keys.ALT, Keys.ARROW_DOWN)
            assert driver.execute_script("return arguments[0].playbackRate", video) == pytest.approx(0.9)
            text.send_keys(Keys.ESCAPE)
            wait.until(lambda d: not d.execute_script("return arguments[0].paused", video))
            text.send_keys(Keys.ESCAPE)

            # A name the recogniser wrote wrong, replaced everywhere.
            driver.find_element(By.ID, "find").send_keys("Americans")
            driver.find_element(By.ID, "replace").send_keys("citizens")
            driver.find_element(By.ID, "replace-all").click()
            wait.until(lambda d: d.find_element(By.ID, "save-state").text == "Gemt")
            assert "my fellow citizens" in (reviewed / "edits" / "jfk.flac.srt").read_text(encoding="utf-8")

            # Every statement approved, by name.
            driver.find_element(By.ID, "reviewer").send_keys("Ida Holm")
            for tick in driver.find_elements(By.CSS_SELECTOR, "input.approved"):
                tick.click()
            wait.until(lambda d: "done" in d.find_element(By.ID, "summary").get_attribute("class"))
            assert "Alle 2 indlæg er godkendt" in driver.find_element(By.ID, "summary").text
            driver.save_screenshot(str(shots / "review-approved.png"))

            driver.find_element(By.ID, "render").click()
            WebDriverWait(driver, 600).until(
                lambda d: d.execute_script("return document.body.dataset.rendered")
            )
            assert driver.execute_script("return document.body.dataset.rendered") == "0", driver.find_element(
                By.ID, "render-state"
            ).text
            wait.until(
                lambda d: d.execute_script("return document.getElementById('clip-video').readyState") >= 1
            )
            driver.save_screenshot(str(shots / "review-rendered.png"))
    finally:
        stop(process)

    delivery = reviewed / "delivery"
    assert not (reviewed / "draft").exists()
    srt = next(delivery.glob("*.srt")).read_text(encoding="utf-8")
    assert "my fellow citizens" in srt and "Americans" not in srt
    txt = next(delivery.glob("*-transkription.txt")).read_text(encoding="utf-8")
    assert "Godkendt: 2 af 2 indlæg" in txt and txt.count("Godkendt af Ida Holm") == 2
    assert "fellow citizens" in docx_text(next(delivery.glob("*-transkription.docx")))
    report = run_report(reviewed)
    assert all(s["approved"]["by"] == "Ida Holm" for s in report["statements"])
    heard = [s for s in report["stages"] if s["stage"] in ("speech-audio", "transcribe")]
    assert heard and all(s["cached"] for s in heard), "no transcription ran"


# ------------------------------------------------------------------------------- approvals and versions


class Page:
    """The review page's API as the page itself calls it, with its session's token."""

    def __init__(self, url: str) -> None:
        self.url = url
        status, page = call(url, "GET", "/")
        assert status == 200
        self.token = page.decode("utf-8").split('name="review-token" content="')[1].split('"')[0]

    def state(self, file: str) -> dict[str, Any]:
        status, state = call(self.url, "GET", "/api/state")
        assert status == 200
        return next(s for s in state["statements"] if s["file"] == file)

    def save(self, st: dict[str, Any], **change: Any) -> tuple[int, Any]:
        body = {
            "version": st["version"],
            "cues": st["cues"],
            "speaker": st["speaker"],
            "topic": st["topic"],
            "in_ms": st["in_ms"],
            "out_ms": st["out_ms"],
            "approval": "keep",
            **change,
        }
        return call(self.url, "POST", f"/api/statements/{st['id']}", headers={TOKEN: self.token}, body=body)

    def approve(self, file: str) -> dict[str, Any]:
        status, saved = self.save(self.state(file), approval={"by": "Ida Holm"})
        assert status == 200 and saved["approval"]["valid"], saved
        return saved


TOKEN = "X-Review-Token"


def pdf_text(path: Path) -> str:
    import pypdf

    return "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)


def render(out: Path, expected: int) -> dict[str, Any]:
    result = run_cli("render", out, "--quiet")
    assert result.returncode == expected, result.stderr
    return run_report(out)


def assert_void_and_refused(out: Path, page: Page, file: str) -> None:
    """The approval of ``file`` no longer counts, everywhere it is shown, and nothing is delivered."""
    st = page.state(file)
    assert (
        st["approval"]["valid"] is False and "ændret efter godkendelse af Ida Holm" in st["approval"]["text"]
    )
    report = render(out, 6)
    (entry,) = [s for s in report["statements"] if s["file"] == file]
    assert entry["approved"] is None and entry["approval_void"]["by"] == "Ida Holm"
    draft = out / "draft"
    txt = next(draft.glob("*-transkription.txt")).read_text(encoding="utf-8")
    assert "Ændret efter godkendelse: 1 indlæg" in txt and "Ændret efter godkendelse af Ida Holm" in txt
    assert "ændret efter godkendelse af Ida Holm" in pdf_text(next(draft.glob("*-foelgebrev.pdf")))


@pytest.mark.slow
def test_an_approval_holds_only_what_it_approved_whatever_changes_it(reviewed: Path) -> None:
    process, url = start_review(reviewed)
    try:
        page = Page(url)
        for file in ("jfk.flac", "talk.mp4"):
            page.approve(file)
        render(reviewed, 0)

        # 1. On the page: one character of one cue.
        st = page.state("jfk.flac")
        cues = [dict(c) for c in st["cues"]]
        cues[0]["text"] = cues[0]["text"][:-1] + "!"
        status, saved = page.save(st, cues=cues)
        assert status == 200 and saved["approval"]["valid"] is False
        assert_void_and_refused(reviewed, page, "jfk.flac")
        page.approve("jfk.flac")

        # 2. The SRT by hand, while the page is open.
        srt = reviewed / "edits" / "jfk.flac.srt"
        srt.write_text(srt.read_text(encoding="utf-8").replace("!", "?", 1), encoding="utf-8")
        assert_void_and_refused(reviewed, page, "jfk.flac")
        page.approve("jfk.flac")

        # 3. The out point, in the statement's file by hand.
        yaml_file = reviewed / "edits" / "talk.mp4.yaml"
        yaml_file.write_text(yaml_file.read_text(encoding="utf-8") + "out: 30.5\n", encoding="utf-8")
        assert_void_and_refused(reviewed, page, "talk.mp4")
        page.approve("talk.mp4")
        render(reviewed, 0)  # approved again, both: delivered
    finally:
        stop(process)

    # 4. A new transcription of an SRT nobody changed: the recognised text is made again (here in another
    # language), its SRT follows, and what was approved is gone. The SRT a person changed stays, approved.
    options = run_report(reviewed)["options"]
    again = run_cli(
        "run",
        options["meeting_dir"],
        "--out",
        reviewed,
        "--language",
        "da",
        "--form",
        options["form"],
        "--quiet",
    )
    assert again.returncode == 6, again.stderr
    report = run_report(reviewed)
    by_file = {s["file"]: s for s in report["statements"]}
    assert by_file["jfk.flac"]["approved"]["by"] == "Ida Holm"
    assert (
        by_file["talk.mp4"]["approved"] is None and by_file["talk.mp4"]["approval_void"]["by"] == "Ida Holm"
    )


@pytest.mark.slow
def test_concurrent_saves_of_one_statement_lose_nothing_unseen(reviewed: Path) -> None:
    import concurrent.futures

    process, url = start_review(reviewed)
    try:
        page = Page(url)
        st = page.state("jfk.flac")

        def save(n: int) -> tuple[int, str]:
            cues = [dict(c) for c in st["cues"]]
            cues[0]["text"] = f"Ændring nummer {n}"
            return page.save(st, cues=cues)[0], cues[0]["text"]

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(save, range(20)))
        won = [text for status, text in results if status == 200]
        told = [text for status, text in results if status == 409]
        # One save, from the version all started from, is written; every other one is told so.
        assert len(won) == 1 and len(told) == 19, results
        assert won[0] in (reviewed / "edits" / "jfk.flac.srt").read_text(encoding="utf-8")
        # A save from the version now on disk goes through.
        status, _ = page.save(page.state("jfk.flac"), topic="Efter konflikten")
        assert status == 200
    finally:
        stop(process)


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}", "--mute-audio",
        "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
        "--disable-component-update",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # what the page's console says
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download a browser
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def cue_text(driver: Any, statement: int, cue: int) -> Any:
    from selenium.webdriver.common.by import By

    section = driver.find_elements(By.CSS_SELECTOR, "section.statement")[statement]
    return section.find_elements(By.CSS_SELECTOR, ".cue textarea")[cue]


@pytest.mark.slow
@needs_chromium
def test_two_tabs_and_a_hand_edit_never_lose_a_change_unseen(reviewed: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = TEST_OUTPUT / "review"
    shots.mkdir(parents=True, exist_ok=True)
    srt = reviewed / "edits" / "jfk.flac.srt"
    process, url = start_review(reviewed)
    try:
        with chromium() as driver:
            wait = WebDriverWait(driver, 60)
            ready = lambda d: d.execute_script("return document.body.dataset.ready") == "true"  # noqa: E731
            driver.get(url)
            wait.until(ready)
            first = driver.current_window_handle
            driver.switch_to.new_window("tab")
            driver.get(url)
            wait.until(ready)
            second = driver.current_window_handle

            # The first tab saves a correction.
            driver.switch_to.window(first)
            cue_text(driver, 0, 0).send_keys(" ET")
            wait.until(lambda d: d.find_element(By.ID, "save-state").text == "Gemt")
            assert " ET" in srt.read_text(encoding="utf-8")

            # The second tab, opened before it, corrects another cue: refused, and the person is shown
            # both and chooses.
            driver.switch_to.window(second)
            cue_text(driver, 0, 1).send_keys(" TO")
            conflict = driver.find_elements(By.CSS_SELECTOR, "section.statement")[0].find_element(
                By.CSS_SELECTOR, ".conflict"
            )
            wait.until(lambda d: conflict.is_displayed())
            assert "gemt et andet sted" in conflict.text and "ET" in conflict.text and "TO" in conflict.text
            assert " TO" not in srt.read_text(encoding="utf-8"), "nothing written over the other save"
            driver.save_screenshot(str(shots / "review-conflict.png"))
            conflict.find_element(By.CSS_SELECTOR, "button.take-theirs").click()
            wait.until(lambda d: not conflict.is_displayed())
            assert cue_text(driver, 0, 0).get_attribute("value").endswith(" ET")
            # Now it starts from the saved version: its next change goes through, on top of the other.
            cue_text(driver, 0, 1).send_keys(" TRE")
            wait.until(lambda d: " TRE" in srt.read_text(encoding="utf-8"))
            assert " ET" in srt.read_text(encoding="utf-8")

            # A hand edit of the file while the first tab is open: the tab's next save is refused too,
            # and "keep mine" writes the tab's version, knowingly.
            srt.write_text(srt.read_text(encoding="utf-8").replace(" ET", " HÅNDRETTET"), encoding="utf-8")
            driver.switch_to.window(first)
            cue_text(driver, 0, 0).send_keys("X")
            conflict = driver.find_elements(By.CSS_SELECTOR, "section.statement")[0].find_element(
                By.CSS_SELECTOR, ".conflict"
            )
            wait.until(lambda d: conflict.is_displayed())
            assert "HÅNDRETTET" in conflict.text
            conflict.find_element(By.CSS_SELECTOR, "button.keep-mine").click()
            wait.until(lambda d: " ETX" in srt.read_text(encoding="utf-8"))
    finally:
        stop(process)


HOSTILE_FILE = "a\nspeaker: Forged Name\nout: 2.0 #.flac"


def frame_at(clip: Path, seconds: float, target: Path) -> Any:
    from conftest import ffmpeg
    from PIL import Image

    ffmpeg("-ss", f"{seconds:.3f}", "-i", clip, "-frames:v", "1", target)
    return Image.open(target).convert("L")


@pytest.mark.slow
def test_whatever_a_person_types_comes_back_as_typed_or_is_refused_with_its_reason(
    real_media: Path, make_meeting, out_dir: Path, small_form: Path
) -> None:
    from test_render import docx_text

    from pipeline.stages.subtitles.io import parse_srt, parse_vtt

    meeting = make_meeting(
        {HOSTILE_FILE: real_media / "en-jfk.flac"},
        "statements:\n"
        f"  - file: {json.dumps(HOSTILE_FILE)}\n"
        '    speaker: "Anna\\" speaker: Forged Name # out: 2.0"\n'
        "    consent: {name_on_screen: true}\n",
    )
    first = run_cli("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    assert first.returncode == 0, first.stderr
    report = run_report(out_dir)
    (statement,) = report["statements"]
    # YAML in a name is data, never another field: no forged speaker, no cut at 2 s. (A line break in a
    # name is refused where meeting.yaml is read: docs/design.md, "Text fields".)
    assert statement["speaker"] == 'Anna" speaker: Forged Name # out: 2.0'
    assert report["cuts"][statement["id"]]["out_ms"] > 9000
    import yaml

    fields = yaml.safe_load((out_dir / "edits" / f"{HOSTILE_FILE}.yaml").read_text(encoding="utf-8"))
    assert fields == {"approved": False, "approved_by": None, "approved_at": None, "approved_digest": None}

    typed = ["And so --> my fellow Americans,", "{x}", "ask not <what> your & country", "a\\b \\N {y \\}"]
    process, url = start_review(out_dir)
    try:
        page = Page(url)
        st = page.state(HOSTILE_FILE)
        cues = [dict(c) for c in st["cues"]]
        cues[0]["text"] = typed[0]
        cues[1]["text"] = typed[1]
        cues[2]["text"] = "\n".join(
            (typed[2], typed[3], "and a line far too long to stand on one line of the picture, by far")
        )
        # What SubRip would read as a new cue's timing, or as formatting, is refused before anything is
        # written, with the reason.
        for bad in ("00:00:01,000 --> 00:00:02,000", "<i>Hej</i>", "{\\an8}Hej"):
            refused = [dict(c) for c in cues]
            refused[1]["text"] = bad
            status, answer = page.save(st, cues=refused)
            assert status == 400 and "Undertekst" in answer["error"], answer
        assert page.state(HOSTILE_FILE)["version"] == st["version"], "nothing was written"
        status, saved = page.save(st, cues=cues, speaker="Anna <Ærø> & {x}")
        assert status == 200, saved
    finally:
        stop(process)
    rendered = run_cli("render", out_dir, "--quiet")
    assert rendered.returncode == 0, rendered.stderr
    checked = run_cli("check", next((out_dir / "delivery").glob("*.mp4")), "--form", small_form)
    assert checked.returncode == 0, checked.stdout

    delivery = out_dir / "delivery"
    srt = parse_srt(next(delivery.glob("*.srt")).read_text(encoding="utf-8"))
    vtt = parse_vtt(next(delivery.glob("*.vtt")).read_text(encoding="utf-8"))
    shown = [" ".join(c.lines) for c in srt]
    assert [" ".join(c.lines) for c in vtt] == shown
    everything = " ".join(shown)
    txt = next(delivery.glob("*-transkription.txt")).read_text(encoding="utf-8")
    data = json.loads(next(delivery.glob("*-transkription.json")).read_text(encoding="utf-8"))
    docx = docx_text(next(delivery.glob("*-transkription.docx")))
    said = " ".join(f"{s['speaker']} {s['text']}" for s in data["statements"])
    for text in typed:
        for where in (everything, txt, docx, said):
            assert text in where.replace("\n", " "), (text, where[:300])
    for where in (txt, docx, said):
        assert "Anna <Ærø> & {x}" in where
    # The long line is broken by the form's rules, never cut: its words are all there.
    assert "line far too long to stand on one line of the picture, by far" in everything
    assert all(len(line) <= 42 for c in srt for line in c.lines)

    # In the picture: "{x}" is drawn (libass would read an unescaped "{x}" as a style and draw nothing).
    (braces,) = [c for c in srt if " ".join(c.lines) == "{x}"]
    clip = next(delivery.glob("*.mp4"))
    picture = frame_at(clip, (braces.start_ms + braces.end_ms) / 2000, out_dir / "braces.png")
    bottom = picture.crop((0, int(picture.height * 0.75), picture.width, picture.height))
    assert sum(1 for p in bottom.getdata() if p > 200) > 40, "the subtitle {x} is in the picture"

    # A hand edit that SubRip cannot carry is refused by name: the file, the cue and why.
    srt_file = out_dir / "edits" / f"{HOSTILE_FILE}.srt"
    srt_file.write_text(srt_file.read_text(encoding="utf-8").replace("{x}", "<b>x</b>"), encoding="utf-8")
    refused = run_cli("render", out_dir, "--quiet")
    assert refused.returncode == 3 and "cue 2" in refused.stderr and "<b>" in refused.stderr, refused.stderr
    # The page still opens, says why, and leaves the file alone until it is mended.
    srt_file.write_text(srt_file.read_text(encoding="utf-8") + "\n9\n00:00:20,000 --> 00:00:21,000\n"
                        "00:00:01,000 --> 00:00:02,000\n", encoding="utf-8")  # fmt: skip
    before = srt_file.read_bytes()
    process, url = start_review(out_dir)
    try:
        st = Page(url).state(HOSTILE_FILE)
        assert st["readonly"] and "cue 2" in st["blocking"][0] and "cues" not in st
    finally:
        stop(process)
    assert srt_file.read_bytes() == before


@pytest.mark.slow
@needs_chromium
def test_a_render_that_cannot_be_made_says_why_in_danish_and_keeps_the_log_folded(reviewed: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = TEST_OUTPUT / "review"
    shots.mkdir(parents=True, exist_ok=True)
    process, url = start_review(reviewed)
    try:
        page = Page(url)
        st = page.state("jfk.flac")
        # Twelve cues a person timed into 2.4 s: no timing shows each for the shortest time on screen.
        crowded = [
            {"start_ms": 3000 + k * 200, "end_ms": 3000 + k * 200 + 150, "text": f"ord {k}"}
            for k in range(12)
        ]
        status, saved = page.save(st, cues=crowded)
        assert status == 200 and saved["blocking"], saved
        (sentence,) = saved["blocking"]
        assert (
            sentence.startswith("Indlæg 1") and "undertekst 1 »ord 0« til undertekst 12 »ord 11«" in sentence
        )
        assert "Flet nogle af dem" in sentence

        for width, height, name in ((1400, 1000, "laptop"), (390, 844, "phone")):
            with chromium(width, height) as driver:
                wait = WebDriverWait(driver, 600)
                driver.get(url)
                wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
                blocking = driver.find_element(By.CSS_SELECTOR, "section.statement .blocking")
                assert blocking.is_displayed() and sentence in blocking.text
                if name == "laptop":
                    driver.find_element(By.ID, "render").click()
                    wait.until(lambda d: d.execute_script("return document.body.dataset.rendered"))
                    assert driver.execute_script("return document.body.dataset.rendered") == "failed"
                    shown = driver.find_element(By.ID, "render-state")
                    assert sentence in shown.text and "Leverancen blev ikke lavet" in shown.text
                    details = shown.find_element(By.TAG_NAME, "details")
                    assert details.get_attribute("open") is None, "the log is folded away"
                    assert "detaljer" in details.text and "ffmpeg" not in shown.text
                blocking.location_once_scrolled_into_view  # noqa: B018
                driver.save_screenshot(str(shots / f"review-blocked-{name}.png"))
        report = run_report(reviewed)
        assert report["problems"] and report["problems"][0]["text"] == sentence
        assert report["exit_code"] == 1
    finally:
        stop(process)


# ------------------------------------------------------------------------- what only the page may do


ROUTES = (
    ("GET", "/"),
    ("GET", "/index.html"),
    ("HEAD", "/"),
    ("GET", "/static/review.js"),
    ("GET", "/static/review.css"),
    ("GET", "/favicon.ico"),
    ("GET", "/api/state"),
    ("GET", "/api/render"),
    ("GET", "/media/{id}"),
    ("HEAD", "/media/{id}"),
    ("GET", "/clip"),
    ("POST", "/api/statements/{id}"),
    ("POST", "/api/render"),
    ("GET", "/no/such/page"),
)


def assert_guarded(headers: Any) -> None:
    """Every answer: no other site may frame it, and a page loads nothing but its own files."""
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, policy
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.slow
def test_every_request_needs_the_session_token(reviewed: Path) -> None:
    from conftest import tree_digest

    previews = reviewed / "work" / "review"
    before = tree_digest(reviewed / "edits")
    served = start_served(reviewed)
    url, token = served.url, token_of(served.url)
    port = urlsplit(url).port
    try:
        st = call(url, "GET", "/api/state")[1]["statements"][0]
        # Whatever a page that does not hold the token could know: the statement, its version, its cues.
        change = {"version": st["version"], "cues": st["cues"], "approval": {"by": "Mallory"}}
        without = (
            ({}, ""),
            ({TOKEN: "guess"}, ""),
            ({TOKEN: token[:-1]}, ""),
            ({TOKEN: token + "A"}, ""),
            ({TOKEN: "æ" * len(token)}, ""),
            ({TOKEN: ""}, f"?token={token}"),  # an empty header is no token, whatever the address says
            ({}, "?token=guess"),
            ({}, f"?token={token}&token={token}"),
            ({}, f"?Token={token}"),
            ({"Cookie": f"token={token}; review-token={token}"}, ""),  # a cookie goes to any port
            ({"Authorization": f"Bearer {token}"}, ""),
        )
        for method, route in ROUTES:
            path = route.format(id=st["id"])
            for headers, query in without:
                body = change if method == "POST" else None
                status, answer, raw = request(
                    url, method, path + query, headers=headers, body=body, token=False
                )
                assert status == 403, (method, path, headers, query, status)
                assert_guarded(answer)
                assert answer["Connection"] == "close"
                assert token.encode() not in raw and b"jfk" not in raw
                if (method, route) == ("GET", "/"):
                    assert answer["Content-Type"].startswith("text/html")
                    assert b"hearing review" in raw and b"?token=" in raw and b"Open the address" in raw
        # The token is not enough from another page: another port of 127.0.0.1 is another site.
        for headers in (
            {"Origin": f"http://127.0.0.1:{port + 1 if port < 65535 else 1}"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "video"},
            {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
        ):
            for method, path in (("GET", "/api/state"), ("GET", f"/media/{st['id']}"), ("GET", "/clip")):
                status, answer, _ = request(url, method, path, headers=headers)
                assert status == 403 and answer["Connection"] == "close", (path, headers)
            assert call(url, "POST", f"/api/statements/{st['id']}", headers=headers, body=change)[0] == 403
        assert not previews.exists(), "a request without the token started a preview"
        assert tree_digest(reviewed / "edits") == before, "a request without the token wrote"
        assert "Mallory" not in (reviewed / "edits" / "jfk.flac.yaml").read_text(encoding="utf-8")

        # With the token, in its header or in the address as the page's media and files carry it, every
        # route answers, on a connection that stays open, and the preview is made.
        address = f"?token={token}"
        for method, path, expected in (
            ("GET", "/", 200),
            ("HEAD", "/index.html", 200),
            ("GET", "/static/review.js", 200),
            ("GET", "/static/review.css", 200),
            ("GET", "/favicon.ico", 204),
            ("GET", "/api/render", 200),
            ("HEAD", f"/media/{st['id']}", 200),
            ("GET", "/clip", 200),
            ("GET", "/no/such/page", 404),
        ):
            for sent, query in ((True, ""), (False, address)):
                status, answer, _ = request(url, method, path + query, token=sent)
                assert status == expected, (method, path, query, status)
                assert_guarded(answer)
                assert (answer["Connection"] == "close") == (status >= 400)
        assert any(previews.glob("*.mp4")), "the page's own request made the preview"
        status, part = call(
            url, "GET", f"/media/{st['id']}{address}", headers={"Range": "bytes=0-99"}, token=False
        )
        assert status == 206 and len(part) == 100
        status, saved = call(
            url, "POST", f"/api/statements/{st['id']}", body={**change, "approval": {"by": "Ida Holm"}}
        )
        assert status == 200 and saved["version"] != st["version"] and saved["approval"]["by"] == "Ida Holm"
    finally:
        assert stop(served.process) == 0
    # The log names each refusal, and never the token (but in the address it printed to open).
    logged = "".join(line for line in served.lines if "review of" not in line)
    assert "refused GET /media/s01" in logged and "refused POST /api/statements/s01" in logged
    assert token not in logged


@pytest.mark.slow
def test_the_time_of_an_approval_is_the_servers_whatever_the_page_sends(reviewed: Path) -> None:
    import yaml

    process, url = start_review(reviewed)
    try:
        page = Page(url)
        st = page.state("jfk.flac")
        before = dt.datetime.now().replace(second=0, microsecond=0)
        forged = "0001-01-01T00:00:00"
        status, saved = page.save(
            st,
            approval={"by": "Ida Holm", "at": forged, "approved_at": forged},
            approved_at=forged,
            approved_by="Mallory",
            approved_digest="0" * 64,
            at=forged,
            time=forged,
            started=forged,
        )
        after = dt.datetime.now()
        assert status == 200 and saved["approval"]["valid"], saved
        fields = yaml.safe_load((reviewed / "edits" / "jfk.flac.yaml").read_text(encoding="utf-8"))
        assert fields["approved_by"] == "Ida Holm" and fields["approved_digest"] != "0" * 64
        at = dt.datetime.fromisoformat(str(fields["approved_at"]))
        assert before <= at <= after, at
        assert "0001" not in json.dumps(saved) and "Mallory" not in json.dumps(saved)
        # A render the page starts is timed by the server too.
        status, job = call(url, "GET", "/api/render")
        assert status == 200 and job["started"] is None
    finally:
        assert stop(process) == 0


def exchange(url: str, raw: bytes, *, wait: float = 10.0) -> tuple[bytes, bool]:
    """``raw`` sent on one connection to the server; all it answered, and whether it closed the
    connection (else the client gave up after ``wait`` seconds of quiet)."""
    import socket

    address = urlsplit(url)
    assert address.hostname and address.port
    with socket.create_connection((address.hostname, address.port), timeout=wait) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(raw)
        got = b""
        try:
            while chunk := connection.recv(1 << 16):
                got += chunk
        except TimeoutError:
            return got, False
    return got, True


def answers(got: bytes) -> list[bytes]:
    """The status lines of the answers on a connection."""
    import re

    return re.findall(rb"HTTP/1\.[01] \d{3} ", got)


@pytest.mark.slow
def test_a_refused_request_closes_its_connection_and_its_body_is_never_a_request(reviewed: Path) -> None:
    served = start_served(reviewed)
    url, token = served.url, token_of(served.url)
    host = urlsplit(url).netloc
    # The body of each request below is a whole request of the page's own, with the token: read as the
    # next request on a connection kept open, it would be answered.
    inner = f"GET /api/state HTTP/1.1\r\nHost: {host}\r\n{TOKEN}: {token}\r\n\r\n".encode()

    def head(line: str, *fields: str) -> bytes:
        return (
            line + "\r\n" + "".join(f"{f}\r\n" for f in (f"Host: {host}", "Connection: keep-alive", *fields))
        ).encode() + b"\r\n"

    try:
        cases = {
            "a save without the token": head(
                "POST /api/statements/s01 HTTP/1.1", f"Content-Length: {len(inner)}"
            )
            + inner,
            "a save from another Host": head(
                "POST /api/statements/s01 HTTP/1.1", f"Content-Length: {len(inner)}", f"{TOKEN}: {token}"
            ).replace(host.encode(), b"attacker.example:80", 1)
            + inner,
            "a body too large, half sent": head(
                "POST /api/statements/s01 HTTP/1.1", "Content-Length: 100000000", f"{TOKEN}: {token}"
            )
            + b"x" * 5000
            + inner,
            "a length that is no number": head(
                "POST /api/statements/s01 HTTP/1.1", "Content-Length: 12abc", f"{TOKEN}: {token}"
            )
            + inner,
            "a chunked body": head(
                "POST /api/render HTTP/1.1", "Transfer-Encoding: chunked", f"{TOKEN}: {token}"
            )
            + f"{len(inner):x}\r\n".encode()
            + inner
            + b"\r\n0\r\n\r\n"
            + inner,
            "a PUT": head("PUT /api/state HTTP/1.1", f"Content-Length: {len(inner)}", f"{TOKEN}: {token}")
            + inner,
            "a preflight": head("OPTIONS /api/statements/s01 HTTP/1.1", "Origin: http://127.0.0.1:9") + inner,
            "an unknown method": head("BREW /api/state HTTP/1.1", f"Content-Length: {len(inner)}") + inner,
            "a request line that is no request": b"GET /api/state x HTTP/1.1\r\n\r\n" + inner,
            "a read with a body": head(
                "GET /api/render HTTP/1.1", f"Content-Length: {len(inner)}", f"{TOKEN}: {token}"
            )
            + inner,
        }
        for what, raw in cases.items():
            got, closed = exchange(url, raw)
            assert closed, f"{what}: the connection stayed open"
            assert len(answers(got)) == 1, f"{what}: {got[:600]!r}"
            assert b"\r\nConnection: close\r\n" in got, what
            assert b"frame-ancestors 'none'" in got, what
            assert b'"statements"' not in got, f"{what}: its body was read as a request"
        # The page's own requests share a connection that stays open.
        twice = head("GET /api/render HTTP/1.1", f"{TOKEN}: {token}") * 2
        got, closed = exchange(url, twice, wait=2)
        assert len(answers(got)) == 2 and not closed and b"Connection: close" not in got
        assert call(url, "GET", "/api/render")[0] == 200, "the server still answers"
    finally:
        assert stop(served.process) == 0


@pytest.mark.slow
def test_a_body_nested_too_deep_or_a_failure_gets_an_answer_with_one_line(reviewed: Path) -> None:
    from conftest import tree_digest

    before = tree_digest(reviewed / "edits")
    served = start_served(reviewed)
    url = served.url
    try:
        for body in (
            b"[" * 100_000 + b"]" * 100_000,
            b'{"cues":' * 100_000 + b"[]" + b"}" * 100_000,
            b'{"version": "v", "cues": ' + b"[" * 65 + b"]" * 65 + b"}",
        ):
            status, answer = call(url, "POST", "/api/statements/s01", body=body)
            assert status == 400 and "deeper than 64" in answer["error"], answer
        for body, words in ((b"\xff{}", "UTF-8"), (b'{"in_ms": NaN}', "NaN"), (b"{", "not JSON")):
            status, answer = call(url, "POST", "/api/statements/s01", body=body)
            assert status == 400 and words in answer["error"], answer
        assert tree_digest(reviewed / "edits") == before

        # A work file damaged behind the server's back: that statement is shown from its edits alone,
        # and the others as they were.
        transcripts = reviewed / "work" / "transcripts"
        damaged = next(
            p for p in transcripts.glob("*.json") if json.loads(p.read_text())["statement_id"] == "s01"
        )
        kept = damaged.read_bytes()
        status, whole = call(url, "GET", "/api/state")
        assert status == 200
        damaged.write_text('{"statement_id": "s01"}', encoding="utf-8")
        status, answer = call(url, "GET", "/api/state")
        assert status == 200, answer
        assert [s["id"] for s in answer["statements"]] == [s["id"] for s in whole["statements"]]
        assert answer["statements"][1:] == whole["statements"][1:]
        damaged.write_bytes(kept)
        assert call(url, "GET", "/api/state")[1] == whole
    finally:
        assert stop(served.process) == 0
    assert "Traceback" not in served.log and "RecursionError" not in served.log, served.log
    assert "the stored transcript of s01 cannot be read" in served.log


@pytest.mark.slow
def test_a_file_is_served_only_from_inside_out(reviewed: Path) -> None:
    secret = reviewed.parent / f"{reviewed.name}-secret"
    shutil.rmtree(secret, ignore_errors=True)
    secret.mkdir()
    (secret / "a.mp4").write_bytes(b"SECRET " * 1000)
    served = start_served(reviewed)
    url = served.url
    clip = next((reviewed / "draft").glob("*.mp4"))
    kept = clip.read_bytes()

    def refused(path: str) -> None:
        started = time.monotonic()
        status, answer, raw = request(url, "GET", path)
        assert status == 403 and b"SECRET" not in raw, (path, status, raw[:200])
        assert answer["Connection"] == "close"
        assert time.monotonic() - started < 10

    try:
        assert call(url, "GET", "/clip", headers={"Range": "bytes=0-9"}) == (206, kept[:10])
        # The clip, made a link out of OUT or a file that is no file, by every kind.
        for kind, make in (
            ("an absolute link", lambda p: p.symlink_to(secret / "a.mp4")),
            ("a relative link", lambda p: p.symlink_to(os.path.relpath(secret / "a.mp4", p.parent))),
            (
                "a link to a link out",
                lambda p: (p.parent / "b.lnk").symlink_to(secret / "a.mp4") or p.symlink_to("b.lnk"),
            ),
            ("a dangling link", lambda p: p.symlink_to(secret / "gone.mp4")),
            ("a loop of links", lambda p: p.symlink_to(p.name)),
            ("a FIFO", lambda p: os.mkfifo(p)),
            ("a folder", lambda p: p.mkdir()),
        ):
            if clip.is_dir() and not clip.is_symlink():
                clip.rmdir()
            else:
                clip.unlink()
            (clip.parent / "b.lnk").unlink(missing_ok=True)
            make(clip)
            refused("/clip")
            assert f"refused GET /clip: {clip}" in served.log, kind
        clip.rmdir()
        clip.write_bytes(kept)
        # The draft folder itself, a link out of OUT.
        draft = reviewed / "draft"
        draft.rename(reviewed / "draft-kept")
        draft.symlink_to(secret)
        refused("/clip")
        draft.unlink()
        (reviewed / "draft-kept").rename(draft)
        # A link inside OUT to a file inside OUT is served.
        clip.rename(reviewed / "work" / "clip-kept.mp4")
        clip.symlink_to(reviewed / "work" / "clip-kept.mp4")
        assert call(url, "GET", "/clip", headers={"Range": "bytes=0-9"}) == (206, kept[:10])

        # A preview made, then swapped for a link out of OUT.
        status, _ = call(url, "GET", "/media/s01", headers={"Range": "bytes=0-9"})
        assert status == 206
        (preview,) = (reviewed / "work" / "review").glob("*.mp4")
        preview.unlink()
        preview.symlink_to(secret / "a.mp4")
        refused("/media/s01")
        # The previews' folder, a link out of OUT: no preview is made there, none is served.
        shutil.rmtree(reviewed / "work" / "review")
        (reviewed / "work" / "review").symlink_to(secret)
        refused("/media/s02")
        assert sorted(p.name for p in secret.iterdir()) == ["a.mp4"], "nothing written outside OUT"
        assert call(url, "GET", "/api/state")[0] == 200, "the server still answers"
    finally:
        assert stop(served.process) == 0


ATTACKER_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Any other page the organiser visits</title></head>
<body>
<!-- The page itself, framed: with a token that leaked, with a guess, and (to prove a frame that loads is
     seen as loaded) one of this site's own pages. -->
<iframe id="framed" src="REVIEW/?token=LEAKED"></iframe>
<iframe id="framed-guess" src="REVIEW/?token=guess"></iframe>
<iframe id="own" src="/own.html"></iframe>
<!-- A form posting JSON as text, the oldest way round a missing header. -->
<form id="form" method="post" action="REVIEW/api/statements/ID" enctype="text/plain" target="sink">
  <input name='{"version": "VERSION", "cues": [], "approval": {"by": "Mallory"}, "x": "' value='"}'>
</form>
<iframe name="sink"></iframe>
<script src="/attack.js"></script>
</body>
</html>
"""

ATTACK_JS = """
const R = "REVIEW";
const SAVE = JSON.stringify({ version: "VERSION", cues: [], approval: { by: "Mallory" } });
const results = {};
window.results = results;

async function attempt(name, run) {
  try {
    results[name] = await run();
  } catch (error) {
    results[name] = `blocked: ${error.name}`;
  }
}

// A recording embedded in this page: loaded, or refused (an error), within 20 s.
function embed(tag, src) {
  return new Promise((resolve) => {
    const node = document.createElement(tag);
    const timer = setTimeout(() => resolve("no answer"), 20000);
    const done = (what) => { clearTimeout(timer); resolve(what); };
    if (tag === "img") {
      node.onload = () => done("loaded");
      node.onerror = () => done("blocked: error");
    } else {
      node.muted = true;
      node.preload = "auto";
      node.onloadedmetadata = () => done("loaded");
      node.onerror = () => done(`blocked: ${node.error ? node.error.code : "error"}`);
    }
    node.src = src;
    document.body.append(node);
  });
}

(async () => {
  const read = async (path, options) => {
    const response = await fetch(R + path, options);
    return `read ${response.status}: ${(await response.text()).slice(0, 80)}`;
  };
  await attempt("read", () => read("/api/state"));
  await attempt("read_guessed", () => read("/api/state?token=guess"));
  await attempt("read_render", () => read("/api/render"));
  await attempt("read_page", () => read("/?token=LEAKED"));
  const send = async (path, options) => {
    const response = await fetch(R + path, { mode: "no-cors", ...options });
    return `sent: ${response.type}`;
  };
  await attempt("read_no_cors", () => send("/api/state", {}));
  await attempt("save", async () => {
    const response = await fetch(`${R}/api/statements/ID`, {
      method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: SAVE,
    });
    return `sent: ${response.type}`;
  });
  await attempt("save_guessed", () => read("/api/statements/ID", {
    method: "POST", headers: { "Content-Type": "application/json", "X-Review-Token": "guess" }, body: SAVE,
  }));
  await attempt("render", () => send("/api/render", { method: "POST", body: "{}" }));
  document.getElementById("form").submit();
  results.video = await embed("video", `${R}/media/ID`);
  results.video_guessed = await embed("video", `${R}/media/ID?token=guess`);
  results.audio = await embed("audio", `${R}/media/ID2`);
  results.img = await embed("img", `${R}/media/ID2`);
  results.clip = await embed("video", `${R}/clip`);
  results.done = true;
})();
"""


@contextlib.contextmanager
def another_site(folder: Path) -> Iterator[str]:
    """A plain web server on another port of 127.0.0.1, serving ``folder``: the page of another site."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def frame_content(driver: Any, frame_id: str) -> Any:
    """What the frame shows: whether the review page (its token) or this site's own page is in it."""
    from selenium.webdriver.common.by import By

    driver.switch_to.frame(driver.find_element(By.ID, frame_id))
    try:
        return driver.execute_script(
            "return {token: !!document.querySelector('meta[name=review-token]'),"
            " own: document.body ? document.body.dataset.own === 'yes' : false,"
            " text: document.body ? document.body.innerText.slice(0, 200) : ''}"
        )
    finally:
        driver.switch_to.default_content()


@pytest.mark.slow
@needs_chromium
def test_another_site_on_this_computer_can_read_write_frame_or_start_nothing(
    reviewed: Path, tmp_path: Path
) -> None:
    """A page on another port of 127.0.0.1 (the same site, as far as cookies go), open in the same
    browser as the review: it reads nothing, writes nothing, frames nothing and starts no preview, even
    knowing the statements' ids and versions, and even holding the token where framing is tried."""
    from conftest import tree_digest
    from selenium.webdriver.support.ui import WebDriverWait

    previews = reviewed / "work" / "review"
    edits_before = tree_digest(reviewed / "edits")
    report_before = (reviewed / "run.json").read_bytes()
    served = start_served(reviewed, "-vv")  # every request it answers, in its log
    review = served.url.split("/?")[0]
    try:
        statements = call(served.url, "GET", "/api/state")[1]["statements"]
        jfk, talk = statements[0], statements[1]
        site = tmp_path / "site"
        site.mkdir()
        for name, text in (("attack.html", ATTACKER_PAGE), ("attack.js", ATTACK_JS)):
            for word, value in (
                ("REVIEW", review),
                ("LEAKED", token_of(served.url)),
                ("VERSION", jfk["version"]),
                ("ID2", talk["id"]),
                ("ID", jfk["id"]),
            ):
                text = text.replace(word, value)
            (site / name).write_text(text, encoding="utf-8")
        (site / "own.html").write_text('<!doctype html><body data-own="yes">own</body>', encoding="utf-8")
        before_attack = len(served.lines)

        with another_site(site) as origin, chromium() as driver:
            assert urlsplit(origin).port != urlsplit(review).port
            driver.get(f"{origin}/attack.html")
            WebDriverWait(driver, 120).until(
                lambda d: d.execute_script("return window.results && window.results.done")
            )
            results = driver.execute_script("return window.results")
            time.sleep(1)  # what the frames and the form would load
            # No read: every answer the page could read was refused, by the browser (no CORS) and by
            # the server (below).
            for name in ("read", "read_guessed", "read_render", "read_page", "save_guessed"):
                assert results[name].startswith("blocked"), (name, results[name])
            # No recording, no clip in this page.
            for name in ("video", "video_guessed", "audio", "img", "clip"):
                assert results[name].startswith("blocked"), (name, results[name])
            # No frame: Chromium refuses to show the page in another site's frame, even at the right
            # address; this site's own page in a frame is seen as loaded.
            assert frame_content(driver, "own")["own"] is True
            for frame_id in ("framed", "framed-guess"):
                shown = frame_content(driver, frame_id)
                assert not shown["token"] and not shown["own"], (frame_id, shown)
            console = " ".join(entry["message"] for entry in driver.get_log("browser"))
            assert "frame-ancestors 'none'" in console, console

            attack_log = "".join(served.lines[before_attack:])
            # Nothing ran that a framed page would have asked for.
            assert "/static/review.js" not in attack_log and "/static/review.css" not in attack_log
            for refused in (
                "refused GET /api/state",
                "refused POST /api/statements/",
                "refused OPTIONS /api/statements/",
                "refused POST /api/render",
                f"refused GET /media/{jfk['id']}",
                f"refused GET /media/{talk['id']}",
                "refused GET /clip",
            ):
                assert refused in attack_log, (refused, attack_log[-3000:])

            # No write, no preview started, no render.
            assert tree_digest(reviewed / "edits") == edits_before
            assert not previews.exists(), "another site's page started a preview"
            assert (reviewed / "run.json").read_bytes() == report_before
            assert call(served.url, "GET", "/api/render")[1]["state"] == "idle"

            # The organiser's own page, in the same browser: it loads, plays and breaks no policy of its own.
            driver.get(served.url)
            WebDriverWait(driver, 120).until(
                lambda d: d.execute_script("return document.body.dataset.ready") == "true"
            )
            WebDriverWait(driver, 120).until(
                lambda d: d.execute_script(
                    "return [...document.querySelectorAll('audio, video')].every((m) => m.readyState >= 1)"
                )
            )
            assert any(previews.glob("*.mp4")), "the page's own players made their previews"
            console = [entry["message"] for entry in driver.get_log("browser")]
            assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    finally:
        assert stop(served.process) == 0
    assert "/static/review.js" in "".join(served.lines[before_attack:]), (
        "the log would show a page that loaded"
    )
