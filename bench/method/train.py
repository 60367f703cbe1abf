"""Training of the dydeblur base method into a run directory (layout: bench/rundir.py).

``train`` is the CLI's entry point (a run trained alone): it resolves the variant's config and the
run's identity (bench.rundir.RunIdentity) and calls ``train_run``, the harness's entry point, which
checks the device and loads the scene, only then writes ``config.yaml``, and hands over to the base
implementation registered for the variant (:func:`run_dydeblur` here). A run directory that already
holds checkpoints is resumed from the latest one that loads and continues exactly: the training view
of step s is drawn from a generator seeded by (seed, s) (bench.method.step), and every other piece of
state is in the checkpoint (bench.method.checkpoints).

The concerns around the loop live beside it: device.py (where it runs), optim.py (optimisers and
schedules), step.py (the view and loss terms of a step), densify.py (DensifyStrategy),
checkpoints.py, outputs.py (renders, summary), progress.py (log, progress bar, curve window).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from bench import rundir
from bench.atomic import write_text
from bench.data import registry as datasets
from bench.data.scene import Scene
from bench.errors import BenchError
from bench.method.bpnet import BPNet
from bench.method.checkpoints import load_checkpoint, resume_state, save_checkpoint
from bench.method.config import PROFILES, MethodConfig, resolve_config, run_hash
from bench.method.densify import DensifyStrategy
from bench.method.losses import psnr
from bench.method.device import DeviceChoice, pick_device, set_threads
from bench.method.model import init_model, scene_extent
from bench.method.optim import make_optimizers, set_lrs
from bench.method.outputs import write_renders, write_summary
from bench.method.progress import CURVE_TERMS, ProgressBar, RunLog
from bench.method.registry import base_implementation, get_method
from bench.method.rng import global_stream
from bench.method.run_state import Run, SceneTensors
from bench.method.selection import CheckpointSelector
from bench.method.step import chw, forward, skips, step_counts, target, virtual_possible
from bench.method.true_blur import TrueBlur
from bench.method.unseen import VirtualViews, build_virtual_views, inpainted_share, scene_offset
from bench.render.gsplat_ext import require_extension

CURVE_FIELDS = ["step", *CURVE_TERMS, "train_psnr", *rundir.COUNT_FIELDS, "elapsed_s"]


def train(run_dir, *, method: str, dataset: str, scene: str, seed: int = 0, profile: str | None = None,
          overrides: dict[str, Any] | None = None, data_root=None, device: str = "auto",
          progress: bool = True) -> dict:
    """Train variant ``method`` on ``dataset``/``scene`` into ``run_dir`` (a run outside any sweep,
    ``bench train``); return the train summary. Resolves the configuration and the run's identity,
    then :func:`train_run`."""
    cfg = resolve_config(method, profile, overrides)
    seed = int(seed)
    identity = rundir.RunIdentity.of_directory(
        run_dir, method=method, base_method=get_method(method).base, dataset=dataset, scene=scene,
        blur_type=datasets.blur_type_of(dataset, scene), seed=seed,
        config_hash=run_hash(method, cfg.to_dict(), dataset, scene, seed))
    return train_run(run_dir, identity, cfg, profile=profile, overrides=overrides, data_root=data_root,
                     device=device, progress=progress)


def train_run(run_dir, identity: rundir.RunIdentity, cfg: MethodConfig, *, profile: str | None,
              overrides: dict[str, Any] | None, data_root=None, device: str = "auto", progress: bool = True) -> dict:
    """Train the run ``identity`` names, with its resolved configuration ``cfg``, into ``run_dir``;
    return the train summary. The harness's job calls it with the identity its sweep planned and the
    configuration it resolved to check that identity, so nothing is resolved twice.

    Checks everything it can before it writes anything (:func:`_checked_inputs`: the device, the
    scene's data, what ``cfg`` asks of the scene), so a failed check leaves ``run_dir`` as it was and
    the corrected command starts clean. Then writes config.yaml (the identity, then profile,
    overrides, data root and ``cfg``; BenchError if the directory holds a different config), then
    checkpoints, renders, curves.csv, log.txt and train_summary.json.
    """
    impl = base_implementation(identity.base_method)
    scene, choice = _checked_inputs(identity, cfg, data_root, device)
    warning = release_on_cpu(profile, cfg, choice)
    if warning:
        print(warning, file=sys.stderr)
    run_dir = Path(run_dir)
    record = rundir.identified(identity, {
        "profile": profile, "overrides": dict(overrides or {}),
        "data_root": None if data_root is None else str(data_root), "config": cfg.to_dict()})
    _write_config(run_dir, record)
    return impl(run_dir, cfg, record, scene=scene, choice=choice, progress=progress)


def _checked_inputs(identity: rundir.RunIdentity, cfg: MethodConfig, data_root,
                    device: str) -> tuple[Scene, DeviceChoice]:
    """The run's scene and device, or the BenchError a run would otherwise meet after writing:
    ``--device`` (and the backend it needs), BENCH_TORCH_THREADS, gsplat's CUDA extension, the
    scene's data on disk, and the ground truth ``blur.ground_truth`` trains through."""
    set_threads(cfg)
    choice = pick_device(device, cfg.train.backend, torch.cuda.is_available())
    if choice.backend == "gsplat":  # load or build gsplat's CUDA code now, not inside the first render
        require_extension()
    scene = datasets.load_scene(identity.dataset, identity.scene, data_root=data_root)
    if scene.train.depth is None:
        raise BenchError(f"{identity.dataset}/{identity.scene}: training depth missing; the method needs it")
    if cfg.blur.ground_truth:
        TrueBlur(scene.gt)  # its constructor is the check of the scene's ground truth (a BenchError)
    return scene, choice


def release_on_cpu(profile: str | None, cfg: MethodConfig, choice: DeviceChoice) -> str | None:
    """The one-line warning for a run of the release profile (sized for a GPU) that goes on the CPU,
    else None: a new user who leaves out ``--profile`` learns it before the run starts."""
    if profile not in (None, "release") or choice.device.type != "cpu":
        return None
    return (f"warning: the release profile, sized for a GPU, runs on the CPU here ({choice.reason}): "
            f"{cfg.train.steps} steps at release settings; for a CPU-sized run use --profile cpu "
            f"({PROFILES['cpu']['train.steps']} steps)")


def _write_config(run_dir: Path, record: dict) -> None:
    """Write config.yaml, refusing to reuse a directory trained with another config."""
    path = run_dir / rundir.CONFIG
    if path.is_file():
        old = rundir.read_config(run_dir)
        if old.get("config_hash") != record["config_hash"]:
            raise BenchError(f"{path}: run directory holds a different config "
                             f"(hash {old.get('config_hash')} != {record['config_hash']}); use another --out")
    write_text(path, yaml.safe_dump(record, sort_keys=False))


def run_dydeblur(run_dir: Path, cfg: MethodConfig, record: dict, *, scene: Scene, choice: DeviceChoice,
                 progress: bool = True) -> dict:
    """Train the dydeblur model (docs/method.md) with ``cfg`` on ``scene`` where ``choice`` says;
    see :func:`train_run`, which checked both."""
    log = RunLog(run_dir / rundir.LOG)
    log(f"start: method={record['method']} dataset={record['dataset']} scene={record['scene']} "
        f"seed={record['seed']} profile={record['profile']} device={choice.device} backend={choice.backend} "
        f"threads={torch.get_num_threads()} ({choice.reason})")
    if choice.backend == "gsplat":  # loaded by train_run's checks; kept for the life of the process
        log(f"gsplat CUDA extension: {require_extension().summary()}")
    run = _build(run_dir, cfg, record, scene, choice.device, choice.backend, log)
    resume = resume_state(run)
    if resume is not None:
        load_checkpoint(run, *resume)
        log(f"resumed from {resume[0].name} (step {run.step})")
    else:
        log(f"motion bases init: {run.init_path}")
    _truncate_curves(run_dir, run.step)
    try:
        _loop(run, progress)
    except BaseException as err:  # log why the run stopped; the checkpoints allow a resume
        log(f"stopped at step {run.step}: {type(err).__name__}: {err}")
        raise
    write_renders(run)
    return write_summary(run)


def _build(run_dir: Path, cfg: MethodConfig, record: dict, scene: Scene, dev: torch.device, backend: str,
           log: RunLog) -> Run:
    """Fresh model, BP-Net, optimisers, densification strategy and virtual views for ``scene``."""
    seed = record["seed"]
    torch.manual_seed(seed)  # no purpose draws globally (bench.method.rng); any stray draw stays seeded
    model, init_path = init_model(scene, cfg, seed)
    model = model.to(dev)
    bpnet = None
    if cfg.blur.enabled and not cfg.blur.ground_truth:
        b = cfg.blur
        with global_stream(seed, "bpnet"):  # a head of another shape draws more: it must not shift the rest
            bpnet = BPNet(len(scene.train), b.kernel_size, b.kernel_type, b.shortcut, cnn_width=b.cnn_width,
                          init_centre=b.init_centre, init_mask=b.init_mask).to(dev)
    densify = DensifyStrategy(cfg, model.num_gaussians, dev, scene_extent(scene, model.params["means"]), seed, log,
                              backend)
    run = Run(cfg=cfg, record=record, run_dir=run_dir, device=dev, backend=backend, scene=scene,
              data=SceneTensors.from_scene(scene, dev), model=model, bpnet=bpnet,
              optimizers=make_optimizers(cfg, model, bpnet), densify=densify, log=log, init_path=init_path)
    if cfg.blur.ground_truth:
        run.true_blur = TrueBlur(scene.gt, dev)
        log("blur: the scene's ground-truth blur replaces BP-Net (diagnostic ceiling)")
    if cfg.eval.select == "best_test":
        run.selector = CheckpointSelector(run)
        log(f"test-set selection: the test views are evaluated at {len(run.selector.steps)} steps and the "
            "best state is reported (eval.select=best_test; selected on the test set)")
    if cfg.unseen.enabled:
        run.virtual = _build_virtual(run)
    elif cfg.unseen.skip_virtual_steps:
        counts = step_counts(cfg, virtual_possible(run.data))
        log(f"unseen views: none; {counts['skipped']} steps that would train on one make no update "
            f"(unseen.skip_virtual_steps), {counts['real']} real steps")
    log(f"init: {model.num_gaussians} Gaussians ({model.num_dynamic} dynamic), extent {densify.extent:.3f}")
    return run


def _build_virtual(run: Run) -> VirtualViews | None:
    """Virtual views (docs/method.md §7) warped from the training frames; None without masks."""
    d = run.data
    if not virtual_possible(d):
        run.log("unseen views: skipped (need motion masks and at least two training frames)")
        return None
    c2w = torch.linalg.inv(d.w2c.double()).float()  # inverted in float64 for accuracy
    fraction = run.cfg.unseen.perpendicular_offset_depth
    offset, median = scene_offset(d.depth.cpu(), fraction)
    v = build_virtual_views(c2w.cpu(), d.K.cpu(), d.images.cpu(), d.depth.cpu(), d.mask.cpu(),
                            offset=offset, inpaint_radius=run.cfg.unseen.inpaint_radius,
                            side=run.cfg.unseen.side_direction)
    for name in ("w2c", "K", "images", "motion_mask"):
        setattr(v, name, getattr(v, name).to(run.device))
    share = ", ".join(f"{k} {h:.1%}" for k, h in inpainted_share(v).items())
    run.log(f"unseen views: {len(v)} virtual views, side offset {offset:.4f} scene units ({fraction:g} x median "
            f"depth {median:.3f}) along {run.cfg.unseen.side_direction}; inpainted share: {share}")
    return v


def _train_step(run: Run, s: int) -> dict[str, float] | None:
    """One optimisation step (0-based step index ``s``); returns float terms and train PSNR, or None
    for a skipped step (``unseen.skip_virtual_steps``: no render, no update)."""
    if skips(run, s):
        # densification events due after this step still run, at the same steps as with virtual views
        run.densify.step_post_optimizer(run.model, run.optimizers["gaussians"], run.scene.train, s + 1)
        return None
    t = target(run, s)
    set_lrs(run.cfg, run.optimizers, s)
    for opt in run.optimizers.values():
        opt.zero_grad(set_to_none=True)
    terms, r, pred, _ = forward(run, s, t)
    loss = sum(terms.values())
    loss.backward()
    run.densify.step_post_backward(run.step, r.raw, run.data.W, run.data.H)
    for opt in run.optimizers.values():
        opt.step()
    run.densify.step_post_optimizer(run.model, run.optimizers["gaussians"], run.scene.train, s + 1)
    out = {k: float(v.detach()) for k, v in terms.items()}
    out["loss"] = float(loss.detach())
    out["unseen"] = float(t["virtual"])
    if not t["virtual"]:
        out["train_psnr"] = psnr(pred, chw(t["image"]))
    return out


def _truncate_curves(run_dir: Path, step: int) -> None:
    """Drop curve rows written after the checkpoint a resumed run continues from."""
    rows = rundir.read_curves(run_dir)
    kept = [r for r in rows if int(r["step"]) <= step]
    if len(kept) != len(rows) or (rows and step == 0):
        rundir.write_curves(run_dir, kept, CURVE_FIELDS)


def _loop(run: Run, progress: bool) -> None:
    """Train from ``run.step`` to ``train.steps`` with periodic logging and checkpoints."""
    cfg = run.cfg
    total = cfg.train.steps
    rows = rundir.read_curves(run.run_dir)
    start_clock = time.perf_counter() - run.elapsed_s
    with ProgressBar(total, run.step, enabled=progress) as bar:
        while run.step < total:
            values = _train_step(run, run.step)
            run.step += 1
            if run.selector is not None:
                run.selector.after_step(run)
            run.elapsed_s = time.perf_counter() - start_clock
            if values is not None:  # a skipped step has no loss to average into the curves
                run.curves.add(values)
                bar.update(run.step, values, run.model.num_gaussians)
            if run.step % cfg.train.log_every == 0 or run.step == total:
                counts = {"num_gaussians": run.model.num_gaussians, "num_dynamic": run.model.num_dynamic,
                          "grown": run.densify.totals["grown"], "pruned": run.densify.totals["pruned"]}
                rows.append(run.curves.row(run.step, counts, run.elapsed_s))
                rundir.write_curves(run.run_dir, rows, CURVE_FIELDS)
            if run.step % cfg.train.checkpoint_every == 0 or run.step == total:
                save_checkpoint(run)
    run.log(f"trained {total} steps in {run.elapsed_s:.1f} s; {run.model.num_gaussians} Gaussians "
            f"({run.model.num_dynamic} dynamic)")
    if run.selector is not None:
        run.selector.save(run.run_dir)
        best = run.selector.best
        run.log(f"test-set selection: step {best['step']} (mean test PSNR {best['psnr']:.3f} dB) of "
                f"{len(run.selector.history)} evaluations")
