"""``cbs-obs obs setup``: create or update the OBS media source that plays the engine's MJPEG stream.

Settings follow what works with a live MJPEG stream in OBS's ffmpeg source: wall-clock
timestamps and no buffering (otherwise latency grows without bound), reconnect after 1 s.
"""
from __future__ import annotations

from ..errors import CbsError
from .bridge import ObsSettings, connect

SOURCE_KIND = "ffmpeg_source"


def media_settings(url: str) -> dict:
    return {"is_local_file": False, "input": url, "input_format": "mpjpeg", "buffering_mb": 0,
            "reconnect_delay_sec": 1, "restart_on_activate": False, "close_when_inactive": False,
            "clear_on_media_end": False, "hw_decode": False,
            "ffmpeg_options": "use_wallclock_as_timestamps=1 fflags=nobuffer"}


def setup_source(settings: ObsSettings, url: str, *, name: str = "cbs-obs", scene: str | None = None) -> str:
    """Returns what was done ('created' or 'updated'), for the user."""
    req = connect(settings)
    try:
        scene = scene or req.get_current_program_scene().current_program_scene_name
        scenes = [s["sceneName"] for s in req.get_scene_list().scenes]
        if scene not in scenes:
            raise CbsError(f"OBS has no scene {scene!r}; scenes: {', '.join(reversed(scenes))}")
        inputs = {i["inputName"]: i for i in req.get_input_list().inputs}
        if name in inputs:
            if inputs[name].get("inputKind") != SOURCE_KIND:
                raise CbsError(f"OBS already has a source {name!r} of another kind ({inputs[name].get('inputKind')}); "
                               "pick another name with --source-name")
            req.set_input_settings(name, media_settings(url), True)
            items = [i["sourceName"] for i in req.get_scene_item_list(scene).scene_items]
            if name not in items:
                req.create_scene_item(scene, name, True)
            return f"updated source {name!r} in scene {scene!r} -> {url}"
        req.create_input(scene, name, SOURCE_KIND, media_settings(url), True)
        return f"created source {name!r} in scene {scene!r} -> {url}"
    finally:
        try:
            req.disconnect()
        except Exception:
            pass
