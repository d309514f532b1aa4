"""What the OBS panel needs besides OBS itself: finding cbs-obs, its token, talking to its API, and
turning the panel's controls into style specs and back.

Standard library only: OBS embeds its own Python, which does not have cbs-obs's dependencies.
Nothing here calls OBS, so all of it runs (and is tested) outside OBS too.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_PORT = 8765
HERE = Path(__file__).resolve().parent
LOCATION_FILE = HERE / "cbs_obs_panel.json"  # written by `cbs-obs obs plugin-path`
NO_STYLE = "none"
PICTURE_STYLE = "picture (painting)"
PICTURE_REPLACE = "picture (replace)"
PARAM_STYLES = {"blur": ("blur", 21), "pixelate": ("pixelate", 16)}  # family -> (control suffix, default)


def default_port() -> int:
    """8765, or CBS_OBS_PORT (two OBS instances on one machine, each with its own engine)."""
    try:
        return int(os.environ.get("CBS_OBS_PORT", DEFAULT_PORT))
    except ValueError:
        return DEFAULT_PORT


# -- where cbs-obs lives ----------------------------------------------------------------------------
def read_location() -> dict:
    """What `cbs-obs obs plugin-path` recorded beside this script (the executable, the config dir)."""
    try:
        data = json.loads(LOCATION_FILE.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _exe_names() -> list[str]:
    return ["cbs-obs.exe", "cbs-obs"] if sys.platform == "win32" else ["cbs-obs"]


def candidate_executables(location: dict | None = None) -> list[Path]:
    """Places a cbs-obs console script may be, best first.

    1. the path `cbs-obs obs plugin-path` wrote beside this script;
    2. the environment this script is installed in (site-packages/cbs_obs/plugin -> ../../../../bin);
    3. PATH; 4. the usual per-user places (pipx, ~/.local/bin, ~/.venv, ~/venv).
    """
    location = read_location() if location is None else location
    out: list[Path] = []
    if location.get("cbs_obs"):
        out.append(Path(location["cbs_obs"]))
    out += installed_alongside(HERE)
    for n in _exe_names():
        found = shutil.which(n)
        if found:
            out.append(Path(found))
    home = Path.home()
    for base in (home / ".local/pipx/venvs/cbs-obs", home / ".local/share/pipx/venvs/cbs-obs",
                 home / ".local", home / ".venv", home / "venv", home / ".virtualenvs/cbs-obs"):
        for sub in ("bin", "Scripts"):
            out += [base / sub / n for n in _exe_names()]
    seen, unique = set(), []
    for p in out:
        if str(p) not in seen:
            seen.add(str(p))
            unique.append(p)
    return unique


def installed_alongside(here: Path) -> list[Path]:
    """cbs-obs of the environment this script is installed in: <env>/lib/pythonX.Y/site-packages/cbs_obs/plugin
    -> <env>/bin/cbs-obs (Windows: <env>/Lib/site-packages/... -> <env>/Scripts/cbs-obs.exe)."""
    for parent in here.parents:
        if parent.name.lower() in ("lib", "lib64"):
            env = parent.parent
            return [env / sub / n for sub in ("bin", "Scripts") for n in _exe_names()]
    return []


def find_executable(location: dict | None = None) -> Path | None:
    for p in candidate_executables(location):
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def config_dir(location: dict | None = None) -> Path:
    """Where cbs-obs keeps its token: the same rules as cbs_obs/paths.py (CBS_OBS_CONFIG, else the platform's)."""
    env = os.environ.get("CBS_OBS_CONFIG")
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData/Local")) / "cbs-obs" / "cbs-obs"
    if sys.platform == "darwin":
        return Path.home() / "Library/Application Support/cbs-obs"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "cbs-obs"


def read_token(location: dict | None = None) -> str:
    """The API token the engine made (read from its file, so nothing is pasted or stored in OBS)."""
    try:
        return (config_dir(location) / "token").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


# -- the engine's HTTP API ---------------------------------------------------------------------------
class EngineClient:
    """Blocking calls; returns (status, data) and never raises for network trouble (status 0 then)."""

    def __init__(self, url: str, token_fn=read_token, timeout: float = 2.0):
        self.url, self.token_fn, self.timeout = url.rstrip("/"), token_fn, timeout

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None, content_type=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        token = self.token_fn()
        if token:  # every call: an engine listening beyond 127.0.0.1 wants it for reading too
            req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", content_type or "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("error", "")
            except Exception:
                detail = ""
            return e.code, {"error": detail or f"HTTP {e.code}"}
        except Exception as e:  # refused, timeout: the engine is not there
            return 0, {"error": f"engine not reachable at {self.url} ({type(e).__name__})"}


# -- panel controls <-> style specs -------------------------------------------------------------------
def parse_scene_table(text: str) -> dict:
    """'Scene=Preset' lines -> {scene: preset}; blank lines and '#' comments are skipped."""
    table = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        scene, _, preset = line.rpartition("=")
        if scene.strip() and preset.strip():
            table[scene.strip()] = preset.strip()
    return table


def format_scene_table(table: dict) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(table.items()))


def style_choices(styles: list) -> list[str]:
    """The style list the panel offers: 'none' once, every style the engine accepts bare, the picture styles.

    Families that need an argument the user has not given ('image' without a picture) are not offered
    bare; their argument is a control of its own (radius, colour, picture).
    """
    names = [NO_STYLE]
    for s in styles:
        name = s.get("name") if isinstance(s, dict) else s
        kind = s.get("kind") if isinstance(s, dict) else None
        if not name or name in names or name in ("image", "style-image") or kind in ("upload", "upload-replace"):
            continue
        names.append(name)
    return names + [PICTURE_STYLE, PICTURE_REPLACE]


