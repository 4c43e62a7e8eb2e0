"""Archive: the raw recordings as received, in a BagIt 1.0 bag with their metadata and provenance.

``OUT/archive`` is what archivists keep for years, so every step is there to make it provable:

- Each recording is copied byte for byte (never moved, never re-encoded) to
  ``data/recordings/<its path in the meeting folder>``. SHA-512 and SHA-256 are computed once, from the
  bytes as they stream through the copy, and the SHA-256 is compared with the one ingest computed when
  the run began (a recording that changed in between is not archived under an old checksum).
- The bag is made for the Library of Congress ``bagit`` package, but not with ``bagit.make_bag``: that
  moves the files it bags, reads every payload byte a second time to hash it and writes
  ``BagIt-Version: 0.97``. Here ``bagit.txt`` (1.0) and the payload manifests are written from the
  digests already computed, and ``bag-info.txt`` and the tag manifests byte for byte as
  ``bagit.Bag.save`` writes them (``save`` itself changes the whole process's working directory).
  bagit opens the result, and ``bagit.Bag.validate`` (completeness and sizes; the metadata files hashed
  again; the recordings' digests are the ones computed from their bytes on the way) decides whether the
  new bag may replace the old one. ``hearing verify`` reads every byte back and checks every checksum.
- The bag is built in ``archive-staging-*`` in the output folder's ``work`` and swapped into place, so
  ``OUT/archive`` is always a complete bag: the old one or the new one.
- A re-run with the same recordings, meeting.yaml and withheld set leaves the bag alone. When only the
  provenance has something new (a transcription or a clip made later), the bag is remade around hard
  links to the recordings already in it: nothing is copied or hashed again, and the provenance keeps
  every earlier event.

Where each part lives: ``layout`` (paths in the bag), ``premis`` (the provenance model and its JSON),
``metadata`` (the tag and metadata files' contents, the withheld recordings), ``digests`` (copying with
digests), ``bag`` (``build_archive``: making the bag and swapping it in), ``verify`` (``hearing verify``).
The first three are pure, on data; ``digests``, ``bag`` and ``verify`` do the I/O. This package gives the
runner the names it uses.
"""

from __future__ import annotations

from pipeline.stages.archive.bag import ArchiveError, ArchiveResult, build_archive
from pipeline.stages.archive.metadata import withheld_from_archive
from pipeline.stages.archive.premis import (
    PIPELINE,
    ArchiveInfo,
    Event,
    Software,
    creation_event,
    derivation_events,
    meeting_info,
    model_software,
    transcription_event,
)
from pipeline.stages.archive.verify import VerifyResult, verify_archive
from pipeline.stages.archive.versions import first_archived

__all__ = [
    "PIPELINE",
    "ArchiveError",
    "ArchiveInfo",
    "ArchiveResult",
    "Event",
    "Software",
    "VerifyResult",
    "build_archive",
    "creation_event",
    "derivation_events",
    "first_archived",
    "meeting_info",
    "model_software",
    "transcription_event",
    "verify_archive",
    "withheld_from_archive",
]
