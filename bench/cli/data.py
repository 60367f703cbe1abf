"""``bench data {list,check,synth}``: list datasets, validate scenes on disk, generate the synthetic benchmark."""

from __future__ import annotations

from bench.cli.args import data_parent, data_parent_args


def register(sub) -> None:
    """Add this concern's verbs to the ``bench`` subparsers."""
    data = sub.add_parser("data", help="datasets: list, validate, generate the synthetic benchmark",
                          description="The datasets of datasets/*.yaml: list them and whether their scenes are "
                                      "on disk, validate scenes, generate the synthetic benchmark.")
    verbs = data.add_subparsers(dest="data_verb", metavar="DATA_VERB")
    data.set_defaults(func=lambda args: data.print_help() or 0)

    p = verbs.add_parser("list", help="datasets, their scenes and whether each is present",
                         description="One line per dataset (blur type, protocol, resolution, data root, where the "
                                     "release is published), then one per scene: layout, blur type, and present, "
                                     "missing or outdated.")
    data_parent_args(p)
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("check", help="validate a dataset's scenes on disk (one line per problem)",
                         description="Validate a dataset's scenes on disk: one line per problem naming the file "
                                     "and what was expected; exit 1 when any scene has a problem.")
    p.add_argument("dataset", help="dataset name (see `bench data list`)")
    p.add_argument("scene", nargs="?", help="one scene (default: all scenes of the dataset)")
    p.add_argument("--data-root", help="the dataset's folder (default: $BENCH_DATA/<dataset> or datasets/data/<dataset>)")
    p.add_argument("--quick", action="store_true",
                   help="folders, files and counts only, no file read (what `bench sweep` checks)")
    p.set_defaults(func=cmd_check)

    p = verbs.add_parser("synth", help="generate the synthetic benchmark (reuses scenes already there)",
                         description="Render the scenes of a generated dataset (synthetic or diagnostic: frames, depth, "
                                     "masks, ground truth) into its data root; complete scenes already there are "
                                     "kept unless --force. Prints each scene's region shares.")
    p.add_argument("--dataset", default="synthetic",
                   help="a generated dataset: synthetic (default, the demo benchmark) or diagnostic")
    p.add_argument("--data-root",
                   help="output folder (default: $BENCH_DATA/<dataset> or datasets/data/<dataset>)")
    p.add_argument("--force", action="store_true", help="regenerate scenes that already exist")
    p.add_argument("--scenes", nargs="+", metavar="SCENE", help="only these scenes (default: all of the dataset)")
    p.set_defaults(func=cmd_synth)


def cmd_list(args) -> int:
    from bench.data.registry import dataset_folder, list_datasets
    from bench.data.synth.generate import scene_complete

    parent = data_parent(args)
    for spec in list_datasets():
        root = dataset_folder(spec.name, parent)
        print(f"{spec.name}: {spec.blur_type} blur, protocol {spec.protocol}, {spec.resolution}, data root {root}")
        if spec.download:
            print(f"  download: {spec.download}")
        for s in spec.scenes:
            state = "present" if (root / s.name).is_dir() else "missing"
            if spec.layout == "synthetic" and state == "present" and not scene_complete(root, s.name):
                state = "outdated (regenerated on next use)"
            print(f"  {s.name:<12} {s.layout:<8} {s.blur_type:<8} {state}")
    return 0


def cmd_check(args) -> int:
    from bench.data.registry import check_scene, data_root, get_dataset

    spec = get_dataset(args.dataset)
    scenes = [spec.scene(args.scene).name] if args.scene else spec.scene_names
    root = data_root(args.dataset, args.data_root)
    failed = 0
    for name in scenes:
        if getattr(args, "quick", False):
            from bench.data.presence import quick_check_scene

            quick = quick_check_scene(args.dataset, name, root)
            problems = quick.problems
            if quick.ok and quick.state != "present":
                print(f"{args.dataset}/{name}: ok ({quick.state})")
                continue
        elif spec.layout == "synthetic" and not (root / name).is_dir():
            print(f"{args.dataset}/{name}: ok (not generated yet: generated on first use, or by bench data synth)")
            continue
        else:
            problems = check_scene(args.dataset, name, root)
        if problems:
            failed += 1
            for line in problems:
                print(f"{args.dataset}/{name}: {line}")
        else:
            print(f"{args.dataset}/{name}: ok")
    if failed:
        print(f"{failed} of {len(scenes)} scene(s) of {args.dataset} under {root} have problems")
    return 1 if failed else 0


def cmd_synth(args) -> int:
    import time

    from bench.data import synthetic
    from bench.data.registry import data_root, get_dataset
    from bench.errors import BenchError

    name = args.dataset
    spec = get_dataset(name)
    if spec.layout != "synthetic":
        raise BenchError(f"{spec.source}: dataset {name} is not generated (layout {spec.layout}, expected synthetic)")
    scenes = [spec.scene(n) for n in args.scenes] if args.scenes else spec.scenes
    root = data_root(name, args.data_root)
    start = time.perf_counter()
    written = synthetic.ensure(root, scenes, force=args.force)
    took = time.perf_counter() - start
    reused = len(scenes) - len(written)
    print(f"{name}: {len(written)} scene(s) generated in {took:.1f} s, {reused} reused, under {root}")
    print(shares_table(root, [s.name for s in scenes]))
    return 0


SHARE_COLUMNS = (("unseen_test", "unseen %"), ("emerging_train_dynamic", "emerging % (train dyn.)"),
                 ("sharp_train", "sharp %"), ("blurred_train", "blurred>2px %"))


def shares_table(root, names: list[str]) -> str:
    """Text table of each scene's region shares (``meta.json`` "shares", in percent; "-" if absent).

    unseen: of the test pixels; emerging: of the training frames' dynamic pixels, all frames pooled;
    sharp / blurred: of the training pixels (RMS blur radius < 0.5 px / > 2 px).
    """
    from bench.data.synthetic import read_shares

    width = max([len(n) for n in names] + [5])
    lines = [f"{'scene':<{width}}  " + "  ".join(label for _, label in SHARE_COLUMNS)]
    for n in names:
        shares = read_shares(root, n)
        cells = [f"{100 * shares[key]:.1f}" if key in shares else "-" for key, _ in SHARE_COLUMNS]
        row = "  ".join(f"{c:>{len(label)}}" for c, (_, label) in zip(cells, SHARE_COLUMNS))
        lines.append(f"{n:<{width}}  {row}")
    return "\n".join(lines)
