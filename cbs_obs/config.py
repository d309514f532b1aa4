"""``cbs-obs run --config show.toml``: the run's options kept in a TOML file.

Keys are the long option names of ``cbs-obs run`` (``style-size`` or ``style_size``); ``source``
and ``assign`` (a list) are allowed too. The file becomes command-line options placed before the
real ones, so options typed on the command line win, and ``--assign`` typed there replaces the
file's assignments instead of adding to them. Every key and value goes through the same checks as
the command line; an unknown key is named with the valid ones.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import InputError, SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    out = {}
    for action in parser._actions:
        for opt in action.option_strings:
            if opt.startswith("--") and opt not in ("--help", "--config"):
                out[opt[2:]] = action
    return out


def config_argv(path: Path, run_parser: argparse.ArgumentParser, cli_argv: list[str]) -> list[str]:
    """The options a config file stands for, as argv tokens (to go before the user's own)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"config file {path} is not valid TOML ({e})") from None
    options = _options(run_parser)
    source, tokens = None, []
    user_assigns = any(a in ("-a", "--assign") or a.startswith("--assign=") for a in cli_argv)
    for key, value in data.items():
        name = key.replace("_", "-")
        if name == "source":
            source = str(value)
            continue
        action = options.get(name)
        if action is None:
            raise SettingsError(f"unknown key {key!r} in {path}; valid keys: source, {', '.join(sorted(options))}")
        if name == "assign":
            if user_assigns:
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                tokens += ["--assign", str(v)]
        elif action.nargs == 0:  # a flag
            if not isinstance(value, bool):
                raise SettingsError(f"{key} in {path} must be true or false")
            if value:
                tokens.append(f"--{name}")
        else:
            tokens += [f"--{name}", str(value)]
    return ([source] if source else []) + tokens
