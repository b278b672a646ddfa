"""The offline model store: build local model directories, record them, resolve references.

A model reference is a store name (``whisper-tiny.en``), a local directory, or a Hub id.
The store lives in ``$SONARAY_MODEL_STORE`` (default ``<repo>/model_store``) and keeps a
``manifest.json`` of what is built. Builds are idempotent: a model whose directory holds
a ``.sonaray-built`` marker with the current recipe version is skipped.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from deployments.errors import ConfigError, ModelNotFound
from deployments.models.catalog import CATALOG, ModelSpec

MARKER = ".sonaray-built"
# A builder may leave figures about what it built here (a trained model's held-out accuracy).
METRICS = "build_metrics.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SONARAY_")

    model_store: Path = REPO_ROOT / "model_store"


def store_root(root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else StoreSettings().model_store


class BuildError(RuntimeError):
    """A model could not be built; the message names the missing package or file."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model reference points and which engine serves it."""

    name: str
    path: str
    task: str | None
    engine: str


def _marker_ok(path: Path, spec: ModelSpec) -> bool:
    marker = path / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("version") == spec.version
    except json.JSONDecodeError:
        return False


def is_built(name: str, root: str | Path | None = None) -> bool:
    spec = CATALOG[name]
    return _marker_ok(store_root(root) / name, spec)


def _check_requirements(spec: ModelSpec) -> None:
    for module in spec.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise BuildError(
                f"cannot build {spec.name}: Python package providing '{module}' is not installed "
                f"({exc}); install the project with `pip install -e .`"
            ) from exc


def _builder(spec: ModelSpec) -> Callable[[Path], None]:
    module, func = spec.builder.split(":")
    return getattr(importlib.import_module(module), func)


def build_one(name: str, root: str | Path | None = None, *, force: bool = False) -> bool:
    """Build one store model; return False when it was already built (a no-op)."""
    if name not in CATALOG:
        raise BuildError(f"unknown store model {name!r}; known: {', '.join(sorted(CATALOG))}")
    spec = CATALOG[name]
    base = store_root(root)
    target = base / name
    if not force and _marker_ok(target, spec):
        return False
    _check_requirements(spec)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.perf_counter()
    try:
        _builder(spec)(tmp)
    except FileNotFoundError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError(f"cannot build {name}: missing file {exc.filename or exc}") from exc
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = round(time.perf_counter() - started, 2)
    (tmp / MARKER).write_text(json.dumps({"version": spec.version, "seconds": seconds}))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    _write_manifest(base)
    return True


def build(
    names: Iterable[str] | None = None,
    root: str | Path | None = None,
    *,
    force: bool = False,
    on_progress: Callable[[str, str], None] | None = None,
) -> dict[str, bool]:
    """Build several store models (all by default); return name -> whether it was built."""
    selected = list(names) if names else list(CATALOG)
    done: dict[str, bool] = {}
    for name in selected:
        if on_progress:
            on_progress(name, "building")
        done[name] = build_one(name, root, force=force)
        if on_progress:
            on_progress(name, "built" if done[name] else "up to date")
    return done


def _write_manifest(base: Path) -> None:
    entries = {}
    for name, spec in CATALOG.items():
        path = base / name
        if _marker_ok(path, spec):
            built = json.loads((path / MARKER).read_text())
            entries[name] = {**asdict(spec), "path": str(path), "build_seconds": built["seconds"]}
            if (path / METRICS).is_file():
                entries[name]["metrics"] = json.loads((path / METRICS).read_text())
    (base / "manifest.json").write_text(json.dumps(entries, indent=2, sort_keys=True))


def manifest(root: str | Path | None = None) -> dict[str, dict]:
    path = store_root(root) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def engine_kind(ref: str, engine: str | None = None) -> str:
    """The engine kind a reference loads with: the one asked for, the store's, or transformers."""
    if engine:
        return engine
    return CATALOG[ref].engine if ref in CATALOG else "transformers"


def resolve(
    ref: str, root: str | Path | None = None, *, engine: str | None = None
) -> ResolvedModel:
    """Resolve a store name, a local directory or a Hub id to a loadable model."""
    if ref in CATALOG:
        spec = CATALOG[ref]
        path = store_root(root) / ref
        if not _marker_ok(path, spec):
            raise ModelNotFound(
                f"store model {ref!r} is not built in {path.parent}; run "
                f"`sonaray models build --only {ref}`",
                param="model",
            )
        return ResolvedModel(ref, str(path), spec.task, engine_kind(ref, engine))
    local = Path(ref).expanduser()
    if local.is_dir():
        return ResolvedModel(local.name, str(local.resolve()), None, engine_kind(ref, engine))
    if _hub_offline():
        raise ModelNotFound(
            f"model {ref!r} is neither a store model nor a local directory, and the Hugging Face "
            f"Hub is offline; store models: {', '.join(sorted(CATALOG))}",
            param="model",
        )
    return ResolvedModel(ref, ref, None, engine_kind(ref, engine))


def built_at(ref: str, root: str | Path | None = None) -> int | None:
    """Unix time the store built ``ref`` (its marker's mtime), or the local folder's time;
    None for a Hub id. The same on every replica that reads one store."""
    path = store_root(root) / ref / MARKER if ref in CATALOG else Path(ref).expanduser()
    try:
        return int(path.stat().st_mtime)
    except OSError:
        return None


def _hub_offline() -> bool:
    """True unless the Hub is explicitly allowed (SONARAY_HUB=1) and not forced offline."""
    if os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true", "TRUE"}:
        return True
    return os.environ.get("SONARAY_HUB", "0") not in {"1", "true", "TRUE"}


def check_ref(ref: str) -> None:
    """Config-time check of a model reference (no build needed); raises ConfigError."""
    if ref in CATALOG or Path(ref).expanduser().is_dir() or not _hub_offline():
        return
    raise ConfigError(
        f"unknown model {ref!r}: not a store model ({', '.join(sorted(CATALOG))}), "
        "not a local directory, and the Hub is offline (set SONARAY_HUB=1 to allow Hub ids)"
    )
