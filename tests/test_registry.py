"""Model cards, the cache, checksums and downloads (against a local HTTP server)."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest

from cbs_obs.models import registry
from cbs_obs.models.download import download, fetch_zip_member
from cbs_obs.errors import ChecksumError, DownloadError, ModelMissingError, UnknownNameError
from tests.httpfiles import FileServer


def test_cards_describe_every_model():
    cards = registry.cards()
    assert {"selfie-landscape", "selfie-general", "dabnet-cityscapes", "multistyle26", "face-detection-short",
            "face-landmark"} <= set(cards)
    for c in cards.values():
        assert len(c.sha256) == 64 and c.licence and c.sources
        assert c.task in ("segmentation", "style", "detection", "landmarks")
    assert cards["dabnet-cityscapes"].classes[0] == "road" and len(cards["dabnet-cityscapes"].classes) == 19


def test_unknown_model_lists_names():
    with pytest.raises(UnknownNameError, match="valid models: arbitrary-predict"):
        registry.card("yolo")


def _wheel(member: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pkg/big_padding.bin", os.urandom(300_000))  # stored before: must not be fetched
        z.writestr(member, payload)
        z.writestr("pkg/after.txt", b"x" * 1000)
    return buf.getvalue()


@pytest.mark.parametrize("ranges", [True, False])
def test_fetch_zip_member_with_and_without_ranges(tmp_path, ranges):
    payload = os.urandom(50_000)
    wheel = _wheel("pkg/model.tflite", payload)
    with FileServer({"/w.whl": wheel}, ranges=ranges) as srv:
        out = fetch_zip_member(f"{srv.url}/w.whl", "pkg/model.tflite", tmp_path / "m.tflite",
                               hashlib.sha256(payload).hexdigest(), desc="m", progress=False)
        sent = srv.bytes_sent
    assert out.read_bytes() == payload
    if ranges:
        assert sent < len(wheel) / 2  # only the tail and the member came over the wire
    else:
        assert sent >= len(wheel)


def test_checksum_mismatch_leaves_nothing_behind(tmp_path):
    with FileServer({"/f": b"hello"}) as srv:
        with pytest.raises(ChecksumError, match="expected"):
            download(f"{srv.url}/f", tmp_path / "f.bin", "0" * 64, desc="f", progress=False)
        with pytest.raises(DownloadError, match="HTTP 404"):
            download(f"{srv.url}/missing", tmp_path / "g.bin", None, desc="g", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_member_is_reported(tmp_path):
    with FileServer({"/w.whl": _wheel("pkg/a", b"a")}) as srv:
        with pytest.raises(DownloadError, match="pkg/b not found"):
            fetch_zip_member(f"{srv.url}/w.whl", "pkg/b", tmp_path / "b", None, desc="b", progress=False)


def test_fetch_from_user_file_checks_sha(tmp_path):
    wrong = tmp_path / "DABNet_cityscapes.pth"
    wrong.write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        registry.fetch("dabnet-cityscapes", source_path=wrong)
    with pytest.raises(ModelMissingError, match="does not exist"):
        registry.fetch("dabnet-cityscapes", source_path=tmp_path / "nope.pth")


def test_missing_model_message_gives_fetch_command(monkeypatch, tmp_path):
    monkeypatch.setenv("CBS_OBS_CACHE", str(tmp_path))
    with pytest.raises(ModelMissingError, match="cbs-obs models fetch dabnet-cityscapes"):
        registry.ensure("dabnet-cityscapes")


def test_status_detects_corruption(monkeypatch, tmp_path):
    monkeypatch.setenv("CBS_OBS_CACHE", str(tmp_path))
    c = registry.card("selfie-general")
    assert registry.status("selfie-general") == ("missing", None)
    c.cached_path.parent.mkdir(parents=True)
    c.cached_path.write_bytes(b"corrupted")
    assert registry.status("selfie-general")[0] == "corrupt"
    with pytest.raises(ChecksumError, match="--force"):
        registry.fetch("selfie-general")


def test_packaged_models_verify():
    for name in ("multistyle26", "arbitrary-predict", "arbitrary-transform"):
        assert registry.status(name)[0] == "ok"


def test_corrupted_cached_model_is_caught_on_load_with_the_fix(monkeypatch, tmp_path, person_model):
    import shutil

    from cbs_obs.segment import create_segmenter

    monkeypatch.setenv("CBS_OBS_CACHE", str(tmp_path))
    c = registry.card("selfie-landscape")
    c.cached_path.parent.mkdir(parents=True)
    shutil.copyfile(person_model, c.cached_path)
    assert create_segmenter("person").classes == ("background", "person")
    data = bytearray(c.cached_path.read_bytes())
    data[5000] ^= 0xFF  # one flipped byte inside the weights
    c.cached_path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="cbs-obs models fetch selfie-landscape --force"):
        create_segmenter("person")
