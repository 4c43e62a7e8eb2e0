"""What the pipeline needs of an ffmpeg binary, and how to read what a binary offers.

Pure: the lists and the parsers. ``media.tools`` asks a candidate binary (``-version``, ``-encoders``,
``-muxers``, ``-demuxers``, ``-filters``, ``-h full``) and judges the answers here, so an organiser's own
ffmpeg is used when it can do the work and passed over, with the reason, when it cannot.

The oldest supported version is 5.1 (Debian 12). Older releases differ in filter options the pipeline
relies on; checking every option by name below catches the rest, whatever the version says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MIN_VERSION = (5, 1)
# Part of the remembered answer: a change to how a binary is asked or read makes every binary be asked
# again (the lists below are judged afresh each run, from what was remembered).
CHECK_VERSION = 3  # 2: loop and setpts (the cards); 3: ebur128's frame log (the meter)

ENCODERS = ("libx264", "aac", "pcm_s16le", "mov_text")
MUXERS = ("mp4", "mov", "wav", "null")
DEMUXERS = ("concat", "lavfi", "mov", "srt", "image2")  # image2: the cards, still PNG pictures


@dataclass(frozen=True)
class FilterNeed:
    """A filter, the options the pipeline passes it, and named values it uses for some of them."""

    name: str
    options: tuple[str, ...] = ()
    values: tuple[tuple[str, str], ...] = ()  # (option, named value), e.g. ("framelog", "verbose")
    why: str = ""


FILTERS = (
    FilterNeed("subtitles", ("filename", "fontsdir"), why="burned-in subtitles (libass)"),
    FilterNeed(
        "loudnorm",
        (
            "I",
            "TP",
            "LRA",
            "measured_I",
            "measured_TP",
            "measured_LRA",
            "measured_thresh",
            "offset",
            "linear",
            "print_format",
        ),
        (("print_format", "json"),),
        why="loudness normalisation (EBU R 128)",
    ),
    FilterNeed(
        "ebur128",
        ("peak", "framelog"),
        (("peak", "true"), ("framelog", "verbose"), ("framelog", "info")),
        why="loudness metering and check",
    ),
    FilterNeed(
        "scale",
        ("w", "h", "force_original_aspect_ratio", "force_divisible_by"),
        (("force_original_aspect_ratio", "decrease"),),
    ),
    FilterNeed("pad", ("w", "h", "x", "y", "color")),
    FilterNeed("setsar"),
    FilterNeed("fps", ("fps",)),
    FilterNeed("format"),
    FilterNeed("tpad", ("stop_mode", "stop_duration"), (("stop_mode", "clone"),)),
    FilterNeed("loop", ("loop", "size", "start"), why="a card's picture repeated"),
    FilterNeed("setpts"),
    FilterNeed("aformat", ("channel_layouts",)),
    FilterNeed("pan", why="mixing down many channels in no known order"),
    FilterNeed("aresample"),
    FilterNeed("apad", ("whole_len",)),
    FilterNeed("atrim", ("end_sample",)),
    FilterNeed("asetpts"),
    FilterNeed("anullsrc", ("r", "cl")),
)


@dataclass(frozen=True)
class Offer:
    """What one ffmpeg binary says it can do."""

    version_text: str
    encoders: frozenset[str]
    muxers: frozenset[str]
    demuxers: frozenset[str]
    filters: frozenset[str]
    # filter -> option -> its named values
    filter_options: Mapping[str, Mapping[str, frozenset[str]]]


def version_text(version_output: str) -> str:
    """ "5.1.9-0+deb12u1" from the first line of ``ffmpeg -version``."""
    first = version_output.splitlines()[0] if version_output.strip() else ""
    if not first.startswith("ffmpeg version "):
        return ""
    return first.removeprefix("ffmpeg version ").split(" Copyright")[0].strip()


def version_number(text: str) -> tuple[int, int] | None:
    """(major, minor) of a release ("5.1.9-0+deb12u1", "n9.0.2-17-g2a571b6068", "7.1"); None for a build
    from a development snapshot ("N-113000-g..."), which carries no release number."""
    found = re.match(r"^n?(\d+)\.(\d+)", text)
    if found is None:
        found = re.match(r"^n?(\d+)(?:$|[^\d.])", text)
        return (int(found.group(1)), 0) if found else None
    return int(found.group(1)), int(found.group(2))


def parse_names(listing: str) -> frozenset[str]:
    """The names in an ``-encoders``, ``-muxers``, ``-demuxers`` or ``-filters`` listing.

    Each entry line is a column of flags (letters and dots), then the name (muxers: comma-separated
    names), then a description; the legend above the list has ``=`` in its second column.
    """
    names: set[str] = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[1] == "=" or not re.fullmatch(r"[A-Za-z.|]+", parts[0]):
            continue
        if parts[0].startswith("-"):
            continue
        # ffmpeg 7+ lists devices among demuxers with a second flag column (" D d lavfi").
        name = parts[2] if len(parts[1]) == 1 and len(parts) > 2 else parts[1]
        names.update(n for n in name.split(",") if n)
    return frozenset(names)


def parse_filter_options(full_help: str, wanted: Iterable[str]) -> dict[str, dict[str, frozenset[str]]]:
    """Options (and their named values) of the ``wanted`` filters, from ``ffmpeg -h full``.

    A filter's block starts with ``<name> AVOptions:``; options are indented by 2-3 spaces and followed
    by their type in angle brackets, named values by 4-5 spaces.
    """
    wanted = set(wanted)
    result: dict[str, dict[str, set[str]]] = {}
    current: dict[str, set[str]] | None = None
    option: str | None = None
    for line in full_help.splitlines():
        header = re.match(r"^(\S+?)(?:\([^)]*\))? AVOptions:$", line)
        if header:
            # ffmpeg 5.1 names the block of filters that share options "scale(2ref)".
            name = header.group(1)
            current = result.setdefault(name, {}) if name in wanted else None
            option = None
            continue
        if current is None:
            continue
        if not line.startswith(" "):
            current, option = None, None
            continue
        entry = re.match(r"^( +)(\S+)\s+(\[?<\w+>)?", line)
        if entry is None:
            continue
        indent, name, kind = len(entry.group(1)), entry.group(2), entry.group(3)
        if kind is not None and indent <= 3:
            option = name
            current.setdefault(option, set())
        elif option is not None and indent > 3:
            current[option].add(name)
    return {f: {o: frozenset(v) for o, v in opts.items()} for f, opts in result.items()}


def shortfalls(offer: Offer) -> list[str]:
    """What the binary lacks for the pipeline, one plain item each; empty when it can do everything."""
    missing: list[str] = []
    number = version_number(offer.version_text)
    if number is not None and number < MIN_VERSION:
        missing.append(
            f"version {offer.version_text} is older than {MIN_VERSION[0]}.{MIN_VERSION[1]}, "
            "the oldest supported"
        )
    missing += [f"encoder {name}" for name in ENCODERS if name not in offer.encoders]
    missing += [f"muxer {name}" for name in MUXERS if name not in offer.muxers]
    missing += [f"demuxer {name}" for name in DEMUXERS if name not in offer.demuxers]
    for need in FILTERS:
        if need.name not in offer.filters:
            missing.append(f"filter {need.name}" + (f" ({need.why})" if need.why else ""))
            continue
        options = offer.filter_options.get(need.name, {})
        missing += [
            f"option {option} of filter {need.name}" for option in need.options if option not in options
        ]
        missing += [
            f"value {value} of option {need.name}={option}"
            for option, value in need.values
            if option in options and value not in options[option]
        ]
    return missing


def offer_to_json(offer: Offer) -> dict[str, object]:
    return {
        "version_text": offer.version_text,
        "encoders": sorted(offer.encoders),
        "muxers": sorted(offer.muxers),
        "demuxers": sorted(offer.demuxers),
        "filters": sorted(offer.filters),
        "filter_options": {
            f: {o: sorted(v) for o, v in sorted(opts.items())}
            for f, opts in sorted(offer.filter_options.items())
        },
    }


def offer_from_json(data: Mapping[str, Any]) -> Offer:
    """The inverse of ``offer_to_json``; raises KeyError, TypeError or ValueError for a damaged entry."""
    options = data["filter_options"]
    if not isinstance(options, dict):
        raise TypeError("filter_options")
    return Offer(
        version_text=str(data["version_text"]),
        encoders=frozenset(map(str, data["encoders"])),
        muxers=frozenset(map(str, data["muxers"])),
        demuxers=frozenset(map(str, data["demuxers"])),
        filters=frozenset(map(str, data["filters"])),
        filter_options={f: {o: frozenset(v) for o, v in opts.items()} for f, opts in options.items()},
    )


def wanted_filters() -> tuple[str, ...]:
    return tuple(need.name for need in FILTERS)
