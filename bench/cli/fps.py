"""``bench fps``: the rendering speed of a trained run, recorded in its results.json."""

from __future__ import annotations

import argparse

from bench.cli.args import saved_run_args


def register(sub) -> None:
    """Add the ``fps`` verb to the ``bench`` subparsers."""
    p = sub.add_parser(
        "fps", help="measure a trained run's rendering speed (frames per second) and record it",
        description="Render the test views of a trained run at the test resolution (sharp renders, as the test "
                    "renders are made), WARMUP untimed passes first, and print the median over REPEATS passes "
                    "of views per second with the device, renderer backend, threads, resolution and Gaussian "
                    "count. A finished run (results.json) gets it as its `speed` block, which the report's FPS "
                    "column shows; an older block is replaced.")
    saved_run_args(p, state_default=None, state_help="the saved state rendered (default: the run's eval.select)",
                   device_help="where to render (auto: as training would choose for the run's backend, e.g. the "
                               "CPU for the cpu profile's torch backend even on a GPU node)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes over the test views")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes first")
    p.set_defaults(func=_fps)


def _fps(args: argparse.Namespace) -> int:
    from bench import rundir
    from bench.errors import BenchError
    from bench.method.speed import measure_run, record_speed

    if args.repeats < 1 or args.warmup < 0:
        raise BenchError(f"--repeats {args.repeats} --warmup {args.warmup}: expected repeats >= 1 and warmup >= 0")
    speed = measure_run(args.run_dir, args.state, args.device, args.repeats, args.warmup)
    W, H = speed["resolution"]
    print(f"{speed['fps']:.2f} FPS: {speed['views']} test views at {W}x{H}, {speed['num_gaussians']} Gaussians "
          f"({speed['state']}), {speed['device']}, {speed['backend']}, {speed['threads']} thread(s); median of "
          f"{speed['repeats']} passes after {speed['warmup']} warm-up")
    if rundir.is_finished(args.run_dir):
        print(f"wrote {record_speed(args.run_dir, speed)}")
    else:
        print(f"not recorded: {args.run_dir}/{rundir.RESULTS} is missing (run `bench eval {args.run_dir}` first)")
    return 0
