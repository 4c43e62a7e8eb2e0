"""`hearing start`: meeting.yaml written from the page's fields (every value as typed or refused by field
in Danish, a hand-written file never lost), and the whole path in a real headless browser: from a folder
of recordings with no meeting.yaml to a delivery `hearing check` passes, the same again from the
written meeting.yaml with `hearing run`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import REPO, SMALL_FORM, TEST_OUTPUT, run_cli, run_here
from test_review import chromium, needs_chromium, request, stop
from test_review_page import axe_violations

from pipeline.config import load_meeting
from pipeline.report import RunOptions
from pipeline.start.fields import BadPage
from pipeline.start.session import Refused, Start

SIZES = ((1366, 768), (390, 844))


def meeting_folder(root: Path, media: Path, *, video: bool = True) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    meeting = root / "moede"
    meeting.mkdir(parents=True)
    shutil.copyfile(media / "da-nst-u0042008.wav", meeting / "anna.wav")
    shutil.copyfile(media / "da-nst-u0042009.wav", meeting / "bo.wav")
    if video:
        shutil.copyfile(media / "en-talking-head.mp4", meeting / "cecilie.mp4")
    return meeting


def blank(state: dict[str, Any]) -> dict[str, Any]:
    """The page's values as it sends them when nothing was typed."""
    return {"version": state["version"], "values": json.loads(json.dumps(state["values"]))}


# ----------------------------------------------------------------------------- meeting.yaml, no page


@pytest.fixture
def prepared(real_media: Path, tmp_path: Path) -> Start:
    meeting = meeting_folder(tmp_path / "m", real_media, video=False)
    return Start(RunOptions(meeting_dir=meeting, out_dir=tmp_path / "out", model="base"), open_folders=False)


# Text a person may type, by kind: YAML's own syntax, values YAML would read as another type, quotes,
# non-Latin letters, a decomposed letter, emoji, leading and trailing spaces.
AS_TYPED = [
    "Ida: Holm # formand",
    "- a list? no",
    "yes",
    "null",
    "2026-11-24",
    "0x1F",
    "'single' and \"double\" quotes",
    "{not: a mapping}",
    "*alias &anchor !!tag",
    "Søren Ærø Østergård",
    "Zoë Ångström",
    "Åse",  # A + combining ring: kept as Unicode composes it
    "Ελένη Παπαδοπούλου",
    "محمد",
    "🙂 glad",
    "  spaces around  ",
    "%YAML 1.2",
    "---",
]


@pytest.mark.parametrize("typed", AS_TYPED)
def test_whatever_a_person_types_is_read_back_by_the_loader_as_typed(prepared: Start, typed: str) -> None:
    import unicodedata

    state = prepared.state()
    sent = blank(state)
    sent["values"]["meeting"]["title"] = typed
    sent["values"]["statements"][0]["speaker"] = typed
    sent["values"]["follow_up"]["contact"]["name"] = typed
    sent["values"]["follow_up"]["groups"] = [{"name": typed, "meets": typed}]
    answer = prepared.save(sent)
    assert answer["saved"], answer
    meeting, _ = load_meeting(prepared.meeting_dir)
    expected = unicodedata.normalize("NFC", typed).strip()
    assert meeting.title == expected
    assert meeting.statements and meeting.statements[0].speaker == expected
    assert meeting.follow_up and meeting.follow_up.contact and meeting.follow_up.contact.name == expected
    assert meeting.follow_up.groups[0].meets == expected
    # And the page shows it as the value of the field again, not as a placeholder.
    assert prepared.state()["values"]["meeting"]["title"] == expected


REFUSED = [
    ("meeting", "title", "a\u202eb", "usynligt tegn"),  # a bidi control: reads as something else
    ("meeting", "title", "line\nbreak", "usynligt tegn"),
    ("meeting", "place", "x" * 5000, "for lang"),
    ("meeting", "date", "24/11/2026", "år-måned-dag"),
    ("meeting", "committee_meeting", "i morgen", "år-måned-dag"),
    ("statement", "trim_start", "en halv", "sekunder"),
    ("statement", "trim_end", "inf", "sekunder"),
    ("statement", "trim_end", "nan", "sekunder"),
    ("statement", "trim_start", "-3", "sekunder"),
    ("contact", "email", "ikke en adresse", "e-mailadresse"),
    ("contact", "phone", "1", "mindst 3 tegn"),
]


