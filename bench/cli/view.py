"""CLI verb of the viewer concern: ``bench view RUN_DIR``."""

from __future__ import annotations

import argparse

from bench.cli.args import positive_int, saved_run_args


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
    saved_run_args(p, state_help="the saved state shown: the final checkpoint or checkpoints/best_test.pt",
                   device_help="where to render (auto: CUDA with gsplat when available, else the CPU renderer)")
    p.add_argument("--port", type=int, default=8080, help="port to serve on")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface, to reach it from another machine)")
    p.add_argument("--width", type=positive_int, default=None,
                   help="render width in pixels; the height follows the browser's view (default: the test "
                        "views' width)")
    p.set_defaults(func=_view)



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
