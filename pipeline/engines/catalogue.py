"""The speech models fit for Danish that `hearing models get NAME` can fetch, with what is published
about them: where each comes from (repository and revision), its format, size, licence and the Danish
word error rates others measured, each with its source.

The figures are published ones, never measured here: `make bench` measures this machine. They come from
one stored version of the Danish ASR leaderboard (Rye-A1/danish-asr-leaderboard, its results files at
the commit named in each source), so that all four models are compared as scored by the same harness
on the same day. Other stored versions of those files give other figures (the order of these four
models is the same in every version seen).

The data is here, in Python, rather than in a data file: it is typed and frozen by the interpreter, so
no loader has to check it, and tests/test_catalogue.py holds every entry to its rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pipeline.errors import UsageError

Format = Literal["ct2", "transformers"]
Speed = Literal["fast", "medium", "slow"]

# The leaderboard's five core test sets, named as its README names them, and its macro average.
CORAL_CONVERSATION = "CoRal v3 conversation (test)"
CORAL_READ = "CoRal v3 read-aloud (test)"
COMMON_VOICE = "Common Voice, Danish (test; the leaderboard's cv17_da column)"
FLEURS = "FLEURS da_dk (test)"
FTSPEECH = "FT Speech (test_balanced)"
MEAN = "mean of the five test sets above"

LEADERBOARD = "Rye-A1/danish-asr-leaderboard"  # the source of every published figure here
_LEADERBOARD_COMMIT = "d77400e4d26170f7b3a458f4f07c4e0c3f5762cb"


@dataclass(frozen=True)
class PublishedWer:
    """A word error rate someone else published for Danish, with where it was published."""

    dataset: str
    wer_percent: float
    source: str  # the page or repository (and commit) it was read from


@dataclass(frozen=True)
class CatalogueEntry:
    name: str  # as typed after --model and `hearing models get`
    title: str  # as a person calls it
    repo: str  # the model hub repository id
    # The commit the files are fetched at. None: none was found published; the download takes the
    # repository's main branch and records the commit it got in the model's manifest.
    revision: str | None
    format: Format  # "ct2": CTranslate2 ready; "transformers": weights converted to CTranslate2 here
    files: tuple[str, ...]  # the files to fetch; empty: all of the repository's files
    size_bytes: int  # on disk once installed (after conversion, for transformers weights)
    size_source: str  # "exact: ..." (from the files' published sizes) or "estimate: ..." and why
    licence: str
    licence_conditions: str | None  # shown before download where the licence restricts use
    licence_source: str
    published: tuple[PublishedWer, ...]
    speed: Speed  # on a CPU, relative to each other
    engines: tuple[str, ...]  # the engines that can run it once installed
    fit_for_danish: bool  # False: for demos and tests only
    # The model's shape, from its config.json (encoder_layers, decoder_layers, d_model): what ranks the
    # models by the work of transcribing, before any of them has been measured on this machine.
    encoder_layers: int
    decoder_layers: int
    d_model: int
    note: str = ""

    @property
    def mean_wer(self) -> float | None:
        """The published mean Danish WER the catalogue ranks by; None when none is published."""
        return next((p.wer_percent for p in self.published if p.dataset == MEAN), None)

    @property
    def size_is_estimate(self) -> bool:
        return self.size_source.startswith("estimate:")

    @property
    def get_command(self) -> str:
        return f"hearing models get {self.name}"

    @property
    def relative_work(self) -> float:
        """The work of transcribing with this model relative to Whisper large-v3, from its shape alone:
        every layer multiplies by weights of d_model x d_model, so a layer's work grows with d_model².
        A ranking, not a time: the encoder runs once per 30 seconds of audio and the decoder once per
        word piece, so the real ratio depends on the words and the machine (`make bench` measures it)."""
        return (self.encoder_layers + self.decoder_layers) * self.d_model**2 / (64 * 1280**2)


def _leaderboard(file: str, **wer: float) -> tuple[PublishedWer, ...]:
    source = f"{LEADERBOARD}, results/{file} at commit {_LEADERBOARD_COMMIT}"
    datasets = {
        "coral_conversation": CORAL_CONVERSATION,
        "coral_read_aloud": CORAL_READ,
        "cv17_da": COMMON_VOICE,
        "fleurs_da": FLEURS,
        "ftspeech": FTSPEECH,
        "mean": MEAN,
    }
    return tuple(PublishedWer(datasets[key], value, source) for key, value in wer.items())


_CT2_V3_FILES = ("config.json", "model.bin", "preprocessor_config.json", "tokenizer.json", "vocabulary.json")
_BOTH = ("faster-whisper", "openai-whisper")

_CORAL_CONDITIONS = (
    'Røst v3 is published under an OpenRAIL licence (its model card says "openrail"); the CoRal data '
    "it was trained on carries a custom licence adapted from OpenRAIL-M that allows commercial use with a "
    "few restrictions: no speech synthesis (no voice that imitates a person) and no biometric "
    "identification (nothing that detects or infers who a speaker is or their characteristics), plus the "
    "further uses its Attachment A rules out. Transcribing a meeting is none of these. The restrictions "
    "pass on to anyone you share the model with. Read the licence on the model's page before you use it."
)

ENTRIES: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        name="roest-v3-1.5b",
        title="Røst v3 Whisper 1.5B (CoRal project, Alexandra Institute)",
        repo="CoRal-project/roest-v3-whisper-1.5b",
        revision=None,
        format="transformers",
        files=(),
        size_bytes=1_550_000_000,
        size_source=(
            "estimate: a Whisper large-v3-shaped model converted to CTranslate2 int8 takes about 1.5 GB "
            "(fasterroest's README; the same shape measured here); the download itself is larger"
        ),
        licence="OpenRAIL, with the CoRal project's own terms",
        licence_conditions=_CORAL_CONDITIONS,
        licence_source=(
            "huggingface.co/CoRal-project/roest-v3-whisper-1.5b (license: openrail); the CoRal dataset "
            "card (alexandrainst/coral: custom licence, no speech synthesis or biometric identification)"
        ),
        published=_leaderboard(
            "CoRal-project__roest-v3-whisper-1__5b.json",
            coral_conversation=31.82,
            coral_read_aloud=15.86,
            cv17_da=18.08,
            fleurs_da=10.18,
            ftspeech=29.34,
            mean=21.06,
        ),
        speed="slow",
        # Converted to int8 here; the openai-whisper path reads only float CTranslate2 weights.
        engines=("faster-whisper",),
        fit_for_danish=True,
        encoder_layers=32,
        decoder_layers=32,
        d_model=1280,
        note="Whisper large-v3 fine-tuned on Danish (CoRal v3); transformers weights, converted once.",
    ),
    CatalogueEntry(
        name="large-v3",
        title="Whisper large-v3 (OpenAI), CTranslate2 conversion by Systran",
        repo="Systran/faster-whisper-large-v3",
        revision="edaa852ec7e145841d8ffdb056a99866b5f0a478",
        format="ct2",
        files=_CT2_V3_FILES,
        size_bytes=3_090_835_702,
        size_source="exact: the published sizes of the five files at that revision",
        licence="MIT (conversion); the weights are OpenAI's Whisper, Apache-2.0",
        licence_conditions=None,
        licence_source="huggingface.co/Systran/faster-whisper-large-v3 (license: mit)",
        published=_leaderboard(
            "openai__whisper-large-v3.json",
            coral_conversation=40.72,
            coral_read_aloud=26.67,
            cv17_da=13.81,
            fleurs_da=12.02,
            ftspeech=17.53,
            mean=22.15,
        ),
        speed="slow",
        engines=_BOTH,
        fit_for_danish=True,
        encoder_layers=32,
        decoder_layers=32,
        d_model=1280,
    ),
    CatalogueEntry(
        name="large-v3-turbo",
        title="Whisper large-v3-turbo (OpenAI), CTranslate2 conversion by Mobius Labs",
        repo="mobiuslabsgmbh/faster-whisper-large-v3-turbo",
        revision="0c94664816ec82be77b20e824c8e8675995b0029",
        format="ct2",
        files=_CT2_V3_FILES,
        size_bytes=1_621_665_983,
        size_source="exact: the published sizes of the five files at that revision",
        licence="MIT",
        licence_conditions=None,
        licence_source="huggingface.co/mobiuslabsgmbh/faster-whisper-large-v3-turbo (license: mit)",
        published=_leaderboard(
            "openai__whisper-large-v3-turbo.json",
            coral_conversation=54.29,
            coral_read_aloud=31.58,
            cv17_da=16.32,
            fleurs_da=13.1,
            ftspeech=18.71,
            mean=26.8,
        ),
        speed="medium",
        engines=_BOTH,
        fit_for_danish=True,
        encoder_layers=32,
        decoder_layers=4,
        d_model=1280,
        note="faster-whisper's own name large-v3-turbo loads this repository; 4 decoder layers, not 32.",
    ),
    CatalogueEntry(
        name="base",
        title="Whisper base (OpenAI), CTranslate2 conversion by Systran: the embedded model",
        repo="Systran/faster-whisper-base",
        revision="ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66",
        format="ct2",
        files=("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"),
        size_bytes=147_882_941,
        size_source="exact: the four files as installed with the package (the same model.bin SHA-256)",
        licence="MIT (conversion); the weights are OpenAI's Whisper, Apache-2.0",
        licence_conditions=None,
        licence_source="huggingface.co/Systran/faster-whisper-base (license: mit)",
        published=_leaderboard(
            "openai__whisper-base.json",
            coral_conversation=276.28,
            coral_read_aloud=91.36,
            cv17_da=79.12,
            fleurs_da=64.11,
            ftspeech=99.83,
            mean=122.14,
        ),
        speed="fast",
        engines=_BOTH,
        fit_for_danish=False,
        encoder_layers=6,
        decoder_layers=6,
        d_model=512,
        note="Comes with the package, works offline; for demos and tests, not for a real meeting.",
    ),
)

_BY_NAME = {e.name: e for e in ENTRIES}
_BY_REPO = {e.repo: e for e in ENTRIES}


def entry(name: str) -> CatalogueEntry:
    """The catalogue entry called ``name``; a UsageError naming the known names otherwise."""
    found = _BY_NAME.get(name)
    if found is None:
        raise UsageError(f"no model called {name!r} in the catalogue; known: {', '.join(_BY_NAME)}")
    return found


def lookup(name: str) -> CatalogueEntry | None:
    """The entry a run's recorded model is, by its name here or its model hub repository id; None for
    any other model (a folder of one's own, another hub repository): nothing is published about it here.
    A folder path is never taken for a catalogue model, whatever its last part is called."""
    return _BY_NAME.get(name) or _BY_REPO.get(name)


def _rank(e: CatalogueEntry) -> float:
    mean = e.mean_wer
    return float("inf") if mean is None else mean


def recommended() -> CatalogueEntry:
    """The entry fit for Danish with the lowest published mean Danish WER."""
    return min((e for e in ENTRIES if e.fit_for_danish), key=_rank)


def best_installed(installed_names: Iterable[str]) -> CatalogueEntry | None:
    """Of the catalogue's models fit for Danish, the installed one with the lowest published mean WER;
    None when none is installed (base alone is not fit for Danish). Names outside the catalogue are
    passed over: nothing is published about them here."""
    installed = set(installed_names)
    fit = [e for e in ENTRIES if e.fit_for_danish and e.name in installed]
    return min(fit, key=_rank) if fit else None


def faster_for_draft(current: str | None, engine: str) -> CatalogueEntry | None:
    """The model fit for Danish to make the closing presentation's draft with where ``current`` cannot
    keep up: the one with the least work (``relative_work``) of those with less work than ``current``
    that ``engine`` runs; None where there is none. For a model outside the catalogue (a folder of
    one's own) whose shape is not known here, the catalogue's least work fit for Danish.

    base is never offered, even where nothing else is faster: it gets about every second Danish word
    wrong, and a draft shown to the citizens on the day that misquotes them does more harm than a draft
    that comes later (the day-after run with the better model stays the delivery)."""
    known = lookup(current or "base")
    fit = [e for e in ENTRIES if e.fit_for_danish and engine in e.engines]
    if known is not None:
        fit = [e for e in fit if e.relative_work < known.relative_work]
    return min(fit, key=lambda e: (e.relative_work, _rank(e))) if fit else None
