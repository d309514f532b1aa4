"""Shared fixtures: the ../shared test material (skipped with a reason when absent) and an
isolated model cache so tests never touch the user's files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CBS_OBS_SHARED", ROOT.parent / "shared"))


def shared_file(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"test material {rel} not found under {SHARED} (set CBS_OBS_SHARED to the shared folder)")
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory):
    """Cache and config in a per-run folder; the person model is fetched once into it."""
    base = tmp_path_factory.mktemp("cbs")
    os.environ["CBS_OBS_CACHE"] = str(base / "cache")
    os.environ["CBS_OBS_CONFIG"] = str(base / "config")
    return base


@pytest.fixture(scope="session")
def person_model(isolated_dirs):
    """Fetches the selfie model from the mediapipe wheel on PyPI (the path users get on first run)."""
    from cbs_obs import registry
    from cbs_obs.errors import DownloadError

    try:
        return registry.fetch("selfie-landscape", progress=False)
    except DownloadError as e:
        pytest.skip(f"cannot reach PyPI to fetch the person model: {e}")


@pytest.fixture(scope="session")
def dabnet_weights(isolated_dirs):
    from cbs_obs import registry

    return registry.fetch("dabnet-cityscapes", source_path=shared_file("models/DABNet_cityscapes.pth"))


@pytest.fixture(scope="session")
def portrait():
    from cbs_obs.imageio import read_image

    return read_image(shared_file("data/portrait/astronaut_360x640.png"))


@pytest.fixture(scope="session")
def person_segmenter(person_model):
    from cbs_obs.segment import create_segmenter

    return create_segmenter("person")
