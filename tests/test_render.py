"""`hearing render`: corrections in OUT/edits make a new delivery, redoing only what they change; and the
approval gate of a form that requires every statement to be read by a person first.

End to end: the real engine on real speech, real ffmpeg, the files as delivered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import hearing, run_here, tree_digest
from test_laptop import run_report, sums_verify

pytestmark = pytest.mark.slow


@pytest.fixture
def meeting(real_media: Path, make_meeting):  # type: ignore[no-untyped-def]
    return make_meeting(
        {"jfk.flac": real_media / "en-jfk.flac", "talk.mp4": real_media / "en-talking-head.mp4"}
    )


def frame_at(clip: Path, ms: int) -> np.ndarray:
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time * 1000 >= ms:
                return frame.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError(f"no frame at {ms} ms in {clip.name}")


def docx_text(path: Path) -> str:
    import docx

    return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)


def test_a_corrected_word_and_cue_time_make_a_new_delivery_redoing_only_that_statement(
    meeting: Path, out_dir: Path, small_form: Path
) -> None:
    first = run_here("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    assert first.returncode == 0, first.stderr
    delivery = out_dir / "delivery"
    (clip,) = delivery.glob("*.mp4")
    before = {"srt": next(delivery.glob("*.srt")).read_text(encoding="utf-8")}
    old_frames = {ms: frame_at(clip, ms) for ms in (2500, 30_000)}
    jfk_id = next(s["id"] for s in run_report(out_dir)["statements"] if s["file"] == "jfk.flac")

    # The starting file holds what was heard, timed from the start of the recording.
    srt = out_dir / "edits" / "jfk.flac.srt"
    heard = srt.read_text(encoding="utf-8")
    assert "And so my fellow Americans," in heard and "Americans" in before["srt"]
    import pysubs2

    subs = pysubs2.SSAFile.from_string(heard, format_="srt")
    assert subs[1].plaintext.startswith("ask not what")
    subs[0].text = subs[0].text.replace("Americans", "citizens")
    subs[1].start += 130
    srt.write_text(subs.to_string("srt"), encoding="utf-8")
    old_cue_two = pysubs2.SSAFile.from_string(before["srt"], format_="srt")[1].start

    # The dry run's plan is the render's: the same steps under the same keys, and only this statement's
    # segment and the join to do.
    untouched = tree_digest(out_dir)
    planned = hearing("render", out_dir, "--dry-run", "--json")
    assert planned.exit_code == 0, planned.stderr
    assert tree_digest(out_dir) == untouched
    plan = json.loads(planned.stdout)["plan"]
    assert not plan["waiting"]
    to_do = [(p["stage"], p["statement"]) for p in plan["steps"] if not p["cached"] and p["key"]]
    assert to_do == [("render", jfk_id), ("join", None)]
    assert "to do" in hearing("render", out_dir, "--dry-run").stdout

    again = run_here("render", out_dir, "--quiet", "--zip")
    assert again.returncode == 0, again.stderr
    report = run_report(out_dir)
    # Packed for sending: every delivered file, byte for byte, with its checksums.
    import hashlib
    import zipfile

    packed = Path(report["delivery"]["zip"])
    assert packed == out_dir / f"{report['delivery']['name']}.zip"
    with zipfile.ZipFile(packed) as archive:
        assert archive.testzip() is None
        inside = {Path(n).name: archive.read(n) for n in archive.namelist()}
    assert set(inside) == {p.name for p in delivery.iterdir()}
    sums = dict(reversed(line.split("  ", 1)) for line in inside["SHA256SUMS"].decode("utf-8").splitlines())
    assert set(sums) == set(inside) - {"SHA256SUMS"}
    for file, digest in sums.items():
        assert hashlib.sha256(inside[file]).hexdigest() == digest, file
    made = [(s["stage"], s["statement"]) for s in report["stages"] if not s["cached"]]
    assert ("render", jfk_id) in made
    planned_keys = [(p["stage"], p["statement"], p["key"]) for p in plan["steps"] if p["key"]]
    ran_keys = [(s["stage"], s["statement"], s["key"]) for s in report["stages"] if s["key"]]
    assert planned_keys == ran_keys
    assert [m for m in made if m[0] in ("render", "card", "loudness")] == [("render", jfk_id)]
    # Nothing was probed, decoded or transcribed again.
    listened = [s for s in report["stages"] if s["stage"] in ("ingest", "speech-audio", "transcribe")]
    assert listened and all(s["cached"] for s in listened)
    assert report["qc"]["passed"] and sums_verify(delivery)
    assert [s["edited"] for s in report["statements"]] == [s["id"] == jfk_id for s in report["statements"]]

    delivered = pysubs2.load(str(next(delivery.glob("*.srt"))), encoding="utf-8")
    assert delivered[0].plaintext == "And so my fellow citizens," and delivered[1].start == old_cue_two + 130
    vtt = next(delivery.glob("*.vtt")).read_text(encoding="utf-8")
    assert "my fellow citizens," in vtt and "Americans" not in vtt
    for text in (
        next(delivery.glob("*-transkription.txt")).read_text(encoding="utf-8"),
        json.dumps(json.loads(next(delivery.glob("*-transkription.json")).read_text(encoding="utf-8"))),
        docx_text(next(delivery.glob("*-transkription.docx"))),
    ):
        assert "fellow citizens" in text and "Americans" not in text
    # The burned-in picture at the corrected cue changed; the other statement's is as it was.
    (clip,) = delivery.glob("*.mp4")
    new_frames = {ms: frame_at(clip, ms) for ms in old_frames}
    height = new_frames[2500].shape[0]
    assert np.abs(new_frames[2500][height * 2 // 3 :] - old_frames[2500][height * 2 // 3 :]).mean() > 0.5
    assert np.abs(new_frames[2500][: height // 2] - old_frames[2500][: height // 2]).mean() < 0.5
    assert np.array_equal(new_frames[30_000], old_frames[30_000])
    ass = [p for p in (out_dir / "work").rglob("*.ass") if "fellow citizens" in p.read_text(encoding="utf-8")]
    assert ass, "no burn-in subtitle file carries the correction"
    # Provenance names the command that made the new clip, and its checksum.
    provenance = json.loads((out_dir / "archive/data/metadata/provenance.json").read_text(encoding="utf-8"))
    made_clip = [e for e in provenance["events"] if e["eventType"] == "creation"]
    import hashlib

    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert any(digest in json.dumps(e) for e in made_clip)
    # ... and the command of the statement's new segment, made from its recording.
    (segment,) = [s for s in report["stages"] if s["stage"] == "render" and not s["cached"]]
    assert segment["part"] == "statement"
    (event,) = [e for e in made_clip if f"work/segments/{segment['key']}.mov" in json.dumps(e)]
    detail = event["eventDetailInformation"]["eventDetail"]
    assert detail.startswith("program=ffmpeg") and "command=" in detail and segment["key"] in detail
    assert "jfk.flac" in json.dumps(event["linkingObjectIdentifier"])

    # A later `hearing run` keeps the corrections: they are inputs, like meeting.yaml.
    rerun = run_here("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en")
    assert rerun.returncode == 0, rerun.stderr
    assert "corrections:" in rerun.stderr
    assert "fellow citizens" in next(delivery.glob("*.srt")).read_text(encoding="utf-8")
    assert not packed.exists(), "a ZIP of an earlier delivery is not left to be sent by mistake"


def test_a_form_that_requires_approval_delivers_only_approved_statements(
    meeting: Path, out_dir: Path, small_form: Path
) -> None:
    form = small_form.with_name("approval.yaml")
    form.write_text(small_form.read_text(encoding="utf-8") + "require_approval: true\n", encoding="utf-8")
    first = run_here("run", meeting, "--out", out_dir, "--form", form, "--language", "en")
    assert first.returncode == 6, first.stderr
    assert not (out_dir / "delivery").exists()
    assert list((out_dir / "draft").glob("*.mp4")), "the draft is there to look at"
    assert "hearing render" in first.stderr and "not approved" in first.stderr
    draft_txt = next((out_dir / "draft").glob("*-transkription.txt")).read_text(encoding="utf-8")
    assert draft_txt.count("Ikke godkendt") == 2

    # One approved is not enough.
    jfk_yaml = out_dir / "edits" / "jfk.flac.yaml"
    text = jfk_yaml.read_text(encoding="utf-8")
    approved = (
        text.replace("approved: false", "approved: true")
        .replace("approved_by: null", "approved_by: Ida Holm")
        .replace("approved_at: null", "approved_at: 2026-11-21 10:30")
    )
    jfk_yaml.write_text(approved, encoding="utf-8")
    assert run_here("render", out_dir, "--quiet").returncode == 6
    assert not (out_dir / "delivery").exists()

    (out_dir / "edits" / "talk.mp4.yaml").write_text(
        "approved: true\napproved_by: Ole Berg\n", encoding="utf-8"
    )
    done = run_here("render", out_dir, "--quiet")
    assert done.returncode == 0, done.stderr
    assert not (out_dir / "draft").exists()
    delivery = out_dir / "delivery"
    txt = next(delivery.glob("*-transkription.txt")).read_text(encoding="utf-8")
    assert "Godkendt af Ida Holm, 2026-11-21 10:30." in txt and "Godkendt af Ole Berg." in txt
    assert "Godkendt: 2 af 2 indlæg" in txt
    qc = json.loads((delivery / "qc-report.json").read_text(encoding="utf-8"))
    (approval,) = [c for c in qc["checks"] if c["check"] == "transcript.approved"]
    assert approval["status"] == "pass" and approval["measured"] == "2 of 2 approved"
    assert [s["approved"]["by"] for s in run_report(out_dir)["statements"]] == ["Ida Holm", "Ole Berg"]


def test_an_edit_file_a_person_got_wrong_is_exit_3_naming_it(
    meeting: Path, out_dir: Path, small_form: Path
) -> None:
    first = run_here("run", meeting, "--out", out_dir, "--form", small_form, "--language", "en", "--quiet")
    assert first.returncode == 0, first.stderr
    (out_dir / "edits" / "talk.mp4.yaml").write_text("approved: yes please\n", encoding="utf-8")
    result = run_here("render", out_dir)
    assert result.returncode == 3
    assert "talk.mp4.yaml" in result.stderr and "approved" in result.stderr
