"""The meeting's own vocabulary as the engine's prompt, from meeting.yaml and the form, per statement."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_cut import statement

from pipeline.config import Form, Meeting, load_meeting
from pipeline.engines.base import TranscribeSettings
from pipeline.errors import ConfigError
from pipeline.models import Consent
from pipeline.stages.transcribe import PROMPT_MAX_CHARS, transcription_key, vocabulary_prompt

MEETING = Meeting.model_validate(
    {
        "title": "Borgermøde om trafiksikkerhed i Nordby",
        "place": "Nordby Forsamlingshus",
        "organiser": "Nordby Lokalråd",
        "committee": "Teknik- og Miljøudvalget",
        "vocabulary": ["Skolevej", "Åvej", "nordby lokalråd"],
    }
)
ON = Form.model_validate({"speech": {"vocabulary_prompt": True, "vocabulary": ["Brugsen"]}})


def test_the_prompt_is_the_meetings_words_then_the_statements_own() -> None:
    anna = replace(statement(topic="Trafik på Skolevej"), speaker="Anna Jensen", group="Bordgruppe 3")
    named = replace(anna, consent=Consent(name_on_screen=True))
    assert vocabulary_prompt(MEETING, ON, named) == (
        "Borgermøde om trafiksikkerhed i Nordby, Teknik- og Miljøudvalget, Nordby Lokalråd, "
        "Nordby Forsamlingshus, Skolevej, Åvej, Brugsen, Bordgruppe 3, Trafik på Skolevej, Anna Jensen."
    )
    # A name the speaker did not agree to show is not put where the engine could write it out.
    assert "Anna Jensen" not in (vocabulary_prompt(MEETING, ON, anna) or "")


def test_no_prompt_when_the_form_says_so_or_there_is_nothing_to_say() -> None:
    assert vocabulary_prompt(MEETING, Form(), statement()) is None
    assert vocabulary_prompt(Meeting(), ON.model_copy(update={"speech": Form().speech}), statement()) is None
    empty = Form.model_validate({"speech": {"vocabulary_prompt": True}})
    assert vocabulary_prompt(Meeting(), empty, statement()) is None


def test_a_long_vocabulary_keeps_the_statements_own_words() -> None:
    many = MEETING.model_copy(update={"vocabulary": [f"Vejnavn{n}" for n in range(300)]})
    prompt = vocabulary_prompt(many, ON, statement(topic="Krydset ved Brugsen")) or ""
    assert len(prompt) <= PROMPT_MAX_CHARS
    assert prompt.endswith("Brugsen, Krydset ved Brugsen.")
    assert "Borgermøde" not in prompt  # the most general terms go first


def test_the_prompt_is_part_of_the_transcription_key() -> None:
    plain = TranscribeSettings()
    assert transcription_key("a", "faster-whisper", "base", plain) != transcription_key(
        "a", "faster-whisper", "base", replace(plain, prompt="Skolevej.")
    )


def test_vocabulary_is_checked_where_it_is_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "meeting.yaml").write_text("vocabulary: [Skolevej, '']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_meeting(tmp_path)
    assert "meeting.yaml" in str(caught.value) and "vocabulary[1]" in str(caught.value)
