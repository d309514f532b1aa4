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
