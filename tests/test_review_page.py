"""The Danish pages as an organiser and an official read them: the review page (its fields show the values
the render will use, its headings name the speaker), the delivery page's list of checks, no English word on
either, and both pages accessible (axe-core, WCAG 2.1 A and AA) in Debian's Chromium."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, TEST_OUTPUT, DemoRun
from test_review import chromium, needs_chromium, start_review, stop

from pipeline import texts
from pipeline.config import load_statement_edit
from pipeline.stages import edits
from pipeline.stages.subtitles.rules import Cue, RuleBreak, SubtitleRules
from pipeline.texts import checks as check_words

# ------------------------------------------------------------------------------------ English words

# Names of formats, standards and units, which a Danish page writes as they are.
FORMATS = frozenset(
    """mp4 srt vtt pdf docx zip json txt html wcag sha-256 sha256 lufs dbtp ebu r h.264 h264 aac yuv420p
    fps hz ms s qc esc alt""".split()  # noqa: SIM905
)

# Common English words that are not also Danish words ("to", "at", "for", "man", "time", "under",
# "over", "start", "end", "is", "by", "most", "mine", "set", "line", "last", "fast", "pause", "point",
# "format" are Danish too, and left out). A word of these on a Danish page is English the organiser
# has to translate.
ENGLISH = frozenset(
    """
    the and of with without from into this that these those are was were been has have not yes you your
    our we they it its which what when where who why how all each every any some more than then only also
    still again after before between above below in on off no or but if so do does did can could cannot
    must should will would shall may might here there new next previous first

    characters character chars note notes check checks checked passed failed fail warn warning warnings
    loudness subtitles subtitle cue cues statement statements review reviewer approve approved approval
    speaker topic delivery deliver delivered draft render rendering save saved saving undo replace search
    play playing file files length frame frames size track sound picture pixel pixels square
    constant container index none order ends starts longest shortest fastest smallest longer shorter
    lines gap gaps within clip clips reading speed screen seconds second text texts transcript words
    word same say agree repetition repetitions loops invented credits recognised recognized present
    profile high channels sample peak true false integrated level please open close closed
    meeting committee organiser organizer place date details error errors shown show hidden
    moved merge split delete add edit edits name names free make made approve summary missing doubtful
    heard silence possible credit repeated yours theirs keep use version changed changes
    """.split()  # noqa: SIM905
)

# A word in lower case with letters Danish spelling does not put together: English, whatever the list
# above has forgotten (a capitalised word may be a name, and is left to the list).
_NOT_DANISH = re.compile(r"th|wh|sh|ck|ph|oo|q")


def english_words(lines: Iterable[str]) -> list[str]:
    """The English words in ``lines`` (with the line they are in), skipping names of formats and what is
    not a word: numbers, file names, addresses, times."""
    found = []
    for line in lines:
        for token in line.split():
            word = token.strip("»«“”\"'()[],.;:!?–—-…·⚑✓▶↳")
            if any(mark in word for mark in "/@.:_=+"):
                continue  # a file name, an address, a time, a key, an identifier
            if not word or not any(c.isalpha() for c in word) or word.lower() in FORMATS:
                continue
            lower = unicodedata.normalize("NFC", word.lower())
            for part in lower.split("-"):
                if part in ENGLISH or (word.islower() and _NOT_DANISH.search(part)):
                    found.append(f"{word!r} in {line.strip()[:160]!r}")
    return found


def test_the_word_check_finds_english_and_passes_danish() -> None:
    """The check itself must be able to fail: English of each kind is found, Danish and names pass."""
    assert english_words(["højst 17 tegn i sekundet; over 15 markeres"]) == []
    assert english_words(["Indlæg 3: Karen Mølgaard (navnet vises ikke i klippet)"]) == []
    assert english_words(["Til udvalget 01-anna.mp4, MP4 og SRT, -23,0 LUFS, 00:00:18,110"]) == []
    for english in (
        "≤ 17 characters/s (note above 15)",
        "reading speed: fastest 17.00 characters/s",
        "Approved by",
        "MP4 container",
        "a showstopper",  # not on the list: the heuristic
        "Godkend-review",
    ):
        assert english_words([english]), english


# ------------------------------------------------------------------------------------ the texts


def every_rule_break(rules: SubtitleRules) -> Iterator[str]:
    cue = Cue(1000, 2300, ("Det er en meget lang linje med mange ord, som bliver ved", "og ved"))
    for rule in texts.RULE_NAMES:
        for severity in ("fail", "warn"):
            for kind in ("", "too fast for any timing"):
                yield texts.rule_break(RuleBreak(rule, severity, kind, 1, "detail"), cue, 900, rules)
        yield texts.rule_limit(rule, rules)
        yield texts.rule_problem("Indlæg 1", "undertekst 1 »ja«", RuleBreak(rule, "fail", "", 1, ""), rules)


def test_every_rule_note_is_a_danish_sentence_without_signs() -> None:
    rules = SubtitleRules.from_form(__import__("pipeline.config", fromlist=["Form"]).Form())
    said = list(every_rule_break(rules))
    assert english_words(said) == []
    for sentence in said:
        assert not set(sentence) & set("≤≥<>"), sentence
    limit = texts.rule_limit("subtitles.reading_speed", rules)
    fastest, noted = texts.number(rules.max_cps), texts.number(rules.warn_cps)
    assert limit == f"højst {fastest} tegn i sekundet; over {noted} markeres"


def check_ids_in_source() -> set[str]:
    """Every check id the check package can report, read from its source, and the subtitle rules."""
    found: set[str] = set(texts.RULE_NAMES)
    sources = (REPO / "pipeline" / "stages" / "check").glob("*.py")
    pattern = re.compile(r'"((?:container|video|audio|clip|subtitles|transcript)\.[a-z_]+)"')
    for path in sources:
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_check_has_a_danish_label_and_english_stays_english() -> None:
    ids = check_ids_in_source()
    assert len(ids) >= 30, ids
    assert ids <= set(check_words.LABELS), sorted(ids - set(check_words.LABELS))
    assert english_words(check_words.LABELS.values()) == []
    said = [*check_words.STATUS.values(), check_words.MORE, check_words.CUES, check_words.more(3)]
    assert english_words(said) == []
    assert check_words.label("audio.loudness", "integrated loudness", danish=False) == "integrated loudness"
    # A check nobody has labelled yet keeps its title rather than vanish (the test above fails first).
    assert check_words.label("audio.new", "a new check", danish=True) == "a new check"


@pytest.mark.parametrize(
    ("measured", "neutral"),
    [
        ("-23.0 LUFS", True), ("1280×720", True), ("25 fps", True), ("aac (LC)", True), ("48000 Hz", True),
        ("80.80 s (1:20)", True), ("yuv420p", True), ("2 (stereo)", True), ("", True),
        ("fastest 17.00 characters/s", False), ("moov before mdat", False), ("none", False),
        ("MP4 (brand isom)", False), ("constant (40.00–40.00 ms between frames)", False), ("19 cues", False),
    ],
)  # fmt: skip
def test_a_measured_value_reads_on_a_danish_page_only_without_english(measured: str, neutral: bool) -> None:
    assert check_words.neutral(measured) is neutral


# ------------------------------------------------------------------------------------ in Chromium


def axe_script() -> str:
    """axe-core's script, as `make test` installs it with npm beside the test environment (or where
    HEARING_AXE names it). Missing, the test fails and says how to get it: it never skips."""
    default = Path(sys.prefix) / "axe" / "node_modules" / "axe-core" / "axe.min.js"
    path = Path(os.environ.get("HEARING_AXE") or default)
    assert path.is_file(), (
        f"axe-core is not installed at {path}: run `make test`, which installs it with npm "
        "(the version is in the Makefile), or name its axe.min.js in HEARING_AXE"
    )
    return path.read_text(encoding="utf-8")


def axe_violations(driver: Any) -> list[str]:
    """What axe-core finds against WCAG 2.1 A and AA on the page as it is now, one line a rule."""
    driver.set_script_timeout(60)
    driver.execute_script(axe_script())
    result = driver.execute_script(
        "return axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']})"
        ".then((r) => r.violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}): `"
        " + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')))"
    )
    assert isinstance(result, list)
    return [str(line) for line in result]


# The words a page shows: its text (not the person's content: what is marked translate="no", the text
# of an English part marked lang="en", commands in <code>), and the words of its attributes.
PAGE_WORDS = """
const out = [document.title];
const skip = (node) => node.closest('script, style, code, textarea, [translate="no"], [lang="en"]');
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (node.textContent.trim() && !skip(node.parentElement)) out.push(node.textContent);
}
for (const el of document.querySelectorAll('[title], [aria-label], [placeholder], [alt]')) {
  if (el.closest('[lang="en"]')) continue;
  for (const name of ['title', 'aria-label', 'placeholder', 'alt']) {
    if (el.hasAttribute(name)) out.push(el.getAttribute(name));
  }
}
for (const el of document.querySelectorAll('[translate="no"]')) {
  if (el.hasAttribute('title')) out.push(el.getAttribute('title'));
}
return out;
"""

# Every sentence the review page's script may show in Danish, not only those the page shows now.
SCRIPT_WORDS = """
const out = [];
const walk = (v) => {
  if (typeof v === "string") out.push(v);
  else if (typeof v === "function") out.push(String(v(2, 3, "Indlæg 1")));
  else if (v && typeof v === "object") Object.values(v).forEach(walk);
};
walk(TEXT.da);
return out;
"""


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def demo_review(demo_run: DemoRun) -> Iterator[tuple[Path, str]]:
    """A copy of the demo's output under review: Danish, speakers and topics in meeting.yaml, one of them
    without consent to a name on screen."""
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    out = TEST_OUTPUT / "runs" / "review-page"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(demo_run.out, out, symlinks=True)
    process, url = start_review(out)
    try:
        yield out, url
    finally:
        stop(process)


def section_of(driver: Any, file: str) -> Any:
    from selenium.webdriver.common.by import By

    return next(
        s
        for s in driver.find_elements(By.CSS_SELECTOR, "section.statement")
        if s.find_element(By.CSS_SELECTOR, "h2 .file").text == file
    )


def set_value(driver: Any, field: Any, value: str, event: str = "input") -> None:
    """The field's value as a person leaves it, and the event typing it sends."""
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event(arguments[2], {bubbles: true}))",
        field,
        value,
        event,
    )


