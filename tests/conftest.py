"""Shared fixtures: the ../shared test material (skipped with a reason when absent) and an
isolated model cache so tests never touch the user's files."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CBS_OBS_SHARED", ROOT.parent / "shared"))


def wait_for(pred, timeout: float = 30.0, interval: float = 0.03) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` passes (live systems settle at their own pace)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return False


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
    from cbs_obs.models import registry
    from cbs_obs.errors import DownloadError

    try:
        return registry.fetch("selfie-landscape", progress=False)
    except DownloadError as e:
        pytest.skip(f"cannot reach PyPI to fetch the person model: {e}")


@pytest.fixture(scope="session")
def dabnet_weights(isolated_dirs):
    from cbs_obs.models import registry

    return registry.fetch("dabnet-cityscapes", source_path=shared_file("models/DABNet_cityscapes.pth"))


@pytest.fixture(scope="session")
def portrait():
    from cbs_obs.io.images import read_image

    return read_image(shared_file("data/portrait/astronaut_360x640.png"))


@pytest.fixture(scope="session")
def person_segmenter(person_model):
    from cbs_obs.segment import create_segmenter

    return create_segmenter("person")


TOKEN = "test-token-" + "x" * 24
PRESETS = {"Blurred": "background=blur", "Green": "background=color:#00ff00", "Magenta": "background=color:#ff00ff"}


class Timeline:
    """Engine output hook: when did each frame leave, and what colour was its corner?"""

    name = "timeline"

    def __init__(self):
        self.frames: list[tuple[float, tuple[int, int, int]]] = []

    def start(self, *a):
        pass

    def send(self, frame, pixels):
        self.frames.append((time.monotonic(), tuple(int(v) for v in pixels[4, 4])))

    def close(self):
        pass


def start_control_engine(config_dir: Path, presets: dict[str, str]):
    """The live app users run (LiveApp, as `cbs-obs run demo` builds it) on a free port, with the given
    presets and no virtual camera; the engine gets ``server``, ``controller``, ``timeline`` and ``app``."""
    from cbs_obs.app import AppConfig, ControlSettings, LiveApp
    from cbs_obs.control.presets import Presets
    from cbs_obs.engine import EngineConfig, SourceOptions
    from cbs_obs.look import Look

    store = Presets(config_dir / "presets.json")
    for name, spec in presets.items():
        store.save(name, Look.from_specs([spec]))
    timeline = Timeline()
    app = LiveApp(AppConfig(engine=EngineConfig(source="demo", source_options=SourceOptions(loop=True)),
                            look=Look.from_specs(["background=grey"]), outputs=(),
                            control=ControlSettings(port=0, token=TOKEN, presets=store.path)),
                  extra_outputs=[timeline])
    app.start()
    eng = app.engine
    eng.server, eng.controller, eng.timeline, eng.app = app.server, app.controller, timeline, app
    return eng


@pytest.fixture(scope="module")
def live_engine(person_model, tmp_path_factory):
    eng = start_control_engine(tmp_path_factory.mktemp("cfg"), PRESETS)
    yield eng
    eng.app.stop()




class Thirds:
    """A segmenter with the person-face segmenter's classes at fixed places: background is the left third of
    the frame, face the middle third, body the right third. Panels are tested with it against a real engine
    without the face networks' cost; what `person` (= face + body) styles is then plain to see."""

    name, classes = "thirds", ("background", "face", "body")

    def segment(self, frame):
        import numpy as np

        from cbs_obs.segment import ClassProbs

        h, w = frame.shape[:2]
        probs = np.zeros((3, h, w), np.float32)
        for i in range(3):
            probs[i, :, i * w // 3:(i + 1) * w // 3] = 1.0
        return ClassProbs(probs, self.classes)


def thirds_colours(img) -> tuple:
    """BGR at the middle of each third of a frame (background, face, body)."""
    h, w = img.shape[:2]
    return tuple(tuple(int(v) for v in img[h // 2, (2 * i + 1) * w // 6]) for i in range(3))


def start_thirds_engine(cfg: Path):
    """The live app with the Thirds segmenter (classes background, face, body; group person), on a free port;
    stop it with ``engine.app.stop()``."""
    from cbs_obs.app import AppConfig, ControlSettings, LiveApp
    from cbs_obs.engine import EngineConfig, SourceOptions
    from cbs_obs.look import Look
    from cbs_obs.segment import SEGMENTERS, SegmenterKind, register_segmenter

    if "thirds" not in SEGMENTERS:
        register_segmenter(SegmenterKind("thirds", lambda weights, **o: Thirds(), lambda weights: Thirds.classes,
                                         "test: background | face | body by thirds"))
    engine = EngineConfig(source="demo", segmenter="thirds", source_options=SourceOptions(loop=True))
    app = LiveApp(AppConfig(engine=engine, look=Look(), outputs=(),
                            control=ControlSettings(port=0, token=TOKEN, presets=cfg / "presets.json")))
    app.start()
    app.engine.server, app.engine.controller, app.engine.app = app.server, app.controller, app
    return app.engine


@pytest.fixture(scope="module")
def thirds_engine(tmp_path_factory):
    """The live app with the Thirds segmenter (classes background, face, body; group person)."""
    from cbs_obs.segment import SEGMENTERS

    engine = start_thirds_engine(tmp_path_factory.mktemp("thirds"))
    yield engine
    engine.app.stop()
    SEGMENTERS.pop("thirds", None)