def colour_to_hex(abgr: int) -> str:
    """OBS colours are 0xAABBGGRR integers."""
    r, g, b = abgr & 0xFF, (abgr >> 8) & 0xFF, (abgr >> 16) & 0xFF
    return f"#{r:02x}{g:02x}{b:02x}"


def hex_to_colour(text: str) -> int | None:
    text = text.strip().lstrip("#")
    if len(text) != 6:
        return None
    try:
        r, g, b = int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        return None
    return 0xFF000000 | (b << 16) | (g << 8) | r


def upload_name(cls: str) -> str:
    """The engine-side name of a class's picture (letters, digits, '_' or '-', at most 40)."""
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in cls)
    return ("obs-" + safe)[:40]


def spec_from_controls(cls: str, get) -> str | None:
    """A class's style spec from its controls; ``get(name)`` returns a control's value.

    None means 'no style'. Picture styles name the uploaded copy of the chosen file.
    """
    style = get("style_" + cls) or NO_STYLE
    if style == NO_STYLE:
        return None
    if style in PARAM_STYLES:
        value = get("param_" + cls)
        return f"{style}:{int(value)}" if value else style
    if style == "color":
        colour = get("colour_" + cls)
        return "color:" + colour_to_hex(int(colour)) if colour is not None else "color"
    if style in (PICTURE_STYLE, PICTURE_REPLACE):
        if not get("picture_" + cls):
            return None
        return ("style-image:@" if style == PICTURE_STYLE else "image:@") + upload_name(cls)
    return style


def controls_from_spec(spec: str | None) -> dict:
    """The reverse: which control values show a spec the engine reports ({suffix: value})."""
    if not spec or spec == NO_STYLE:
        return {"style": NO_STYLE}
    family, _, arg = spec.partition(":")
    if family in PARAM_STYLES:
        try:
            return {"style": family, "param": int(float(arg)) if arg else PARAM_STYLES[family][1]}
        except ValueError:
            return {"style": family}
    if family in ("color", "colour"):
        colour = hex_to_colour(arg if arg.startswith("#") else "#00ff00")  # the engine's default colour is green
        return {"style": "color", **({"colour": colour} if colour is not None else {})}
    if family == "style-image":
        return {"style": PICTURE_STYLE}
    if family == "image":
        return {"style": PICTURE_REPLACE}
    return {"style": spec}


def normalize_spec(spec: str) -> str:
    """A spec as the panel's controls would write it (picture styles stay as they are)."""
    if spec.startswith(("image:", "style-image:")):
        return spec
    controls = {k + "_x": v for k, v in controls_from_spec(spec).items()}
    return spec_from_controls("x", controls.get) or spec


def look_names(state: dict | None) -> list[str]:
    """The names a look may style, as the panel lists them: the segmenter's classes, then its groups
    (``person`` = face + body with the person-face segmenter)."""
    state = state or {}
    classes = list(state.get("classes") or [])
    return classes + [g for g in (state.get("groups") or {}) if g not in classes]


def look_specs(look: dict) -> dict:
    """{class: (spec, strength)} from the engine's look JSON."""
    return {a["cls"]: (a["style"], float(a.get("strength", 1.0))) for a in (look or {}).get("assignments", [])}


def status_lines(state: dict | None, *, error: str = "", supervisor: str = "") -> list[str]:
    """The engine's truth, a short line each: running or not, fps, each styled class, preset, last error.

    Short lines because OBS's Scripts window opens narrow (its properties view about 280 px wide): the panel
    shows one per row (panel_text), the Script Log gets them on one line (status_line)."""
    if not state:
        lines = ["engine stopped" + (f": {_short(error)}" if error else "")]
        return lines + ([supervisor] if supervisor else [])
    look = state.get("look") or {}
    stats = state.get("stats") or {}
    lines = ["engine running", f"{stats.get('fps', 0):.1f} fps, source {stats.get('source', '?')}"]
    lines += [f"{c} {s} {st:.0%}" for c, (s, st) in look_specs(look).items()] or ["no class styled"]
    if not look.get("enabled", True):
        lines.append("styling off")
    lines.append(f"preset {state.get('preset') or '-'}")
    last = error or stats.get("last_error") or ""
    if last.startswith("no virtual camera"):  # OBS plays the MJPEG stream; the virtual camera is not needed here
        last = error
    if last:
        lines.append(f"last error: {_short(last)}")
    return lines + ([supervisor] if supervisor else [])


def status_line(state: dict | None, *, error: str = "", supervisor: str = "") -> str:
    """The same on one line, for the Script Log."""
    return "; ".join(status_lines(state, error=error, supervisor=supervisor))


def panel_text(lines: list[str], width: int = 24) -> str:
    """Lines for an OBS info text: one per row, and words longer than ``width`` (paths, URLs) given places
    to break (a zero-width space), since Qt wraps only between words and one long word widens the whole panel."""
    def breakable(word: str) -> str:
        return word if len(word) <= width else "\u200b".join(word[i:i + width] for i in range(0, len(word), width))
    return "\n".join(" ".join(breakable(w) for w in line.split(" ")) for line in lines)


def _short(text: str, limit: int = 160) -> str:
    """A long message cut for the status line (the Script Log has it whole)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
