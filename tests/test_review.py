"""`hearing review`: the page in a real headless browser (Debian's chromium, driven by Selenium) on a
real-speech run, and the guards of a server that can write files."""

from __future__ import annotations

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

from pipeline.review import BadChange, allowed_hosts, parse_change

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
NOW = dt.datetime(2026, 12, 1, 15, 30, 12)


# ------------------------------------------------------------------------------------- pure core


def test_a_change_is_read_into_cues_and_fields() -> None:
    cues, fields = parse_change(
        {
            "cues": [
                {"start_ms": 2000, "end_ms": 3000, "text": "Anden  linje"},
                {"start_ms": 0, "end_ms": 1500, "text": "Første\nlinje"},
                {"start_ms": 1600, "end_ms": 1900, "text": "   "},
            ],
            "speaker": "  Søren Ærø ",
            "topic": None,
            "in_ms": 1200,
            "out_ms": None,
            "approved": True,
            "approved_by": "Ida Holm",
        },
        10_000,
        now=NOW,
    )
    assert [(c.start_ms, c.lines) for c in cues] == [(0, ("Første", "linje")), (2000, ("Anden linje",))]
    assert fields.speaker == "Søren Ærø" and fields.topic is None and fields.in_ == 1.2
    assert fields.approved and fields.approved_by == "Ida Holm"
    assert fields.approved_at == dt.datetime(2026, 12, 1, 15, 30)


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
        ({"cues": [], "approved": True}, "approved_by"),
        ({"cues": [], "speaker": "x" * 201}, "speaker"),
    ],
)
def test_a_change_that_cannot_be_saved_says_why(change: Any, words: str) -> None:
    with pytest.raises(BadChange, match=words):
        parse_change(change, 10_000, now=NOW)


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


@pytest.fixture
def reviewed(shared_media: Path, make_meeting, out_dir: Path, small_form: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """A real-speech run whose form asks for every statement to be approved: a draft to review."""
    meeting = make_meeting(
        {"jfk.flac": shared_media / "en-jfk.flac", "talk.mp4": shared_media / "en-talking-head.mp4"}
    )
    form = small_form.with_name("godkendes.yaml")
    form.write_text(small_form.read_text(encoding="utf-8") + "require_approval: true\n", encoding="utf-8")
    first = run_cli("run", meeting, "--out", out_dir, "--form", form, "--language", "en", "--quiet")
    assert first.returncode == 6, first.stderr
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
        change = {"cues": jfk["cues"], "approved": False}
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
        status, saved = call(url, "POST", f"/api/statements/{jfk['id']}", headers=own, body=change)
        assert status == 200 and saved["cues"] == jfk["cues"]
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
@pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"
)
def test_a_person_reads_corrects_approves_and_renders_in_the_browser(reviewed: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = TEST_OUTPUT / "review"
    shots.mkdir(parents=True, exist_ok=True)
    process, url = start_review(reviewed)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                     "--mute-audio", "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(argument)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download a browser
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    wait = WebDriverWait(driver, 120)
    try:
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
        wait.until(lambda d: d.execute_script("return arguments[0].currentTime", video) * 1000 >= start_ms)
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
        WebDriverWait(driver, 600).until(lambda d: d.execute_script("return document.body.dataset.rendered"))
        assert driver.execute_script("return document.body.dataset.rendered") == "0", driver.find_element(
            By.ID, "render-state"
        ).text
        wait.until(lambda d: d.execute_script("return document.getElementById('clip-video').readyState") >= 1)
        driver.save_screenshot(str(shots / "review-rendered.png"))
    finally:
        driver.quit()
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
