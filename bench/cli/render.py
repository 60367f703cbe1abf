"""CLI verb of the video concern: ``bench render RUN_DIR`` (bench.video)."""

from __future__ import annotations

import argparse

from bench.cli.args import positive_float, positive_int, saved_run_args


def register(sub) -> None:
    """Add ``render`` to the ``bench`` subparsers."""
    from bench.video import PANELS, PATHS

    p = sub.add_parser("render", help="render an MP4 video of a trained run along a camera path",
                       description="Render a trained run (its saved state, no retraining) along a camera path "
                                   "into an H.264 MP4 that browsers play: `test` follows the test cameras in "
                                   "time order; `spiral` circles the training cameras while time runs; `fixed` "
                                   "holds one training camera while time runs; `bullet` freezes time while the "
                                   "camera swings on an arc. The sharp render is shown, with --show panels "
                                   "beside it. Written atomically to RUN_DIR/videos/<path>.mp4 unless --out.")
    saved_run_args(p, state_help="the saved state rendered: the final checkpoint or checkpoints/best_test.pt")
    p.add_argument("--path", choices=PATHS, default="test", help="the camera path")
    p.add_argument("--show", default="", metavar="PANEL[,PANEL]",
                   help=f"panels beside the sharp render, comma-separated, of: {', '.join(PANELS)} (blurred: "
                        "through BP-Net; kernels: predicted blur RMS radius per pixel; depth: disparity colours)")
    p.add_argument("--fps", type=positive_int, default=24, help="frames per second")
    p.add_argument("--frames", type=positive_int, default=96,
                   help="number of frames of the spiral, fixed and bullet paths (test: one per test view)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--scale", type=positive_float, default=None,
                      help="resolution as a factor of the test resolution (default: 1)")
    size.add_argument("--width", type=positive_int, default=None, help="width of each panel in pixels")
    p.add_argument("--camera", type=int, default=0, help="the training camera of --path fixed")
    p.add_argument("--time", type=float, default=0.5,
                   help="the frozen time of --path bullet, in [0,1] (0: first training frame, 1: last)")
    p.add_argument("--out", default=None, metavar="PATH", help="the MP4 written (default: RUN_DIR/videos/<path>.mp4)")
    p.set_defaults(func=_render)




def _render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.video.render import VideoSpec, parse_panels, render_video

    spec = VideoSpec(path=args.path, show=parse_panels(args.show), fps=args.fps, frames=args.frames,
                     scale=args.scale, width=args.width, camera=args.camera, time=args.time, state=args.state,
                     out=Path(args.out) if args.out else None)
    print(f"wrote {render_video(args.run_dir, spec, device=args.device)}")
    return 0
