"""The real recordings in tests/media: every one listed with its source and licence, every checksum as
published, and nothing the tests need lying outside the repository."""

from __future__ import annotations

import hashlib

from conftest import MEDIA


def test_every_recording_is_as_published_and_has_its_source_and_licence() -> None:
    sums = {}
    for line in (MEDIA / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    files = sorted(p.name for p in MEDIA.iterdir() if p.name not in ("README.md", "SHA256SUMS"))
    assert sorted(sums) == files, "SHA256SUMS lists every file of tests/media, and only those"
    for name, digest in sums.items():
        assert hashlib.sha256((MEDIA / name).read_bytes()).hexdigest() == digest, name
    readme = (MEDIA / "README.md").read_text(encoding="utf-8")
    for name in files:
        if name.endswith(".ref.txt"):
            continue
        stem = name.rsplit(".", 1)[0]
        assert name in readme or stem.startswith("da-nst-"), f"{name} is not in tests/media/README.md"
    for words in ("MIT", "public domain", "Unlicense", "Apache-2.0", "CC0", "da-nst-u0042012.wav"):
        assert words in readme
    size = sum((MEDIA / name).stat().st_size for name in files)
    assert size < 20 << 20, f"tests/media is {size} bytes: keep it well under 20 MB"
