"""The API token: made on first run, kept in the user config dir (0700) with mode 0600, compared in
constant time. An existing file with looser modes is tightened on load; a rewrite is atomic."""
from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from .. import paths


def token_path() -> Path:
    return paths.config_dir() / "token"


def _tighten(path: Path) -> None:
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) != 0o600:
        os.chmod(path, 0o600)


def load_or_create(rotate: bool = False) -> str:
    path = token_path()
    paths.private_dir(path.parent)
    if path.exists() and not rotate:
        _tighten(path)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 16:
            return token
    token = secrets.token_urlsafe(24)
    paths.write_atomic(path, (token + "\n").encode())  # made with mode 0600
    _tighten(path)
    return token


def matches(expected: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
