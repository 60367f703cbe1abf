"""``bench train``: train one method variant on one scene into a run directory."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    """Add the ``train`` verb to the ``bench`` subparsers."""
    p = sub.add_parser(
        "train", help="train one method variant on one scene",
        description="Train a method variant (methods/*.yaml) on one scene. Resumes from the latest "
                    "checkpoint in --out; writes config.yaml, checkpoints, renders, curves.csv, "
                    "train_summary.json and log.txt there, and nothing before the variant, the config "
                    "overrides, the device and the scene's data have been checked. Without --profile "
                    "the run has the release profile's 40,000 steps, sized for a GPU: use --profile "
                    "cpu on a CPU.",
    )
    p.add_argument("--method", help="variant name (see --list)")
    p.add_argument("--dataset", help="dataset name, e.g. synthetic (see `bench data list`)")
    p.add_argument("--scene", help="scene name, e.g. motion_0")
    p.add_argument("--out", help="run directory")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the run (initialisation, view order, densification draws); part of its identity")
    p.add_argument("--profile", default=None,
                   help="named profile: release (the default, 40,000 steps for a GPU), cpu or cpu_long")
    p.add_argument("--data-root", default=None,
                   help="the dataset's folder (default: $BENCH_DATA/<dataset> or datasets/data/<dataset>)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="override a config key, e.g. --set train.steps=2000 (repeatable; every key: --show-config)")
    p.add_argument("--device", default="auto", help="auto (CUDA+gsplat if available), cpu, cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the method variants and exit")
    p.add_argument("--show-config", action="store_true",
                   help="print the resolved config (every key --set can change) and exit; checks --dataset and "
                        "--scene when given; without --method: the release defaults")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from bench.errors import BenchError
    from bench.method.config import check_keys, parse_overrides, resolve_config
    from bench.method.registry import list_methods

    if args.list:
        for spec in list_methods():
            print(f"{spec.name:18s} {spec.description}")
        return 0
    overrides = parse_overrides(args.overrides)
    check_keys(overrides, "--set")
    if args.show_config:
        cfg = resolve_config(args.method, args.profile, overrides)
        checked = _check_names(args.dataset, args.scene)
        print(json.dumps(cfg.to_dict(), indent=2))
        if checked:
            print(f"bench train: {checked}", file=sys.stderr)
        return 0
    missing = [f"--{n}" for n in ("method", "dataset", "scene", "out") if getattr(args, n) is None]
    if missing:
        raise BenchError(f"{', '.join(missing)}: required (variants: bench train --list)")
    from bench.method.train import train

    summary = train(args.out, method=args.method, dataset=args.dataset, scene=args.scene,
                    seed=args.seed, profile=args.profile, overrides=overrides,
                    data_root=args.data_root, device=args.device, progress=not args.no_progress)
    print(json.dumps({k: summary[k] for k in ("steps", "wall_time_s", "device", "backend")}))
    return 0


def _check_names(dataset: str | None, scene: str | None) -> str | None:
    """``--show-config``'s check of --dataset and --scene: both registered (BenchError naming the
    unknown one and the known ones), and what it checked; the data on disk is checked by training."""
    from bench.data.registry import blur_type_of, get_dataset
    from bench.errors import BenchError

    if scene is not None and dataset is None:
        raise BenchError(f"--scene {scene}: needs --dataset to be checked")
    if dataset is None:
        return None
    if scene is None:
        get_dataset(dataset)
        return f"checked: dataset {dataset} is registered"
    blur = blur_type_of(dataset, scene)
    return f"checked: dataset {dataset} and scene {scene} ({blur} blur) are registered; training checks their data"
