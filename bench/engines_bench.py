"""Benchmark: the two speech engines side by side on the same real recordings, in one run.

Speed is reported as real-time factor (seconds of work per second of audio) and as the ratio between the
engines, never as a pass/fail time: shared machines are noisy, ratios measured together are not. Each
engine runs in a child process of its own so its peak memory can be read separately.

Needs the real recordings in tests/media and the [openai] extra. Run: python bench/engines_bench.py
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
RECORDINGS = (("en-jfk.flac", "en"), ("da-udhr-preamble.mp3", "da"))
ENGINES = ("faster-whisper", "openai-whisper")


def child(engine: str) -> None:
    """In the child: load the engine once, transcribe each recording, print one JSON line."""
    sys.path.insert(0, str(REPO))
    from faster_whisper import decode_audio

    from pipeline.engines import load_engine
    from pipeline.engines.base import SAMPLE_RATE, TranscribeSettings

    started = time.perf_counter()
    loaded = load_engine(engine)
    load_s = time.perf_counter() - started
    rows = []
    for name, language in RECORDINGS:
        audio = decode_audio(str(MEDIA / name), sampling_rate=SAMPLE_RATE)
        started = time.perf_counter()
        result = loaded.transcribe(audio, TranscribeSettings(language=language))
        seconds = time.perf_counter() - started
        text = " ".join(s.text.strip() for s in result.segments)
        rows.append(
            {"recording": name, "audio_s": len(audio) / SAMPLE_RATE, "seconds": seconds, "text": text}
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": engine, "load_s": load_s, "peak_mb": peak_mb, "rows": rows}))


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    def words(text: str) -> str:
        return " ".join(re.findall(r"[\wæøåÆØÅ']+", text.lower().replace("-", " ")))

    return float(jiwer.wer(words(reference), words(hypothesis)))


def main() -> int:
    if not all((MEDIA / name).exists() for name, _ in RECORDINGS):
        print(f"the real recordings are missing from {MEDIA} (a folder of the repository)")
        return 1
    results = {}
    for engine in ENGINES:
        done = subprocess.run(
            [sys.executable, __file__, "--child", engine], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"{engine}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])

    print(f"{'engine':<16}{'recording':<24}{'audio s':>8}{'work s':>8}{'RTF':>7}{'WER':>7}")
    for engine, data in results.items():
        for row in data["rows"]:
            reference = (MEDIA / row["recording"]).with_suffix(".ref.txt").read_text(encoding="utf-8")
            wer = word_error_rate(reference, row["text"])
            rtf = row["seconds"] / row["audio_s"]
            print(
                f"{engine:<16}{row['recording']:<24}{row['audio_s']:>8.1f}{row['seconds']:>8.1f}"
                f"{rtf:>7.2f}{wer:>7.0%}"
            )
        load = f"{engine:<16}{'(model load)':<24}{'':>8}{data['load_s']:>8.1f}"
        print(f"{load}   peak memory {data['peak_mb']:.0f} MB")
    if len(results) == 2:
        fast = sum(r["seconds"] for r in results["faster-whisper"]["rows"])
        reference_engine = sum(r["seconds"] for r in results["openai-whisper"]["rows"])
        speed = reference_engine / fast
        print(f"faster-whisper is {speed:.1f}x as fast as openai-whisper on the same audio")
        wers = {e: overall_wer(d["rows"]) for e, d in results.items()}
        print(
            f"word error rate over both recordings: faster-whisper {wers['faster-whisper']:.1%}, "
            f"openai-whisper {wers['openai-whisper']:.1%}"
        )
        write_result(
            "engines",
            {
                "kind": "engines benchmark",
                "speed_ratio": speed,
                "wer": wers,
                "wer_gap": wers["faster-whisper"] - wers["openai-whisper"],
                "targets": {"speed_ratio": 3.0, "wer_gap": 0.02},
                "engines": results,
            },
        )
    return 0


def overall_wer(rows: list[dict[str, Any]]) -> float:
    """Errors over reference words, over every recording together."""
    import jiwer

    errors = words = 0
    for row in rows:
        reference = (MEDIA / row["recording"]).with_suffix(".ref.txt").read_text(encoding="utf-8")
        ref = " ".join(re.findall(r"[\wæøåÆØÅ']+", reference.lower().replace("-", " ")))
        hyp = " ".join(re.findall(r"[\wæøåÆØÅ']+", row["text"].lower().replace("-", " ")))
        measured = jiwer.process_words(ref, hyp)
        errors += measured.substitutions + measured.deletions + measured.insertions
        words += len(ref.split())
    return errors / max(words, 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        sys.exit(main())
