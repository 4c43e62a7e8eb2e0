"""What a checkout delivers, as digests: the demo meeting and a meeting of the real recordings in
tests/media, each run from scratch, and the SHA-256 of every file it delivered (clip, subtitles,
transcripts, letters, page). Run it on two commits and compare the two files: a change meant to leave
behaviour alone (moving code) must leave every digest alone.

    python bench/same_bytes.py RESULT.json [--keep FOLDER]
    python bench/same_bytes.py AFTER.json --compare BEFORE.json

The DOCX and PDF documents carry the moment they were made, so for them the text they hold is compared
(python-docx's paragraphs and tables, pdftotext's text) instead of their bytes; where a file names
another's digest (SHA256SUMS, the page, the letter) or the moment of the check, that is replaced by a
placeholder; everything else is compared byte for byte. Both runs use the same engine and model (the
defaults), offline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
REAL = sorted(p.name for p in MEDIA.iterdir() if p.suffix in {".wav", ".mp3", ".flac", ".mp4", ".mov"})


def hearing(*args: str | Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pipeline", *map(str, args), "--quiet"]
    return subprocess.run(command, env=env, cwd=REPO, check=False).returncode


def document_text(path: Path) -> str:
    if path.suffix == ".docx":
        import docx

        document = docx.Document(str(path))
        cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
        return "\n".join([p.text for p in document.paragraphs] + cells)
    found = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return found.stdout.decode("utf-8")


MOMENT = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")


def digests(out: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in ("delivery", "draft", "participants"):
        files = sorted(p for p in (out / folder).rglob("*") if p.is_file())
        documents = {p for p in files if p.suffix in {".docx", ".pdf"}}
        # A file's digest named in another (SHA256SUMS, the page, the letter) is compared as its name: the
        # file itself is compared on its own line.
        made_at = {hashlib.sha256(p.read_bytes()).hexdigest().encode(): p.name.encode() for p in files}
        for path in files:
            name = path.relative_to(out).as_posix()
            if path in documents:
                text = document_text(path)
                for digest, document in made_at.items():
                    text = text.replace(digest.decode(), f"<{document.decode()}>")
                found[name + " (text)"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
                continue
            data = path.read_bytes()
            if path.suffix in {".txt", ".json", ".html", ""}:
                data = MOMENT.sub(b"<moment>", data)
                for digest, document in made_at.items():
                    data = data.replace(digest, b"<" + document + b">")
            found[name] = hashlib.sha256(data).hexdigest()
    return found


def compare(before: Path, after: Path) -> int:
    """The files whose digests differ between two results; 0 when none do."""
    a = json.loads(before.read_text(encoding="utf-8"))
    b = json.loads(after.read_text(encoding="utf-8"))
    differ = 0
    for meeting in sorted(set(a) | set(b)):
        ours, theirs = a.get(meeting, {}), b.get(meeting, {})
        if ours.get("exit") != theirs.get("exit"):
            print(f"{meeting}: exit {ours.get('exit')} before, {theirs.get('exit')} after")
            differ += 1
        names = set(ours.get("files", {})) | set(theirs.get("files", {}))
        for name in sorted(names):
            if ours.get("files", {}).get(name) != theirs.get("files", {}).get(name):
                print(f"{meeting}: {name} differs")
                differ += 1
        print(f"{meeting}: {len(names)} files compared")
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--compare", type=Path, help="only compare RESULT with this earlier result")
    given = parser.parse_args()
    if given.compare:
        sys.exit(1 if compare(given.compare, given.result) else 0)
    root = given.keep or Path(tempfile.mkdtemp(prefix="same-bytes-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        result: dict[str, object] = {}
        demo = root / "demo"
        shutil.rmtree(demo, ignore_errors=True)
        result["demo"] = {"exit": hearing("demo", "--out", demo), "files": digests(demo)}
        meeting = root / "real-meeting"
        shutil.rmtree(meeting, ignore_errors=True)
        meeting.mkdir()
        for name in REAL:
            shutil.copyfile(MEDIA / name, meeting / name)
        form = root / "lille.yaml"
        # The tests' small form, the picture as small as a form allows (as tests/test_corrections.py).
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import SMALL_FORM

        form.write_text(
            SMALL_FORM.replace("width: 640, height: 360", "width: 320, height: 180"), encoding="utf-8"
        )
        out = root / "real-out"
        shutil.rmtree(out, ignore_errors=True)
        code = hearing("run", meeting, "--out", out, "--form", form)
        result["real"] = {"exit": code, "files": digests(out)}
        given.result.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{sum(len(v['files']) for v in result.values())} files: {given.result}")  # type: ignore[index]
    finally:
        if given.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