def saved_fields(out: Path, relpath: str) -> Any:
    return load_statement_edit(out / "edits" / edits.edit_names(relpath)[1])


@pytest.mark.slow
@needs_chromium
def test_the_review_page_shows_the_values_and_names_in_danish(demo_review: tuple[Path, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    out, url = demo_review
    shots = TEST_OUTPUT / "review-page"
    shots.mkdir(parents=True, exist_ok=True)
    with chromium(1366, 768) as driver:
        wait = WebDriverWait(driver, 60)
        driver.get(url)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")

        # The headings name the statement and its speaker; the file is the secondary text.
        anna = section_of(driver, "recordings/01-anna.mp4")
        heading = anna.find_element(By.TAG_NAME, "h2")
        assert heading.find_element(By.CSS_SELECTOR, ".label").text == "Indlæg 1:"
        assert heading.find_element(By.CSS_SELECTOR, ".speaker").text == "Anna Jensen"
        assert heading.find_element(By.CSS_SELECTOR, ".hidden-name").text == ""
        # Karen gave no consent to her name on screen: the organiser, who wrote it, sees it, marked so.
        karen = section_of(driver, "recordings/03-karen.mp4").find_element(By.TAG_NAME, "h2")
        assert karen.find_element(By.CSS_SELECTOR, ".speaker").text == "Karen Mølgaard"
        assert "vises ikke i klippet" in karen.find_element(By.CSS_SELECTOR, ".hidden-name").text

        # The fields show meeting.yaml's values as their values, not as grey hints.
        speaker = anna.find_element(By.CSS_SELECTOR, 'input[name="speaker"]')
        topic = anna.find_element(By.CSS_SELECTOR, 'input[name="topic"]')
        trim_in = anna.find_element(By.CSS_SELECTOR, 'input[name="in_ms"]')
        trim_out = anna.find_element(By.CSS_SELECTOR, 'input[name="out_ms"]')
        assert speaker.get_attribute("value") == "Anna Jensen"
        assert topic.get_attribute("value") == "Trafik på Skolevej"
        assert (trim_in.get_attribute("value"), trim_out.get_attribute("value")) == ("3.2", "23.4")
        for field in (speaker, topic, trim_in, trim_out):
            assert not field.get_attribute("placeholder"), field.get_attribute("name")

        # What reads as the value shown is no change: nothing is saved, whatever its spaces or its form
        # of Unicode, and typing a letter and taking it back saves nothing either.
        before = tree(out / "edits")
        driver.execute_script(
            "const send = window.fetch; window.posts = 0;"
            "window.fetch = (...a) => {"
            " if (a[1] && a[1].method === 'POST') window.posts += 1; return send(...a); }"
        )
        soeren = section_of(driver, "recordings/02-soeren.mov")
        soeren_speaker = soeren.find_element(By.CSS_SELECTOR, 'input[name="speaker"]')
        for same in ("  Anna   Jensen ", "Anna\u00a0Jensen", "Anna Jensen"):
            set_value(driver, speaker, same)
        set_value(driver, soeren_speaker, unicodedata.normalize("NFD", "Søren Ærø Østergård"))
        topic.click()
        topic.send_keys("x")
        topic.send_keys(Keys.BACKSPACE)
        set_value(driver, trim_in, "3.20", "change")
        set_value(driver, trim_out, "23.4", "change")
        time.sleep(1.2)  # past the page's 0.5 s before a save
        assert driver.execute_script("return page.timers.size") == 0
        assert driver.execute_script("return window.posts") == 0
        assert tree(out / "edits") == before

        # A new name is the person's, saved in edits/ and shown in the heading. (Søren's statement: the
        # demo's small model heard Anna's with characters the subtitles' font lacks, and the page refuses
        # to save it until they are corrected.)
        soeren_heading = soeren.find_element(By.TAG_NAME, "h2")
        relpath = "recordings/02-soeren.mov"
        set_value(driver, soeren_speaker, "Søren  Ærø")
        wait.until(lambda d: saved_fields(out, relpath).speaker == "Søren Ærø")
        wait.until(lambda d: soeren_heading.find_element(By.CSS_SELECTOR, ".speaker").text == "Søren Ærø")
        # Emptied, the field means meeting.yaml's value again, as it always has, and shows it.
        set_value(driver, soeren_speaker, "")
        set_value(driver, soeren_speaker, "", "change")
        wait.until(lambda d: saved_fields(out, relpath).speaker is None)
        assert soeren_speaker.get_attribute("value") == "Søren Ærø Østergård"
        assert soeren_heading.find_element(By.CSS_SELECTOR, ".speaker").text == "Søren Ærø Østergård"
        # meeting.yaml's own value typed back is meeting.yaml's: nothing of the person's is kept.
        soeren_topic = soeren.find_element(By.CSS_SELECTOR, 'input[name="topic"]')
        set_value(driver, soeren_topic, "Cykelsti ved Åvej")
        wait.until(lambda d: saved_fields(out, relpath).topic == "Cykelsti ved Åvej")
        set_value(driver, soeren_topic, "Cykelsti langs Åvej")
        wait.until(lambda d: saved_fields(out, relpath).topic is None)
        soeren_in = soeren.find_element(By.CSS_SELECTOR, 'input[name="in_ms"]')
        assert soeren_in.get_attribute("value") == ""  # no in point in meeting.yaml: from the start
        set_value(driver, soeren_in, "1.5", "change")
        wait.until(lambda d: saved_fields(out, relpath).in_ == 1.5)
        set_value(driver, soeren_in, "", "change")
        wait.until(lambda d: saved_fields(out, relpath).in_ is None)
        assert soeren_in.get_attribute("value") == ""
        wait.until(lambda d: d.find_element(By.ID, "save-state").text == "Gemt")

        # No English word on the page, in its attributes, or in any sentence its script may show.
        driver.execute_script("window.scrollTo(0, 0)")
        shown = driver.execute_script(PAGE_WORDS) + driver.execute_script(SCRIPT_WORDS)
        assert any("Bemærk, læsehastighed" in line for line in shown), "no rule note on the demo page"
        assert english_words(shown) == []
        driver.save_screenshot(str(shots / "review-1366x768.png"))
        assert axe_violations(driver) == []

        karen_section = section_of(driver, "recordings/03-karen.mp4")
        driver.execute_script("arguments[0].scrollIntoView()", karen_section)
        driver.save_screenshot(str(shots / "review-1366x768-statement.png"))
        driver.set_window_size(390, 844)
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        driver.save_screenshot(str(shots / "review-390x844.png"))
        driver.execute_script("arguments[0].scrollIntoView()", karen_section)
        driver.save_screenshot(str(shots / "review-390x844-statement.png"))
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a phone"

        # The page without its token: Danish, and its English half marked as English.
        driver.get(url.split("?")[0])
        assert english_words(driver.execute_script(PAGE_WORDS)) == []
        assert axe_violations(driver) == []


@pytest.mark.slow
@needs_chromium
def test_the_delivery_page_lists_its_checks_in_danish_with_whole_subtitles(demo_run: DemoRun) -> None:
    from selenium.webdriver.common.by import By

    page = demo_run.out / "delivery" / "index.html"
    html = page.read_text(encoding="utf-8")
    with chromium(1366, 900) as driver:
        driver.get(page.as_uri())
        checks = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.checks > li")]
        assert any(line.startswith("lydstyrke (EBU R 128): i orden · -23.0 LUFS") for line in checks), checks
        # A warning names its subtitles whole, with their times, as the delivered cues have them.
        items = driver.find_elements(By.CSS_SELECTOR, "ul.checks > li")
        speed = next(li for li in items if li.text.startswith("læsehastighed"))
        driver.execute_script("arguments[0].scrollIntoView()", speed)
        (TEST_OUTPUT / "review-page").mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(TEST_OUTPUT / "review-page" / "delivery-checks-1366.png"))
        listed = speed.find_elements(By.CSS_SELECTOR, "ul.named li")
        named = [li for li in listed if li.find_elements(By.TAG_NAME, "q")]
        srt = next((demo_run.out / "delivery").glob("*.srt")).read_text(encoding="utf-8")
        assert named, speed.text
        for item in named:
            at = item.find_element(By.CSS_SELECTOR, ".time").text
            text = item.find_element(By.TAG_NAME, "q").text
            block = srt.split(f"{at} --> ")[1].split("\n\n")[0]
            assert " ".join(block.splitlines()[1:]) == text
        assert any(len(i.find_element(By.TAG_NAME, "q").text) > 32 for i in named), "no long cue shown"
        # The person's words are not the page's: the transcript is left out of the word check.
        driver.execute_script(
            "document.querySelectorAll('.transcript .cues, h1, dd')"
            ".forEach((n) => n.setAttribute('translate', 'no'))"
        )
        assert english_words(driver.execute_script(PAGE_WORDS)) == []
        assert axe_violations(driver) == []
    assert "<q " in html and "characters/s" not in html.split('<ul class="checks">')[1].split("</ul>")[0]
