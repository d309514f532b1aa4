"""cbs-obs: class-based neural styling (Kurzman et al. 2019) for live video.

Python API (frames are BGR uint8 numpy arrays, as OpenCV gives them)::

    from cbs_obs import ClassStylizer, Look, create_segmenter
    stylizer = ClassStylizer(create_segmenter("person"), Look.from_specs(["background=starry-blue"]))
    styled = stylizer.process(frame).frame
"""
__version__ = "0.1.0"

from .errors import CbsError, ChecksumError, InputError, ModelError, ModelMissingError, SettingsError, UnknownNameError
from .look import Assignment, Look, MaskOptions

# The networks' modules load on first use, so `import cbs_obs` (and `cbs-obs --help`) stays fast.
_LAZY = {
    "ClassProbs": ("segment.base", "ClassProbs"),
    "create_segmenter": ("segment", "create_segmenter"),
    "segmenter_classes": ("segment", "segmenter_classes"),
    "create_style": ("style.catalog", "create"),
    "style_names": ("style.catalog", "style_names"),
    "ClassStylizer": ("stylizer", "ClassStylizer"),
    "StylizeResult": ("stylizer", "StylizeResult"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Assignment",
    "CbsError",
    "ChecksumError",
    "ClassProbs",
    "ClassStylizer",
    "InputError",
    "Look",
    "MaskOptions",
    "ModelError",
    "ModelMissingError",
    "SettingsError",
    "StylizeResult",
    "UnknownNameError",
    "__version__",
    "create_segmenter",
    "create_style",
    "segmenter_classes",
    "style_names",
]
