"""Where everything lives in the bag (``OUT/archive``) and, while it is made, beside it in ``OUT/work``."""

from __future__ import annotations

BAGIT_VERSION = "1.0"
# SHA-512 is RFC 8493's default; SHA-256 is what the rest of the pipeline (run.json, SHA256SUMS) uses.
ALGORITHMS = ("sha512", "sha256")
RECORDINGS = "data/recordings"
METADATA = "data/metadata"
MEETING_FILE = f"{METADATA}/meeting.yaml"
TECHNICAL = f"{METADATA}/technical"
WITHHELD_FILE = f"{METADATA}/withheld.json"
PROVENANCE_FILE = f"{METADATA}/provenance.json"
ARCHIVE_FOLDER = "archive"
STAGING_PREFIX = "archive-staging-"
ASIDE_PREFIX = "archive-old-"


def payload_path(relpath: str) -> str:
    return f"{RECORDINGS}/{relpath}"


def technical_path(relpath: str) -> str:
    return f"{TECHNICAL}/{relpath}.json"
