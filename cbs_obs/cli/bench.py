"""``cbs-obs bench``: the figures behind BENCHMARKS.md."""
from __future__ import annotations

from pathlib import Path

from ..argtypes import positive_float as _positive_float
from ..argtypes import positive_int as _positive_int


def cmd_bench(args) -> int:
    import json
    import sys

    from ..bench import run
    from ..paths import write_atomic

    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    if args.output:
        write_atomic(args.output, json.dumps(results, indent=2).encode())
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def register(sub) -> None:
    from ..bench import SCENARIOS

    b = sub.add_parser("bench", help="measure fps, latency, CPU and quality of the standard scenarios",
                       description="Runs each scenario through the real engine and prints medians and same-run "
                       "ratios. models: each network alone. bg720: person segmenter, background styled, 1280x720 "
                       "at 30 fps. person720: the person (or face and body) styled, background untouched. "
                       "cityscapes: the paper's setting, car and road styled.")
    b.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), metavar="NAME",
                   help=f"which scenarios ({', '.join(SCENARIOS)}; default all)")
    b.add_argument("--seconds", type=float, default=20.0, help="measured seconds per live scenario (default 20)")
    b.add_argument("--clip", action="append", metavar="VIDEO",
                   help="real footage to measure on (repeat for several clips; cropped and scaled to 1280x720, "
                   "played forwards then backwards); default: the built-in clip")
    b.add_argument("--clip-seconds", type=_positive_float, default=20.0, metavar="S",
                   help="use only the first S seconds of each clip (default 20; a clip is held in memory at 720p, "
                   "2.7 MB a frame)")
    b.add_argument("--runs", type=_positive_int, default=1, metavar="N",
                   help="bg720, person720: measure each clip N times and report medians, with the lowest and "
                   "highest value of the headline figures under 'spread' (default 1)")
    b.add_argument("--naive-window", type=_positive_int, default=30, metavar="N",
                   help="consecutive frames styled naively (every frame in full) for comparison (default 30)")
    b.add_argument("--compare-sync", action="store_true", help="person720: also run --moving sync as a reference")
    b.add_argument("--room-change", action="store_true", help="bg720: also time a room change (a light switched on)")
    b.add_argument("--room-style", default="starry-blue", metavar="STYLE",
                   help="bg720: the room's style (default starry-blue), e.g. blur")
    b.add_argument("--cityscapes-frame", type=str, metavar="PNG", help="a 1024x2048 Cityscapes frame")
    b.add_argument("--compare-naive", action="store_true",
                   help="also time the paper's method run naively (DABNet + TransformerNet, torch eager, full size)")
    b.add_argument("--naive-frames", type=_positive_int, default=1, help="frames for the naive baseline (default 1)")
    b.add_argument("--person-style-size", type=_positive_int, default=480, help="style size for person720")
    b.add_argument("--person-refresh", type=float, metavar="HZ",
                   help="person720: style results landed per second (default: run's default, 2)")
    b.add_argument("--segmenter", "-s", default="person", metavar="NAME",
                   help="person720: segmenter (person, or person-face for the face and body classes)")
    b.add_argument("--assign", "-a", action="append", metavar="CLASS=STYLE",
                   help="person720: the look, repeatable (default person=candy-pop), e.g. -s person-face "
                   "-a face=sketch -a body=candy-pop; steadiness is reported per class")
    b.add_argument("--person-moving", choices=("async", "sync"), default="async", help="moving mode for person720")
    b.add_argument("--repeats", type=_positive_int, default=20, help="timed runs per network in 'models' (default 20)")
    b.add_argument("--json", action="store_true", help="print the results as one JSON document")
    b.add_argument("-o", "--output", type=Path, metavar="JSON", help="also write the results to a file")
    b.set_defaults(func=cmd_bench)