@pytest.mark.parametrize(("where", "name", "typed", "words"), REFUSED)
def test_a_field_that_cannot_be_saved_says_why_in_danish_next_to_it_and_nothing_is_written(
    prepared: Start, where: str, name: str, typed: str, words: str
) -> None:
    state = prepared.state()
    sent = blank(state)
    values = sent["values"]
    if where == "meeting":
        values["meeting"][name] = typed
        key = f"meeting.{name}"
    elif where == "statement":
        values["statements"][0][name] = typed
        key = f"statements.{values['statements'][0]['id']}.{name}"
    else:
        values["follow_up"]["contact"] = {"name": "Ida", name: typed}
        key = f"follow_up.contact.{name}"
    answer = prepared.save(sent)
    assert not answer["saved"]
    assert words in answer["errors"][key], answer["errors"]
    assert not re.search(r"\b(must|field|allowed|characters|got)\b", answer["errors"][key])
    assert not (prepared.meeting_dir / "meeting.yaml").exists()


def test_a_trim_that_ends_before_it_starts_and_a_group_without_a_name_are_refused_at_their_fields(
    prepared: Start,
) -> None:
    sent = blank(prepared.state())
    row = sent["values"]["statements"][1]
    row["trim_start"], row["trim_end"] = "4,5", "2"
    sent["values"]["follow_up"]["groups"] = [{"name": ""}, {"name": "", "coordinator": "Bo"}]
    answer = prepared.save(sent)
    assert answer["errors"] == {
        f"statements.{row['id']}.trim_end": "Slut skal ligge efter start.",
        "follow_up.groups.1.name": "Skal udfyldes, når resten af rækken er udfyldt.",
    }


def test_a_hand_written_meeting_yaml_keeps_what_the_page_does_not_show_and_the_previous_one_is_kept(
    prepared: Start,
) -> None:
    folder = prepared.meeting_dir
    hand = (
        "# mine noter\ntitle: Borgermøde\nlanguage: da\nvocabulary: [Skolevej, Åvej]\n"
        "statements:\n  - file: bo.wav\n    speaker: Bo\n    consent: {name_on_screen: true}\n"
        "follow_up:\n  next_steps: [Udvalget svarer skriftligt.]\n"
    )
    (folder / "meeting.yaml").write_text(hand, encoding="utf-8")
    state = prepared.state()
    values = state["values"]
    assert values["meeting"]["title"] == "Borgermøde"
    # meeting.yaml's order first; a consent not given is the form's default, shown ticked or not.
    assert [r["file"] for r in state["recordings"]] == ["bo.wav", "anna.wav"]
    assert values["statements"][0]["speaker"] == "Bo"
    assert values["statements"][0]["consent"] == {
        "committee": True, "archive": True, "name_on_screen": True, "publish": False,
    }  # fmt: skip
    sent = blank(state)
    sent["values"]["meeting"]["place"] = "Nordby Forsamlingshus"
    assert prepared.save(sent)["saved"]
    meeting, _ = load_meeting(folder)
    assert meeting.place == "Nordby Forsamlingshus" and meeting.title == "Borgermøde"
    assert meeting.language == "da" and meeting.vocabulary == ["Skolevej", "Åvej"]
    assert meeting.follow_up and meeting.follow_up.next_steps == ["Udvalget svarer skriftligt."]
    (previous,) = folder.glob("meeting.yaml.previous-*")
    assert previous.read_text(encoding="utf-8") == hand
    # The page's save over a version it did not start from is refused, and the file stays.
    with pytest.raises(Refused) as refused:
        prepared.save(sent)
    assert refused.value.status == 409 and "Genindlæs siden" in refused.value.message


def test_a_meeting_yaml_the_page_cannot_read_is_never_written_over(prepared: Start) -> None:
    folder = prepared.meeting_dir
    hand = "title: Borgermøde\nspeakers: [Anna]\n"  # a field meeting.yaml does not have
    (folder / "meeting.yaml").write_text(hand, encoding="utf-8")
    state = prepared.state()
    assert state["refused"] and "ret filen i hånden" in state["refused"]
    with pytest.raises(Refused):
        prepared.save(blank(state))
    assert (folder / "meeting.yaml").read_text(encoding="utf-8") == hand
    assert not list(folder.glob("meeting.yaml.previous-*"))


