"""``cbs-obs obs setup``: create or update the OBS media source that plays the engine's MJPEG stream.

Settings follow what works with a live MJPEG stream in OBS's ffmpeg source: wall-clock
timestamps and no buffering (otherwise latency grows without bound), reconnect after 1 s. The
source is fitted to the canvas (scaled inside it, centred), whatever the stream's size.
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


def fit_to_canvas(req, scene: str, name: str) -> None:
    video = req.get_video_settings()
    item = req.get_scene_item_id(scene, name).scene_item_id
    req.set_scene_item_transform(scene, item, {
        "positionX": 0.0, "positionY": 0.0, "alignment": 5, "boundsType": "OBS_BOUNDS_SCALE_INNER",
        "boundsAlignment": 0, "boundsWidth": float(video.base_width), "boundsHeight": float(video.base_height)})


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
            done = "updated"
        else:
            req.create_input(scene, name, SOURCE_KIND, media_settings(url), True)
            done = "created"
        fit_to_canvas(req, scene, name)
        return f"{done} source {name!r} in scene {scene!r} -> {url}, fitted to the canvas"
    finally:
        try:
            req.disconnect()
        except Exception:
            pass
