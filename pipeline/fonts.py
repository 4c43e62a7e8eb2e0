"""The one font of the clip: DejaVu Sans, for the cards and the burned-in subtitles alike.

It must never depend on the fonts of the machine (an organiser's laptop and the archive years later
must render the same picture), and font files must not be copied into this repository. matplotlib, a
PyPI dependency, ships DejaVu Sans (free licence, with æ ø å) in ``mpl-data/fonts/ttf/``; we find
that folder without importing matplotlib, which takes a second.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from pipeline.errors import MissingToolError

FONT_NAME = "DejaVu Sans"  # the family name libass is asked for (force_style FontName=...)
REGULAR_FILE = "DejaVuSans.ttf"
BOLD_FILE = "DejaVuSans-Bold.ttf"
INSTALL_HINT = (
    "the font DejaVu Sans comes with the Python package matplotlib; "
    "install it with: pip install 'matplotlib>=3.7' (or reinstall hearing-pipeline)"
)


@functools.cache
def fonts_dir() -> Path:
    """The folder that holds the font files; libass gets it as ``fontsdir``."""
    try:
        spec = importlib.util.find_spec("matplotlib")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "mpl-data" / "fonts" / "ttf"
        if (folder / REGULAR_FILE).is_file() and (folder / BOLD_FILE).is_file():
            return folder
    what = "font DejaVu Sans not found" if locations else "font DejaVu Sans not found (no matplotlib)"
    raise MissingToolError(what, INSTALL_HINT)


def font_path(bold: bool = False, italic: bool = False) -> Path:
    if italic:
        return fonts_dir() / ("DejaVuSans-BoldOblique.ttf" if bold else "DejaVuSans-Oblique.ttf")
    return fonts_dir() / (BOLD_FILE if bold else REGULAR_FILE)


@functools.cache
def font_sha256(bold: bool = False) -> str:
    """SHA-256 of the font file: a matplotlib upgrade that changes the glyphs must invalidate caches."""
    return hashlib.sha256(font_path(bold).read_bytes()).hexdigest()


def font_identity() -> str:
    """One short string naming exactly the fonts used, for cache keys (both faces)."""
    return f"{FONT_NAME}:{font_sha256(False)[:16]}:{font_sha256(True)[:16]}"


@functools.cache
def drawable() -> frozenset[int]:
    """The characters DejaVu Sans can draw (its cmap, regular and bold alike): text with others would
    show empty boxes in the picture and the PDF."""
    from fontTools.ttLib import TTFont  # comes with matplotlib

    covered: set[int] = set()
    for bold in (False, True):
        with TTFont(str(font_path(bold)), lazy=True) as font:
            covered.update(font.getBestCmap() or {})
    return frozenset(covered)