@pytest.mark.parametrize(
    "values",
    [
        None,
        [],
        "text",
    ],
)
def test_a_body_not_in_the_pages_shape_is_refused(prepared: Start, values: Any) -> None:
    with pytest.raises(BadPage):
        prepared.save({"version": None, "values": values})


def test_a_save_from_a_page_that_lists_other_recordings_than_the_folder_says_to_reload(
    prepared: Start,
) -> None:
    sent = blank(prepared.state())
    for statements in ([], sent["values"]["statements"][:1], sent["values"]["statements"] * 2):
        with pytest.raises(Refused) as refused:
            prepared.save({**sent, "values": {**sent["values"], "statements": statements}})
        assert "Genindlæs siden" in refused.value.message
    assert not (prepared.meeting_dir / "meeting.yaml").exists()


def test_a_body_with_a_value_of_another_type_is_refused(prepared: Start) -> None:
    sent = blank(prepared.state())
    sent["values"]["statements"][0]["consent"]["committee"] = "yes"
    with pytest.raises(BadPage):
        prepared.save(sent)
    sent = blank(prepared.state())
    sent["values"]["meeting"]["title"] = ["a"]
    with pytest.raises(BadPage):
        prepared.save(sent)


# ------------------------------------------------------------------------------------ in the browser


