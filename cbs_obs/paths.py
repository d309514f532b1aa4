"""Where cbs-obs keeps user files: models in the cache dir, config and token in the config dir.

Both can be overridden by environment variables so tests and portable installs stay isolated.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import platformdirs

APP = "cbs-obs"


def cache_dir() -> Path:
    """Model cache; ``CBS_OBS_CACHE`` overrides the platform default."""
    env = os.environ.get("CBS_OBS_CACHE")
    path = Path(env) if env else Path(platformdirs.user_cache_dir(APP))
    return path


def models_dir() -> Path:
    return cache_dir() / "models"


def config_dir() -> Path:
    """Config, presets and token; ``CBS_OBS_CONFIG`` overrides the platform default."""
    env = os.environ.get("CBS_OBS_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP))


def private_dir(path: Path) -> Path:
    """Make ``path`` (and parents) and keep it readable by this user only (0700 on POSIX)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        mode = path.stat().st_mode & 0o777
        if mode != 0o700:
            os.chmod(path, 0o700)
    return path


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder (mode 0600), fsync, rename over the old one, fsync the folder: a
    reader or a crash sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def clean_stale_temps(folder: Path, patterns=(".*.tmp",), older_than_s: float = 60.0) -> int:
    """Remove temp files that a killed write left behind; returns how many."""
    if not folder.is_dir():
        return 0
    removed, now = 0, time.time()
    for pattern in patterns:
        for p in folder.glob(pattern):
            try:
                if now - p.stat().st_mtime >= older_than_s:
                    p.unlink()
                    removed += 1
            except OSError:
                pass
    return removed
