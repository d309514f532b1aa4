"""Which networks ``cbs-obs serve`` offers: every network the engine may ask for, built as the engine builds them.

The server makes the same segmenters and styles an engine makes, so the networks it serves are the
very objects (and weights, and device choice) local inference uses; the inference runner keeps a
list of every network made in the process, which is what gets served. A network whose weights are
missing here is left out with a warning (the engine then says which one it lacks).
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import CbsError
from ..models.inference import Network

log = logging.getLogger(__name__)
MAGENTA = ("multistyle26", "arbitrary-predict", "arbitrary-transform")


def build_networks(segmenters: tuple[str, ...], johnson: tuple[Path, ...] = ()) -> dict[str, Network]:
    """Model name -> network, for the named segmenters, the Magenta pair and built-in styles, and Johnson files."""
    from ..models import inference
    from ..segment import create_segmenter
    from ..style.johnson import johnson_network
    from ..style.magenta import _network_for

    keep: list = []  # while building: the runner's list is weak (the returned dict holds them after)
    makers = []
    for name in segmenters:
        variants = ("landscape", "general") if name in ("person", "person-face") else (None,)
        for v in variants:
            makers.append((f"segmenter {name}" + (f" ({v})" if v else ""),
                           lambda name=name, v=v: create_segmenter(name, **({"variant": v} if v else {}))))
    makers += [(f"network {m}", lambda m=m: _network_for(m, False)) for m in MAGENTA]
    makers += [(f"Johnson checkpoint {p}", lambda p=p: johnson_network(p)) for p in johnson]
    for what, make in makers:
        try:
            keep.append(make())
        except CbsError as e:
            if what.startswith("Johnson"):
                raise  # asked for by name: a wrong path is the user's to fix now
            log.warning("not serving %s: %s", what, e)
    return inference.networks()
