"""``cbs-obs token`` and ``cbs-obs obs ...``: getting the engine into OBS."""
from __future__ import annotations

import sys

from .options import _add_obs_options


def cmd_token(args) -> int:
    from ..control import token as tokens

    token = tokens.load_or_create(rotate=args.rotate)
    print(f"http://{args.host}:{args.port}/?token={token}" if args.url else token)
    if args.rotate:
        print("new token saved; restart cbs-obs run and reopen the web panel (the OBS panel reads it itself)",
              file=sys.stderr)
    return 0



def cmd_obs_plugin_path(args) -> int:
    from ..obs.plugin import script_path, write_location

    script = script_path()
    print(script)
    note = write_location(script)
    if note is None:
        print(f"note: cannot write beside {script} (read-only); the script will look for cbs-obs on PATH",
              file=sys.stderr)
    print("In OBS: Tools -> Scripts -> + and open that file, then press Start engine.", file=sys.stderr)
    return 0



def cmd_obs_setup(args) -> int:
    from ..obs.bridge import ObsSettings
    from ..obs.setup import setup_source

    url = args.url or f"http://127.0.0.1:{args.port}/stream.mjpg"
    print(setup_source(ObsSettings.from_args(args), url, name=args.source_name, scene=args.scene))
    return 0



def register(sub) -> None:
    t = sub.add_parser("token", help="print the control API token (made on first use, kept with mode 0600)")
    t.add_argument("--rotate", action="store_true", help="make a new token (the old one stops working)")
    t.add_argument("--url", action="store_true", help="print the web panel's address with the token in it")
    t.add_argument("--host", default="127.0.0.1", help="the engine's address, for --url (default 127.0.0.1)")
    t.add_argument("--port", type=int, default=8765, help="the engine's port, for --url (default 8765)")
    t.set_defaults(func=cmd_token)

    o = sub.add_parser("obs", help="set up OBS to show the engine's output")
    os_ = o.add_subparsers(dest="obs_command", metavar="ACTION", required=True)
    su = os_.add_parser("setup", help="create or update a media source that plays the engine's MJPEG stream",
                        description="Connects to OBS (obs-websocket 5) and creates, or updates, a media source "
                        "playing http://127.0.0.1:PORT/stream.mjpg in the current (or given) scene.")
    _add_obs_options(su, flag=False)
    su.add_argument("--scene", help="scene to add the source to (default: the current program scene)")
    su.add_argument("--source-name", default="cbs-obs", help="name of the OBS source (default cbs-obs)")
    su.add_argument("--port", type=int, default=8765, help="the engine's HTTP port (default 8765)")
    su.add_argument("--url", help="stream URL, if not the local engine's")
    su.set_defaults(func=cmd_obs_setup)
    pp = os_.add_parser("plugin-path", help="print where the OBS script is (add it in Tools -> Scripts -> +)",
                        description="Prints the path of cbs_obs_panel.py and records beside it where this "
                        "cbs-obs is installed, so the script can start the engine without any path typed in OBS.")
    pp.set_defaults(func=cmd_obs_plugin_path)
