"""``bench train``: train one method variant on one scene into a run directory."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    """Add the ``train`` verb to the ``bench`` subparsers."""
    p = sub.add_parser(
        "train", help="train one method variant on one scene",
        description="Train a method variant (methods/*.yaml) on one scene. Resumes from the latest "
                    "checkpoint in --out; writes config.yaml, checkpoints, renders, curves.csv, "
                    "train_summary.json and log.txt there.",
    )
    p.add_argument("--method", help="variant name (see --list)")
    p.add_argument("--dataset", help="dataset name, e.g. synthetic")
    p.add_argument("--scene", help="scene name, e.g. motion_0")
    p.add_argument("--out", help="run directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default=None, help="named profile: release (default) or cpu")
    p.add_argument("--data-root", default=None, help="dataset root (default: $BENCH_DATA/<name> ...)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="override a config key, e.g. --set train.steps=2000 (repeatable)")
    p.add_argument("--device", default="auto", help="auto (CUDA+gsplat if available), cpu, cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the method variants and exit")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from bench.errors import BenchError
    from bench.method.config import parse_overrides, resolve_config
    from bench.method.registry import list_methods

    if args.list:
        for spec in list_methods():
            print(f"{spec.name:18s} {spec.description}")
        return 0
    if args.method is None:
        raise BenchError("--method: required (see bench train --list)")
    overrides = parse_overrides(args.overrides)
    if args.show_config:
        cfg = resolve_config(args.method, args.profile, overrides)
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    missing = [f"--{n}" for n in ("dataset", "scene", "out") if getattr(args, n) is None]
    if missing:
        raise BenchError(f"{', '.join(missing)}: required")
    from bench.method.train import train

    summary = train(args.out, method=args.method, dataset=args.dataset, scene=args.scene,
                    seed=args.seed, profile=args.profile, overrides=overrides,
                    data_root=args.data_root, device=args.device, progress=not args.no_progress)
    print(json.dumps({k: summary[k] for k in ("steps", "wall_time_s", "device", "backend")}))
    return 0
