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

import pytest
from conftest import REPO, TEST_OUTPUT, run_cli
from test_laptop import run_report
from test_render import docx_text

from pipeline.config import StatementEdit
from pipeline.review import BadChange, allowed_hosts, fields_after, parse_change

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
    if isinstance(change, dict) and words != "JSON object":
        del change["version"]
        with pytest.raises(BadChange):
            parse_change(change, 10_000)


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


# ------------------------------------------------------------------------------------- the server


def start_review(out_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """`hearing review OUT_DIR --no-browser` in its own process; its address, once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "review", str(out_dir), "--no-browser", *extra],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            raise AssertionError(f"hearing review stopped with {process.returncode}")
        if "http://" in line:
            return process, line[line.index("http://") :].split()[0]
    process.kill()
    raise AssertionError("hearing review did not print its address")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def call(
    url: str, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    address = url.removeprefix("http://").rstrip("/")
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    data = None if body is None else json.dumps(body).encode("utf-8")
    connection.request(method, path, body=data, headers={"Host": address, **(headers or {})})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw


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
def test_the_server_refuses_what_is_not_its_own_page(reviewed: Path) -> None:
    process, url = start_review(reviewed)
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0100007F"}, "listens on 127.0.0.1 only"
        status, page = call(url, "GET", "/")
        assert status == 200
        token = page.decode("utf-8").split('name="review-token" content="')[1].split('"')[0]
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
        assert call(url, "POST", f"/api/statements/{jfk['id']}", body=change)[0] == 403
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

        # A second review of the same folder joins the first.
        second = run_cli("review", reviewed, "--no-browser")
        assert second.returncode == 0 and url in second.stderr and "already open" in second.stderr
    finally:
        assert stop(process) == 0, "Ctrl-C stops it cleanly"
    assert not listening_addresses(port)


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

    from pipeline.stages import subtitles

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
    srt = subtitles.parse_srt(next(delivery.glob("*.srt")).read_text(encoding="utf-8"))
    vtt = subtitles.parse_vtt(next(delivery.glob("*.vtt")).read_text(encoding="utf-8"))
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
