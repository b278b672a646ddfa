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
    """Resolve a store name, a local directory or a Hub id to a local model directory.

    Every engine and builder resolves through here, companions (a vocoder, an x-vector
    model, speaker embeddings) included, so every one takes the same three kinds of name.
    A Hub id (``org/name`` or ``org/name@revision``) needs ``SONARAY_HUB=1``; it is fetched
    by ``huggingface_hub.snapshot_download``, which reuses ``HF_HUB_CACHE`` and, under
    ``HF_HUB_OFFLINE=1``, reads that cache alone.
    """
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
    if not hub_allowed():
        raise ModelNotFound(
            f"model {ref!r} is neither a store model nor a local directory, and Hub ids are "
            f"off (set SONARAY_HUB=1); store models: {', '.join(sorted(CATALOG))}",
            param="model",
        )
    return ResolvedModel(ref, hub_snapshot(ref), None, engine_kind(ref, engine))


# Weights for other frameworks that many repos carry beside the PyTorch ones.
OTHER_FRAMEWORKS = ["*.h5", "*.msgpack", "*.ot", "*.tflite", "flax_model*", "tf_model*", "onnx/*"]


def split_hub_id(ref: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); no ``@`` means the default branch."""
    repo, _, revision = ref.partition("@")
    return repo, revision or None


def hub_snapshot(ref: str) -> str:
    """The local snapshot directory of a Hub id, fetched (or found in the cache) by
    huggingface_hub; a typed error naming the id when it is not there."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, revision = split_hub_id(ref)
    try:
        return snapshot_download(repo, revision=revision, ignore_patterns=OTHER_FRAMEWORKS)
    except (LocalEntryNotFoundError, HfHubHTTPError, ValueError) as exc:
        raise ModelNotFound(f"cannot fetch {ref!r} from the Hugging Face Hub: {exc}") from exc


def config_file(ref: str) -> Path | None:
    """A local directory's or Hub id's ``config.json``, without fetching any weights.

    None for store models (the catalog vouches for them) and for repos without one.
    """
    if ref in CATALOG:
        return None
    local = Path(ref).expanduser()
    if local.is_dir():
        return local / "config.json"
    if not hub_allowed():
        resolve(ref)  # raises, naming the store models
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    repo, revision = split_hub_id(ref)
    try:
        return Path(hf_hub_download(repo, "config.json", revision=revision))
    except EntryNotFoundError:
        return None
    except (LocalEntryNotFoundError, HfHubHTTPError, ValueError) as exc:
        raise ModelNotFound(f"cannot fetch {ref!r} from the Hugging Face Hub: {exc}") from exc


def hub_allowed() -> bool:
    """Hub ids are accepted only when ``SONARAY_HUB=1`` says so."""
    return os.environ.get("SONARAY_HUB", "0") in {"1", "true", "TRUE"}


def built_at(ref: str, root: str | Path | None = None) -> int | None:
    """Unix time the store built ``ref`` (its marker's mtime), or the local folder's time;
    None for a Hub id. The same on every replica that reads one store."""
    path = store_root(root) / ref / MARKER if ref in CATALOG else Path(ref).expanduser()
    try:
        return int(path.stat().st_mtime)
    except OSError:
        return None


def check_ref(ref: str) -> None:
    """Config-time check of a model reference (no build needed); raises ConfigError."""
    if ref in CATALOG or Path(ref).expanduser().is_dir() or hub_allowed():
        return
    raise ConfigError(
        f"unknown model {ref!r}: not a store model ({', '.join(sorted(CATALOG))}), "
        "not a local directory, and Hub ids are off (set SONARAY_HUB=1 to allow them)"
    )
