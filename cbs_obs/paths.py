"""Where cbs-obs keeps user files: models in the cache dir, config and token in the config dir.

Both can be overridden by environment variables so tests and portable installs stay isolated.
"""
from __future__ import annotations

import os
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