class StartPage:
    """`hearing start` in its own process, its address as it printed it."""

    def __init__(self, meeting: Path, out: Path, *options: str | Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "start", str(meeting), "--out", str(out), "--no-browser",
             *map(str, options)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        found = threading.Event()
        address: list[str] = []

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                if not address and "http://" in line:
                    address.append(line[line.index("http://") :].split()[0])
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(120) or not address:
            self.process.kill()
            raise AssertionError(f"hearing start did not print its address: {''.join(self.lines)}")
        self.url = address[0]


@pytest.fixture
def started(real_media: Path) -> Iterator[tuple[StartPage, Path, Path, Path]]:
    root = TEST_OUTPUT / "runs" / "start-browser"
    meeting = meeting_folder(root, real_media)
    form = root / "godkendes.yaml"
    form.write_text(SMALL_FORM + "require_approval: true\n", encoding="utf-8")
    out = root / "out"
    page = StartPage(meeting, out, "--form", form, "--model", "base")
    try:
        yield page, meeting, out, form
    finally:
        code = stop(page.process)  # type: ignore[arg-type]
        assert code == 0, "".join(page.lines)


def shots(driver: Any, name: str, anchor: str | None = None) -> None:
    """The page at a laptop's and a phone's size, scrolled to ``anchor``."""
    folder = TEST_OUTPUT / "start"
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        driver.set_window_size(width, height)
        if anchor:
            driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()", anchor)
        driver.save_screenshot(str(folder / f"{name}-{width}x{height}.png"))
    driver.set_window_size(*SIZES[0])


def typed(driver: Any, key: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "f-" + re.sub(r"[^A-Za-z0-9]+", "-", key))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.clear()
    field.send_keys(text)


def english_on(driver: Any) -> list[str]:
    """Words of the page's visible text that are English (the log folded in its details aside)."""
    text = driver.execute_script(
        "const c = document.body.cloneNode(true); c.querySelectorAll('details, code, .file, [lang=en]')"
        ".forEach((n) => n.remove()); return c.innerText;"
    )
    english = {
        "the", "and", "file", "save", "run", "error", "folder", "delivery", "review", "speaker", "topic",
        "consent", "approved", "statement", "recording", "not", "with", "is", "please", "click", "here",
    }  # fmt: skip

    return sorted({w for w in re.findall(r"[A-Za-z]+", text) if w.lower() in english})


@pytest.mark.slow
@needs_chromium
def test_from_a_folder_of_recordings_to_a_checked_delivery_in_the_browser(
    started: tuple[StartPage, Path, Path, Path],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page, meeting, out, form = started
    # The review page's guards, on this page too: the token, the Host, another site, a name for a file.
    port = urlsplit(page.url).port
    assert request(page.url, "GET", "/api/state", token=False)[0] == 403
    assert request(page.url, "GET", "/api/state", headers={"Host": f"rebound.example:{port}"})[0] == 403
    other = {"Origin": "http://example.org", "Content-Type": "application/json"}
    assert (
        request(page.url, "POST", "/api/save", headers=other, body={"version": None, "values": {}})[0] == 403
    )
    assert (
        request(
            page.url, "POST", "/api/run", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
        )[0]
        == 403
    )
    for path in ("/still/../../../etc/passwd", "/media/anna.wav", "/still/r99", "/media/%2e%2e%2fmoede"):
        assert request(page.url, "GET", path)[0] == 404, path
    with chromium(*SIZES[0]) as driver:
        from selenium.common.exceptions import StaleElementReferenceException

        # The page draws its status lines again as the server answers: an element found a moment before
        # can be gone when it is read, and is looked for again.
        wait = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(page.url)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        rows = driver.find_elements(By.CSS_SELECTOR, "#rows > li")
        assert [r.find_element(By.CSS_SELECTOR, ".file").text for r in rows] == [
            "anna.wav",
            "bo.wav",
            "cecilie.mp4",
        ]
        # A still of the video, a player for each; the sound recordings say they are sound only.
        video = rows[2].find_element(By.TAG_NAME, "video")
        poster = video.get_attribute("poster")
        status, headers, body = request(page.url, "GET", urlsplit(poster).path)
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
        driver.execute_script("arguments[0].load()", video)  # the preview, made now, played with byte ranges
        wait.until(lambda d: d.execute_script("return arguments[0].readyState", video) >= 1)
        assert driver.execute_script("return arguments[0].duration", video) > 40
        assert rows[0].find_elements(By.TAG_NAME, "audio") and not rows[0].find_elements(By.TAG_NAME, "video")
        assert "Lydoptagelse" in rows[0].text
        assert not driver.find_element(By.ID, "review-link").is_displayed()
        assert "Kan bruges." in rows[2].text and "Længde:" in rows[2].text
        # The form's default consent: committee and archive ticked, name on screen and publish not.
        boxes = {
            b.get_attribute("data-consent"): b.is_selected()
            for b in rows[0].find_elements(By.CSS_SELECTOR, "input[type=checkbox]")
        }
        assert boxes == {"committee": True, "archive": True, "name_on_screen": False, "publish": False}
        assert axe_violations(driver) == []
        assert english_on(driver) == []
        shots(driver, "01-opened")

        # The meeting, with a date written as people often do: refused next to the field, in Danish.
        typed(driver, "meeting.title", "Borgermøde om Skolevej: trafik & støj")
        typed(driver, "meeting.date", "24/11/2026")
        typed(driver, "meeting.place", "Nordby Forsamlingshus")
        typed(driver, "meeting.organiser", "Nordby Lokalråd")
        typed(driver, "meeting.committee", "Plan-, Teknik- og Miljøudvalget")
        typed(driver, "meeting.committee_meeting", "2026-12-03")
        driver.find_element(By.ID, "save").click()
        error = driver.find_element(By.ID, "f-meeting-date-error")
        wait.until(lambda d: error.is_displayed())
        assert "år-måned-dag" in error.text
        date = driver.find_element(By.ID, "f-meeting-date")
        assert date.get_attribute("aria-invalid") == "true" and "f-meeting-date-error" in date.get_attribute(
            "aria-describedby"
        )
        assert not (meeting / "meeting.yaml").exists()
        assert axe_violations(driver) == []
        shots(driver, "02-meeting-refused-date", "meeting")
        typed(driver, "meeting.date", "2026-11-24")
        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: (meeting / "meeting.yaml").exists())
        wait.until(lambda d: "Gemt" in d.find_element(By.ID, "save-state").text)
        shots(driver, "03-meeting-saved", "meeting")

        # The statements: the video first; Anna names herself on screen; Bo did not sign for the
        # committee; Cecilie gave no consent to her name on screen.
        rows = driver.find_elements(By.CSS_SELECTOR, "#rows > li")
        ids = {r.find_element(By.CSS_SELECTOR, ".file").text: r.get_attribute("data-id") for r in rows}
        video = rows[2]
        for _ in range(2):
            button = video.find_element(By.CSS_SELECTOR, "button.up")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
            button.click()
        order = [
            r.find_element(By.CSS_SELECTOR, ".file").text
            for r in driver.find_elements(By.CSS_SELECTOR, "#rows > li")
        ]
        assert order == ["cecilie.mp4", "anna.wav", "bo.wav"]
        typed(driver, f"statements.{ids['cecilie.mp4']}.speaker", "Cecilie Holm")
        typed(driver, f"statements.{ids['cecilie.mp4']}.topic", "Støj fra Skolevej")
        typed(driver, f"statements.{ids['anna.wav']}.speaker", "Anna Ærø")
        typed(driver, f"statements.{ids['anna.wav']}.group", "Bordgruppe 3")
        typed(driver, f"statements.{ids['anna.wav']}.topic", "Banken på hjørnet")
        typed(driver, f"statements.{ids['bo.wav']}.speaker", "Bo Berg")

        def tick(key: str) -> None:
            box = driver.find_element(By.CSS_SELECTOR, f"[data-field='{key}']")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
            box.click()

        tick(f"statements.{ids['anna.wav']}.consent.name_on_screen")
        tick(f"statements.{ids['bo.wav']}.consent.committee")
        shots(driver, "04-statements", "statements")

        # The follow-up: a contact, a working group and an agreement, the next meeting.
        typed(driver, "follow_up.contact.name", "Ida Holm")
        typed(driver, "follow_up.contact.role", "formand for Nordby Lokalråd")
        typed(driver, "follow_up.contact.email", "ida.holm@example.org")
        typed(driver, "follow_up.contact.phone", "+45 12 34 56 78")
        driver.find_element(By.ID, "add-groups").click()
        typed(driver, "follow_up.groups.0.name", "Trafikgruppen")
        typed(driver, "follow_up.groups.0.coordinator", "Søren Østergård")
        typed(driver, "follow_up.groups.0.meets", "første tirsdag i måneden kl. 19 i forsamlingshuset")
        typed(driver, "follow_up.groups.0.costs", "kaffe og kage")
        typed(driver, "follow_up.groups.0.costs_covered_by", "Nordby Lokalråd")
        driver.find_element(By.ID, "add-agreements").click()
        typed(driver, "follow_up.agreements.0.who", "Nordby Lokalråd")
        typed(driver, "follow_up.agreements.0.what", "sende høringssvaret til udvalget")
        typed(driver, "follow_up.agreements.0.by", "2026-11-27")
        typed(driver, "follow_up.next_meeting", "2027-03-04")
        typed(driver, "follow_up.next_meeting_place", "Nordby Skole")
        assert axe_violations(driver) == []
        shots(driver, "05-follow-up", "follow-up")

        # Start: saved (the previous meeting.yaml kept beside it), then run with its progress.
        driver.find_element(By.ID, "start").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#job-steps li"))
        shots(driver, "06-running", "run")
        WebDriverWait(driver, 300).until(
            lambda d: (
                (d.execute_script("return document.body.dataset.job") or "").split(":")[1]
                in ("done", "failed")
            )
        )
        job = driver.execute_script("return document.body.dataset.job")
        assert job == "run:done:6", driver.find_element(By.ID, "job-log").text
        assert "Kladden er lavet" in driver.find_element(By.ID, "job-message").text
        assert "bo.wav" in driver.find_element(By.ID, "job-rejected").text
        assert english_on(driver) == []
        assert axe_violations(driver) == []
        shots(driver, "07-run-done", "run")
        link = driver.find_element(By.ID, "review-link")
        wait.until(lambda d: link.is_displayed())
        review_url = link.get_attribute("href")

        # The review page of what the run made: a word corrected, every statement approved, delivered.
        driver.get(review_url)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        sections = driver.find_elements(By.CSS_SELECTOR, "section.statement")
        assert len(sections) == 2
        first = driver.find_element(By.CSS_SELECTOR, "section.statement .cue textarea").get_attribute("value")
        word = max(first.split(), key=len).strip(".,!?»«\"'")
        driver.find_element(By.ID, "find").send_keys(word)
        driver.find_element(By.ID, "replace").send_keys("Rettetord")
        driver.find_element(By.ID, "replace-all").click()
        wait.until(lambda d: d.find_element(By.ID, "save-state").text == "Gemt")
        driver.find_element(By.ID, "reviewer").send_keys("Ida Holm")
        for tick_box in driver.find_elements(By.CSS_SELECTOR, "input.approved"):
            tick_box.click()
        wait.until(lambda d: "done" in d.find_element(By.ID, "summary").get_attribute("class"))
        shots(driver, "08-review-approved")
        driver.find_element(By.ID, "render").click()
        WebDriverWait(driver, 300).until(lambda d: d.execute_script("return document.body.dataset.rendered"))
        assert driver.execute_script("return document.body.dataset.rendered") == "0"
        shots(driver, "09-review-delivered")

        # Back on the start page: the delivery, its folder and a ZIP for sending.
        driver.get(page.url)
        wait.until(lambda d: d.execute_script("return document.body.dataset.delivery") == "made")
        assert str(out / "delivery") in driver.find_element(By.ID, "delivery-folder").text
        driver.find_element(By.ID, "open-folder").click()
        wait.until(lambda d: "åbn den selv" in d.find_element(By.ID, "delivery-state").text)
        driver.find_element(By.ID, "make-zip").click()
        WebDriverWait(driver, 300).until(
            lambda d: d.execute_script("return document.body.dataset.delivery") == "zip"
        )
        assert "ZIP-filen er lavet" in driver.find_element(By.ID, "delivery-state").text
        assert english_on(driver) == []
        assert axe_violations(driver) == []
        shots(driver, "10-delivery", "delivery")

    # Only meeting.yaml was written into the meeting folder, the previous one beside it.
    names = sorted(p.name for p in meeting.iterdir())
    assert names[:4] == ["anna.wav", "bo.wav", "cecilie.mp4", "meeting.yaml"], names
    assert len(names) == 5 and names[4].startswith("meeting.yaml.previous-"), names
    written, _ = load_meeting(meeting)
    assert written.committee_meeting is not None and written.committee_meeting.isoformat() == "2026-12-03"
    assert [s.file for s in written.statements or []] == ["cecilie.mp4", "anna.wav", "bo.wav"]

    delivery = out / "delivery"
    clip = next(delivery.glob("*.mp4"))
    checked = run_here("check", clip, "--form", form)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert next(out.glob("*.zip"))
    first_run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    txt = next(delivery.glob("*-transkription.txt")).read_text(encoding="utf-8")
    assert "Rettetord" in txt and "Cecilie Holm" not in txt and "Anna Ærø" in txt
    assert [s["file"] for s in first_run["statements"]] == ["cecilie.mp4", "anna.wav"]
    assert [w["file"] for w in first_run["withheld"]] == ["bo.wav"]

    # The written meeting.yaml, read back by `hearing run` (with the review's corrections and approvals
    # and the work already done): the same delivery.
    again = out.parent / "again"
    shutil.rmtree(again, ignore_errors=True)
    shutil.copytree(out / "edits", again / "edits")
    shutil.copytree(out / "work", again / "work")
    rerun = run_cli("run", meeting, "--out", again, "--form", form, "--model", "base", "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    second_run = json.loads((again / "run.json").read_text(encoding="utf-8"))

    def statements(report: dict[str, Any]) -> list[Any]:
        return [(s["file"], s.get("speaker"), s.get("consent")) for s in report["statements"]]

    assert statements(second_run) == statements(first_run)
    assert next((again / "delivery").glob("*-transkription.txt")).read_text(encoding="utf-8") == txt
    srt = next(delivery.glob("*.srt")).name
    assert (again / "delivery" / srt).read_text(encoding="utf-8") == (delivery / srt).read_text(
        encoding="utf-8"
    )


def test_every_kind_of_file_a_folder_holds_is_listed_with_what_ingest_says_in_danish(
    real_media: Path, tmp_path: Path
) -> None:
    import os
    import unicodedata

    from conftest import ffmpeg, tree_digest

    from pipeline.texts import start as texts

    meeting = tmp_path / "moede"
    meeting.mkdir()
    shutil.copyfile(real_media / "da-nst-u0042008.wav", meeting / "god.wav")
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.2", meeting / "kort.wav")  # too short for a sentence
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=d=1:s=160x90",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        meeting / "stum.mp4",
    )
    (meeting / "skrald.mp4").write_bytes(os.urandom(4096))  # not a recording at all
    outside = tmp_path / "hemmelig.wav"
    shutil.copyfile(real_media / "da-nst-u0042009.wav", outside)
    (meeting / "genvej.wav").symlink_to(outside)
    (meeting / "mappe.mp3").mkdir()
    os.close(os.open(os.path.join(os.fsencode(meeting), b"d\xe5rlig.wav"), os.O_CREAT | os.O_WRONLY))
    for form in ("NFC", "NFD"):  # one name, its letters encoded two ways
        shutil.copyfile(real_media / "da-nst-u0042010.wav", meeting / unicodedata.normalize(form, "Åse.wav"))
    before = tree_digest(meeting)
    os.mkfifo(meeting / "roer.wav")  # would block whoever opens it (so it is made after the digest)

    start = Start(RunOptions(meeting_dir=meeting, out_dir=tmp_path / "out", model="base"), open_folders=False)
    state = start.state()
    notes = {r["file"]: r["note"] for r in state["recordings"]}
    assert notes["god.wav"] == "Kan bruges."
    assert "for kort" in notes["kort.wav"]
    assert "ingen lyd" in notes["stum.mp4"]
    assert "ikke en almindelig fil" in notes["roer.wav"] and "ikke en almindelig fil" in notes["mappe.mp3"]
    assert "uden for mødemappen" in notes["genvej.wav"]
    assert all("Omdøb" in n for f, n in notes.items() if unicodedata.normalize("NFC", f) == "Åse.wav")
    assert notes["skrald.mp4"]  # what a damaged file is called varies; it is said in Danish all the same
    [unnamed] = state["unnamed"]
    assert "Omdøb filen" in unnamed["reason"]
    english = re.compile(r"\b(the|a|an|not|no|is|file|stream|audio|cannot|too|link|outside|folder)\b", re.I)
    for note in [*notes.values(), unnamed["reason"]]:
        assert not english.search(note), note
    assert set(texts.PAGE) and all(not english.search(v) for v in texts.PAGE.values())
    # Only what a run may play is served: a sound recording has no still, an unusable one no player.
    usable = {r["file"]: r for r in state["recordings"]}
    assert usable["god.wav"]["playable"] and not usable["god.wav"]["video"]
    assert not usable["stum.mp4"]["playable"] and not usable["roer.wav"]["playable"]
    (meeting / "roer.wav").unlink()
    assert tree_digest(meeting) == before, "the meeting folder was written to"


def test_an_output_folder_inside_the_meeting_folder_is_refused_before_anything_is_written(
    real_media: Path, tmp_path: Path
) -> None:
    meeting = meeting_folder(tmp_path / "m", real_media, video=False)
    result = run_here("start", meeting, "--out", meeting / "ud", "--no-browser")
    assert result.returncode == 2, result.stderr
    assert "inside the meeting folder" in result.stderr
    assert sorted(p.name for p in meeting.iterdir()) == ["anna.wav", "bo.wav"]


def test_a_form_asking_for_a_model_that_is_not_installed_is_said_on_the_page_before_any_run(
    real_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARING_PIPELINE_CACHE", str(tmp_path / "no-models-here"))
    meeting = meeting_folder(tmp_path / "m", real_media, video=False)
    # The default form asks for the installed model fit for Danish; there is none in this cache.
    asked = Start(RunOptions(meeting_dir=meeting, out_dir=tmp_path / "out"), open_folders=False)
    problem = asked.state()["model_problem"]
    assert problem is not None and "--model base" in problem and "hearing models get" in problem
    accepted = Start(
        RunOptions(meeting_dir=meeting, out_dir=tmp_path / "out", model="base"), open_folders=False
    )
    assert accepted.state()["model_problem"] is None


@pytest.mark.slow
def test_ctrl_c_stops_the_page_and_a_run_it_started_as_it_stops_hearing_run(
    real_media: Path, tmp_path: Path
) -> None:
    import time

    meeting = meeting_folder(tmp_path / "m", real_media)
    out = tmp_path / "out"
    page = StartPage(meeting, out, "--model", "base")
    try:
        state = json.loads(request(page.url, "GET", "/api/state")[2])
        assert request(page.url, "POST", "/api/save", body=blank(state))[0] == 200
        assert request(page.url, "POST", "/api/run")[0] == 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = json.loads(request(page.url, "GET", "/api/job")[2])["job"]
            if (
                any(s["label"].startswith("Transskriberer") for s in job["steps"])
                or job["state"] != "running"
            ):
                break
            time.sleep(0.2)
        assert job["state"] == "running", job
    finally:
        code = stop(page.process)  # type: ignore[arg-type]
    assert code == 0, "".join(page.lines)
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert report["exit_code"] == 130
    assert "Traceback" not in "".join(page.lines)
