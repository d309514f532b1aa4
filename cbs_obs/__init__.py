"""cbs-obs: class-based neural styling (Kurzman et al. 2019) for live video.

Python API (frames are BGR uint8 numpy arrays, as OpenCV gives them)::

    from cbs_obs import ClassStylizer, Look, create_segmenter
    stylizer = ClassStylizer(create_segmenter("person"), Look.from_specs(["background=starry-blue"]))
    styled = stylizer.process(frame).frame
"""
__version__ = "0.1.0"

from .errors import CbsError, ChecksumError, InputError, ModelError, ModelMissingError, SettingsError, UnknownNameError
from .look import Assignment, Look, MaskOptions
from .segment import ClassProbs, create_segmenter, segmenter_classes
from .style.catalog import create as create_style
from .style.catalog import style_names
from .stylizer import ClassStylizer, StylizeResult

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
