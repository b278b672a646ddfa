"""The SDK installs and imports on its own: no torch, no ray, no numpy dragged in."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"
HEAVY = ("torch", "ray", "numpy", "transformers")


def test_importing_the_sdk_loads_no_heavy_module():
    code = (
        "import sys, sonaray_client, sonaray_client.cli; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"


@pytest.mark.slow
def test_client_installs_alone_into_a_fresh_venv(tmp_path):
    # Build from a copy so the install leaves no build/ or egg-info in the work tree.
    source = tmp_path / "client"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr

    code = (
        "import importlib.util, sonaray_client; "
        "print(sonaray_client.__version__, sonaray_client.Sonaray.__name__); "
        f"print([m for m in {HEAVY!r} if importlib.util.find_spec(m)])"
    )
    shown = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["0.1.0 Sonaray", "[]"]

    cli = subprocess.run(
        [env / "bin" / "sonaray", "--help"], capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 0, cli.stderr
    assert "transcribe" in cli.stdout
