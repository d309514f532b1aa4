"""The live engine (see engine.py for the thread layout)."""
from .engine import Engine, EngineConfig
from .frames import Frame
from .render import PerfSettings
from ..io.sources import SourceOptions, open_source

__all__ = ["Engine", "EngineConfig", "Frame", "PerfSettings", "SourceOptions", "open_source"]
