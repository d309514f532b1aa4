"""``cbs-obs serve``: this PC runs the networks for engines on other PCs (a Triton inference server)."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import SettingsError

log = logging.getLogger("cbs_obs")


def cmd_serve(args) -> int:
    from ..models.device import onnx_preferred
    from ..remote import ServeSettings
    from ..web import is_loopback

    settings = ServeSettings(host=args.host, grpc_port=args.grpc_port, http_port=args.http_port,
                             metrics_port=args.metrics_port, key=args.key, johnson=tuple(args.johnson or ()),
                             segmenters=tuple(args.segmenter or ("person", "person-face", "cityscapes")))
    try:
        from ..remote.server import serve
        import pytriton  # noqa: F401  (installed with the serve extra)
    except ImportError:
        raise SettingsError('cbs-obs serve needs NVIDIA PyTriton: pip install "cbs-obs[serve]" (Linux x86-64, '
                            "glibc 2.35 or newer)") from None
    from ..remote.served import build_networks

    networks = build_networks(settings.segmenters, settings.johnson)
    where = "ONNX Runtime" if onnx_preferred() else "torch"
    url = f"grpc://{settings.host}:{settings.grpc_port}"
    if not is_loopback(settings.host):
        log.warning("SERVING ON %s: anyone on your network can reach this server; inference needs the shared key "
                    "(engines give it with --remote-key or CBS_OBS_REMOTE_KEY). Open only TCP %d in the firewall.",
                    settings.host, settings.grpc_port)

    def ready():
        print(f"serving {len(networks)} networks ({where}) on {url} (health: http://{settings.host}:"
              f"{settings.http_port}/v2/health/ready, metrics: :{settings.metrics_port}); engines run with: "
              f"cbs-obs run --remote {url}" + (" --remote-key KEY" if settings.key else ""), flush=True)

    import signal

    def stop(*_):  # SIGTERM (a service manager, a test) shuts down like Ctrl-C: Triton and its workers with it
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    serve(settings, networks, ready=ready)
    return 0


def register(sub) -> None:
    from ..remote import protocol

    s = sub.add_parser("serve", help="run the networks for engines on other PCs (Triton inference server)",
                       description="Serve the segmenters and styles as Triton models, so `cbs-obs run --remote "
                       "grpc://THIS-PC:PORT` on another PC captures and composites there and runs the networks "
                       'here. Needs: pip install "cbs-obs[serve]".')
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for other PCs, which needs --key)")
    s.add_argument("--grpc-port", type=int, default=protocol.DEFAULT_GRPC_PORT, help="gRPC port engines use (8001)")
    s.add_argument("--http-port", type=int, default=protocol.DEFAULT_HTTP_PORT,
                   help="Triton's HTTP port: health, model status (8000)")
    s.add_argument("--metrics-port", type=int, default=protocol.DEFAULT_METRICS_PORT,
                   help="Triton's metrics port (8002)")
    s.add_argument("--key", help="shared key engines must send (better: the CBS_OBS_REMOTE_KEY variable); "
                   "required off loopback")
    s.add_argument("--johnson", type=Path, action="append", metavar="PTH",
                   help="also serve this Johnson checkpoint (repeat for several)")
    s.add_argument("--segmenter", action="append", choices=("person", "person-face", "cityscapes"),
                   help="serve only these segmenters (default: all three; repeat)")
    s.set_defaults(func=cmd_serve)
