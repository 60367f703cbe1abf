"""CLI verb of the viewer concern: ``bench view RUN_DIR``."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add ``view`` to the ``bench`` subparsers."""
    p = sub.add_parser("view", help="look at a trained run in the browser: any camera, any time",
                       description="Serve an interactive viewer of a trained run at http://HOST:PORT (viser): "
                                   "drag to move the camera; the run is rendered from it at the time of the "
                                   "time slider (0..1 over the training frames) as the panel chosen: sharp, "
                                   "blurred (BP-Net's reconstruction), blur size (each pixel's kernel's RMS "
                                   "radius, weighted by the blur mask) or depth; a run without BP-Net shows "
                                   "sharp and depth. Opens at the first test camera. Serves until Ctrl-C. On a "
                                   "cluster node, tunnel the port: ssh -L 8080:NODE:8080 LOGIN_HOST.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run's directory (with its final checkpoint)")
    p.add_argument("--port", type=int, default=8080, help="port to serve on")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface, to reach it from another machine)")
    p.add_argument("--state", choices=("last", "best_test"), default="last",
                   help="the saved state shown: the final checkpoint or checkpoints/best_test.pt")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to render (auto: CUDA with gsplat when available, else the CPU renderer)")
    p.add_argument("--width", type=_positive, default=None,
                   help="render width in pixels; the height follows the browser's view (default: the test "
                        "views' width)")
    p.set_defaults(func=_view)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of pixels")
    return value


def _view(args: argparse.Namespace) -> int:
    """Load the run, serve it, wait for Ctrl-C (the CLI reports the interrupt, exit 130)."""
    import time

    from bench.method.saved_run import SavedRun
    from bench.viewer.server import Viewer, check_port

    check_port(args.host, args.port)  # before loading the run, which takes a while
    viewer = Viewer(SavedRun.load(args.run_dir, args.state, args.device), args.host, args.port, args.width)
    try:
        viewer.start()
        print(viewer.url, flush=True)
        while True:
            time.sleep(3600)
    finally:
        viewer.stop()
