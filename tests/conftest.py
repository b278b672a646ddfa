"""Session-wide fixtures: the model store every test shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SONARAY_MODEL_STORE", str(REPO / "model_store"))
# Tests never reach the Hugging Face Hub, even on a machine that could.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def model_path():
    """Path of a store model, built on first use (a no-op when scripts/test built it)."""
    from deployments.models import store

    def _path(name: str) -> str:
        store.build_one(name)
        return str(store.store_root() / name)

    return _path
