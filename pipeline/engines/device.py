"""Where the speech engine runs: on a CUDA GPU where CTranslate2 finds one (float16), else on the CPU
(int8), unless the organiser says otherwise (``--device``, or the ``HEARING_DEVICE`` setting).

openai-whisper stays on the CPU in float32: its transcription is made with fp16 off, and the GPU is what
faster-whisper is for. Asking it for cuda is refused rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from pipeline.errors import ModelError, UsageError

DEVICES = ("auto", "cpu", "cuda")
SETTING = "HEARING_DEVICE"


class DeviceChoice(NamedTuple):
    device: str  # "cpu" or "cuda"
    compute_type: str  # CTranslate2's ("int8", "float16"), or "float32" for openai-whisper


CPU_INT8 = DeviceChoice("cpu", "int8")
CUDA_FLOAT16 = DeviceChoice("cuda", "float16")
OPENAI_CPU = DeviceChoice("cpu", "float32")

# What each engine ran on before the device was a choice: every transcript cached until then was made
# so, and its key (which does not name the device) stays valid for that choice only.
_UNNAMED_IN_KEYS = {"faster-whisper": CPU_INT8, "openai-whisper": OPENAI_CPU}


def _allowed() -> str:
    return ", ".join(DEVICES)


def asked_device(given: str | None, environ: Mapping[str, str]) -> str:
    """What the organiser asked for: ``--device`` where given, else ``HEARING_DEVICE`` (empty is unset),
    else auto. A value outside DEVICES is a UsageError naming the allowed ones and where it came from."""
    if given is not None:
        value, where = given, "--device"
    else:
        value, where = environ.get(SETTING) or "auto", SETTING
    if value not in DEVICES:
        raise UsageError(f"{where} {value!r} is not a device; choose one of {_allowed()}")
    return value


def choose_device(asked: str, cuda_devices: int, engine: str = "faster-whisper") -> DeviceChoice:
    """The device and compute type a run uses. Pure: ``cuda_devices`` is what CTranslate2 counts.

    auto: cuda in float16 where a CUDA device is found, else the CPU in int8; cpu: the CPU in int8;
    cuda: cuda in float16, and where there is none a ModelError (exit 4) before any work."""
    if asked not in DEVICES:
        raise UsageError(f"device {asked!r} is not a device; choose one of {_allowed()}")
    if engine == "openai-whisper":
        if asked == "cuda":
            raise UsageError(
                "--device cuda: openai-whisper runs on the CPU here; use --engine faster-whisper for the "
                "GPU, or --device cpu"
            )
        return OPENAI_CPU
    if asked == "cpu":
        return CPU_INT8
    if cuda_devices > 0:
        return CUDA_FLOAT16
    if asked == "cuda":
        raise ModelError(
            "--device cuda: CTranslate2 finds no CUDA device on this computer",
            f"run with --device cpu or auto (or set {SETTING}=auto)",
        )
    return CPU_INT8


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use; 0 where it cannot tell (no driver, no CUDA build)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # ImportError, or a CUDA runtime that fails to initialise: no device to use
        return 0


def for_engine(engine: str, asked: str) -> DeviceChoice:
    """``choose_device`` with the devices this computer has (asked only where the answer matters)."""
    counts = engine == "faster-whisper" and asked != "cpu"
    return choose_device(asked, cuda_device_count() if counts else 0, engine)


def key_part(engine: str, choice: DeviceChoice) -> str | None:
    """The device in the transcript and alignment keys: the words differ between int8 on the CPU and
    float16 on a GPU. None for what the engine always ran on before, so those caches keep their keys."""
    if _UNNAMED_IN_KEYS.get(engine) == choice:
        return None
    return f"device {choice.device} {choice.compute_type}"
