"""CTranslate2 copies of transformers Whisper models: converted once, cached in the store.

A CTranslate2 directory (``model.bin`` beside ``config.json``) is used as it is. Any other
reference (a transformers directory or a Hub id) goes through ctranslate2's own
``TransformersConverter`` the first time it is loaded; the result sits under
``<store>/.ct2-cache/`` keyed by the source's files and the ctranslate2 version, so a
restart reuses it and a changed checkpoint is converted again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

from deployments.errors import ModelNotFound
from deployments.models.store import store_root

logger = logging.getLogger("sonaray.models")

CACHE_DIR = ".ct2-cache"


def is_ct2_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / "model.bin").is_file() and (p / "config.json").is_file()


def _fingerprint(source: str) -> str:
    """What the conversion depends on: the source's files (or Hub id) and ctranslate2.

    Config files count by content, weights by size and modification time, so a copied
    checkpoint (``shutil.copytree`` keeps times) reuses its original's conversion.
    """
    import ctranslate2

    digest = hashlib.sha256(ctranslate2.__version__.encode())
    local = Path(source)
    if not local.is_dir():
        digest.update(source.encode())
        return digest.hexdigest()[:16]
    for f in sorted(local.iterdir()):
        if not f.is_file():
            continue
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}".encode())
        digest.update(f.read_bytes() if stat.st_size < 1 << 20 else str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def ct2_model_dir(source: str | Path, root: str | Path | None = None) -> Path:
    """The CTranslate2 directory for ``source``, converting (once) when it is not one."""
    if is_ct2_dir(source):
        return Path(source)
    import ctranslate2

    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(source)).name or "model")
    target = store_root(root) / CACHE_DIR / f"{name}-{_fingerprint(str(source))}"
    if is_ct2_dir(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    logger.info("converting %s to CTranslate2 in %s", source, target)
    try:
        ctranslate2.converters.TransformersConverter(str(source)).convert(str(partial), force=True)
    except (OSError, ValueError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelNotFound(
            f"cannot convert {source} to CTranslate2: {exc}", param="model"
        ) from exc
    try:
        os.replace(partial, target)
    except OSError:  # another replica finished the same conversion first
        shutil.rmtree(partial, ignore_errors=True)
    return target
