"""Silero VAD for the store: the ONNX files shipped in the ``silero-vad`` wheel."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

# The sequence export runs a whole block of 512-sample windows in one call (bit-exact with
# the streaming model), so a long clip costs a few ONNX calls instead of one per 32 ms.
MODEL_FILE = "silero_vad_16k_sequence.onnx"
SAMPLING_RATE = 16000
WINDOW = 512
CONTEXT = 64


def build_silero_vad(target: Path) -> None:
    """Copy the Silero VAD sequence ONNX into ``target`` with a ``sonaray.json``."""
    try:
        source = Path(str(resources.files("silero_vad.data").joinpath(MODEL_FILE)))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            f"package silero_vad is not installed (needed for {MODEL_FILE}); "
            "pip install silero-vad==6.2.3"
        ) from exc
    if not source.is_file():
        raise FileNotFoundError(f"{source} (from the silero-vad wheel)")
    shutil.copyfile(source, target / MODEL_FILE)
    config = {
        "engine": "silero",
        "task": "frames",
        "model": MODEL_FILE,
        "sampling_rate": SAMPLING_RATE,
        "window": WINDOW,
        "context": CONTEXT,
    }
    (target / "sonaray.json").write_text(json.dumps(config, indent=2))
