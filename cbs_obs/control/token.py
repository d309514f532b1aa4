"""The API token: made on first run, kept in the user config dir with mode 0600, compared in constant time."""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from .. import paths


def token_path() -> Path:
    return paths.config_dir() / "token"


def load_or_create(rotate: bool = False) -> str:
    path = token_path()
    if path.exists() and not rotate:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 16:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def matches(expected: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
