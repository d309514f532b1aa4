"""``cbs-obs styles|classes|models``: what there is to choose from."""
from __future__ import annotations

import sys
from pathlib import Path

from ..argtypes import positive_int as _positive_int
from ..errors import CbsError, InputError
from .options import _segmenters_help
from .stylize import _check_out


def cmd_styles_list(args) -> int:
    from ..style import STYLE_FAMILIES

    families = STYLE_FAMILIES.values()
    print("built-in neural styles (cbs-obs styles sheet IMAGE -o sheet.png shows them):")
    for family in families:
        for i, name in enumerate(family.names):
            print(f"  {name:20s} ({family.name}:{i})")
    print("families (NAME or NAME:ARGUMENT; @UPLOADED-NAME for a file uploaded in the panel):")
    for family in families:
        form = family.name if not family.argument else (
            f"{family.name}:{family.argument}" if family.required else f"{family.name}[:{family.argument}]")
        print(f"  {form:24s} {family.help}{' (neural)' if family.neural else ''}")
    return 0


def cmd_styles_sheet(args) -> int:
    from ..io.images import read_image, write_image
    from ..style.sheet import contact_sheet

    frame = read_image(args.image)
    _check_out(args.output)
    sheet = contact_sheet(frame, tile_width=args.tile_width, columns=args.columns, progress=True)
    write_image(args.output, sheet)
    print(f"wrote {args.output} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0



def cmd_classes(args) -> int:
    from ..segment import CLASS_GROUPS, known_names, segmenter_classes

    classes = segmenter_classes(args.segmenter, args.weights)
    print(" ".join(classes))
    for group in known_names(classes)[len(classes):]:
        print(f"{group} = {' + '.join(CLASS_GROUPS[group])}")
    return 0



def cmd_models_list(args) -> int:
    from ..models import registry

    for name, c in registry.cards().items():
        state, path = registry.status(name)
        classes = f" classes: {len(c.classes)}" if c.classes else ""
        print(f"{name:20s} {c.task:13s} {state:8s}{classes}  {c.description}")
        print(f"{'':20s} licence: {c.licence}; {path or 'run: ' + c.fetch_command}")
    return 0



def cmd_models_fetch(args) -> int:
    from ..models import registry

    names = list(registry.cards()) if args.name == "all" else [args.name]
    if args.source and len(names) != 1:
        raise InputError("--from takes one model name, not 'all'")
    failed = []
    for name in names:
        try:
            path = registry.fetch(name, source_path=args.source, force=args.force)
            print(f"{name}: ok ({path})")
        except CbsError as e:
            if len(names) == 1:
                raise
            failed.append(name)
            print(f"{name}: {e}", file=sys.stderr)
    return 1 if failed else 0



def cmd_models_verify(args) -> int:
    from ..models import registry

    names = [args.name] if args.name else list(registry.cards())
    bad = 0
    for name in names:
        registry.card(name)
        state, path = registry.status(name)
        if state == "corrupt":
            bad += 1
            print(f"{name}: CORRUPT {path}: sha256 mismatch; fix: {registry.card(name).fetch_command} --force")
        else:
            print(f"{name}: {state}" + (f" {path}" if path else ""))
    return 1 if bad else 0



def cmd_models_path(args) -> int:
    from ..models import registry

    print(registry.ensure(args.name, auto_fetch=False))
    return 0



def register(sub) -> None:
    st = sub.add_parser("styles", help="list the styles or draw a contact sheet of them")
    ss = st.add_subparsers(dest="styles_command", metavar="ACTION", required=True)
    sl = ss.add_parser("list", help="every style name and family")
    sl.set_defaults(func=cmd_styles_list)
    sh = ss.add_parser("sheet", help="render the 26 built-in styles (and the filters) on IMAGE, with names")
    sh.add_argument("image", type=Path, metavar="IMAGE", help="your own picture to show the styles on")
    sh.add_argument("-o", "--output", type=Path, required=True, metavar="PNG", help="where to write the sheet")
    sh.add_argument("--tile-width", type=_positive_int, default=320, help="width of each tile (default 320)")
    sh.add_argument("--columns", type=_positive_int, default=6, help="tiles per row (default 6)")
    sh.set_defaults(func=cmd_styles_sheet)

    c = sub.add_parser("classes", help="list the class names a segmenter knows")
    c.add_argument("--segmenter", "-s", default="person", help=_segmenters_help())
    c.add_argument("--weights", type=Path, help="a checkpoint from cbs-obs train seg (it carries its classes)")
    c.set_defaults(func=cmd_classes)

    m = sub.add_parser("models", help="list, fetch, verify and locate model weights")
    ms = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = ms.add_parser("list", help="every model card with its state and licence")
    ml.set_defaults(func=cmd_models_list)
    mf = ms.add_parser("fetch", help="download (or import with --from) and verify a model")
    mf.add_argument("name", help="model name (cbs-obs models list) or 'all'")
    mf.add_argument("--from", dest="source", type=Path, metavar="PATH", help="use this file instead of downloading")
    mf.add_argument("--force", action="store_true", help="download again even if cached")
    mf.set_defaults(func=cmd_models_fetch)
    mv = ms.add_parser("verify", help="check sha256 of cached models")
    mv.add_argument("name", nargs="?", help="one model (default: all)")
    mv.set_defaults(func=cmd_models_verify)
    mp = ms.add_parser("path", help="print the local path of a model's weights")
    mp.add_argument("name", help="model name (cbs-obs models list)")
    mp.set_defaults(func=cmd_models_path)
