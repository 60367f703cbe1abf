"""Training of the dydeblur base method into a run directory (layout: bench/rundir.py).

``train`` is the entry point the CLI and the harness call: it resolves the variant's config,
writes ``config.yaml``, and hands over to the base implementation registered for the variant
(:func:`run_dydeblur` here). A run directory that already holds checkpoints is resumed from
the latest one and continues exactly: the training view of step s is drawn from a generator
seeded by (seed, s), and every other piece of state (parameters, motion bases, BP-Net, optimiser
moments, densification statistics, global RNG states, curve accumulators) is in the checkpoint.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import rundir
from bench.atomic import torch_save, write_json, write_text
from bench.errors import BenchError
from bench.method.config import MethodConfig, config_hash, resolve_config
from bench.method.registry import base_implementation, get_method

CURVE_TERMS = ("loss", "rec", "depth", "dyn_mask", "low_freq", "blur_sparsity", "mask_sparsity",
               "unseen")
KEEP_CHECKPOINTS = 2


def train(run_dir, *, method: str, dataset: str, scene: str, seed: int = 0, profile: str | None = None,
          overrides: dict[str, Any] | None = None, data_root=None, device: str = "auto",
          progress: bool = True) -> dict:
    """Train variant ``method`` on ``dataset``/``scene`` into ``run_dir``; return the train summary.

    Writes config.yaml first (BenchError if the directory holds a different config), then
    checkpoints, renders, curves.csv, log.txt and train_summary.json.
    """
    cfg = resolve_config(method, profile, overrides)
    spec = get_method(method)
    if device not in ("auto", "cpu", "cuda"):
        raise BenchError(f"--device {device!r}: expected auto, cpu or cuda")
    run_dir = Path(run_dir)
    record = {
        "method": method, "base_method": spec.base, "dataset": dataset, "scene": scene, "seed": int(seed),
        "profile": profile, "overrides": dict(overrides or {}),
        "data_root": None if data_root is None else str(data_root),
        "config_hash": config_hash({"method": method, "dataset": dataset, "scene": scene, "seed": int(seed),
                                    "config": cfg.to_dict()}),
        "config": cfg.to_dict(),
    }
    _write_config(run_dir, record)
    impl = base_implementation(spec.base)
    return impl(run_dir, cfg, record, data_root=data_root, device=device, progress=progress)


def _write_config(run_dir: Path, record: dict) -> None:
    """Write config.yaml, refusing to reuse a directory trained with another config."""
    path = run_dir / rundir.CONFIG
    if path.is_file():
        old = yaml.safe_load(path.read_text()) or {}
        if old.get("config_hash") != record["config_hash"]:
            raise BenchError(f"{path}: run directory holds a different config "
                             f"(hash {old.get('config_hash')} != {record['config_hash']}); use another --out")
    write_text(path, yaml.safe_dump(record, sort_keys=False))


# ---------------------------------------------------------------------------------------------
# the base implementation


@dataclass
class Run:
    """Everything one training run holds in memory."""

    cfg: MethodConfig
    record: dict
    run_dir: Path
    device: Any
    backend: str
    scene: Any
    data: dict
    model: Any
    bpnet: Any
    optimizers: dict
    densify_state: Any
    virtual: Any
    true_blur: Any = None  # bench.method.true_blur.TrueBlur when blur.ground_truth
    step: int = 0
    elapsed_s: float = 0.0
    init_path: str = ""
    curve_acc: dict = field(default_factory=dict)
    log: Any = None


def run_dydeblur(run_dir: Path, cfg: MethodConfig, record: dict, *, data_root=None, device: str = "auto",
                 progress: bool = True) -> dict:
    """Train the dydeblur model (method.md) with ``cfg``; see :func:`train`."""
    import torch

    _set_threads(cfg)
    choice = pick_device(device, cfg.train.backend, torch.cuda.is_available())
    dev, backend = choice.device, choice.backend
    log = _Logger(run_dir / rundir.LOG)
    log(f"start: method={record['method']} dataset={record['dataset']} scene={record['scene']} "
        f"seed={record['seed']} profile={record['profile']} device={dev} backend={backend} "
        f"threads={torch.get_num_threads()} ({choice.reason})")
    scene = _load_scene(record, data_root)
    run = _build(run_dir, cfg, record, scene, dev, backend, log)
    resume = _resume_state(run)
    if resume is not None:
        _load_checkpoint(run, *resume)
        log(f"resumed from {resume[0].name} (step {run.step})")
    else:
        log(f"motion bases init: {run.init_path}")
    _truncate_curves(run_dir, run.step)
    try:
        _loop(run, log, progress)
    except BaseException as err:  # log why the run stopped; the checkpoints allow a resume
        log(f"stopped at step {run.step}: {type(err).__name__}: {err}")
        raise
    return _finish(run, log)


def _build(run_dir: Path, cfg: MethodConfig, record: dict, scene, dev, backend: str, log) -> Run:
    """Fresh model, BP-Net, optimisers, densification state and virtual views for ``scene``."""
    import torch

    from bench.method.bpnet import BPNet
    from bench.method.model import init_model, scene_extent

    seed = record["seed"]
    torch.manual_seed(seed)  # BP-Net initialisation and every later global draw
    model, init_path = init_model(scene, cfg, seed)
    model = model.to(dev)
    bpnet = None
    if cfg.blur.enabled and not cfg.blur.ground_truth:
        b = cfg.blur
        bpnet = BPNet(len(scene.train), b.kernel_size, b.kernel_type, b.shortcut, cnn_width=b.cnn_width,
                      init_centre=b.init_centre, init_mask=b.init_mask).to(dev)
    run = Run(cfg=cfg, record=record, run_dir=run_dir, device=dev, backend=backend, scene=scene,
              data=_scene_tensors(scene, dev), model=model, bpnet=bpnet,
              optimizers=_make_optimizers(cfg, model, bpnet),
              densify_state=DensifyState(model.num_gaussians, dev, scene_extent(scene, model.params["means"])),
              virtual=None, init_path=init_path, log=log)
    if cfg.blur.ground_truth:
        from bench.method.true_blur import TrueBlur

        run.true_blur = TrueBlur(scene.gt, dev)
        log("blur: the scene's ground-truth blur replaces BP-Net (diagnostic ceiling)")
    if cfg.unseen.enabled:
        run.virtual = _build_virtual(run, log)
    log(f"init: {model.num_gaussians} Gaussians ({model.num_dynamic} dynamic), extent {run.densify_state.extent:.3f}")
    return run


def _build_virtual(run: Run, log):
    """Virtual views (method.md §7) warped from the training frames; None without masks."""
    from bench.method.unseen import build_virtual_views

    d = run.data
    if d["mask"] is None or d["n"] < 2:
        log("unseen views: skipped (need motion masks and at least two training frames)")
        return None
    c2w = torch_inverse(d["w2c"])
    v = build_virtual_views(c2w.cpu(), d["K"].cpu(), d["images"].cpu(), d["depth"].cpu(), d["mask"].cpu(),
                            offset=run.cfg.unseen.perpendicular_offset, inpaint_radius=run.cfg.unseen.inpaint_radius)
    for name in ("w2c", "K", "images", "motion_mask"):
        setattr(v, name, getattr(v, name).to(run.device))
    holes = 1.0 - v.valid.float().mean().item()
    log(f"unseen views: {len(v)} virtual views, {holes:.1%} of their pixels inpainted")
    return v


def torch_inverse(w2c):
    """(N,4,4) inverse in float64 for accuracy, returned as float32."""
    import torch

    return torch.linalg.inv(w2c.double()).float()


def _set_threads(cfg: MethodConfig) -> None:
    import torch

    env = os.environ.get("BENCH_TORCH_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise BenchError(f"BENCH_TORCH_THREADS={env!r}: expected a positive integer")
        torch.set_num_threads(int(env))
    elif cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)


@dataclass(frozen=True)
class DeviceChoice:
    """Where a run executes: torch device, renderer backend, and why (for the log)."""

    device: Any  # torch.device
    backend: str  # "torch" | "gsplat"
    reason: str


def pick_device(device: str, backend: str, cuda_available: bool) -> DeviceChoice:
    """Resolve ``--device`` (auto|cpu|cuda) and ``train.backend`` (auto|torch|gsplat).

    device auto + backend auto: CUDA with gsplat when a GPU is seen, else CPU with the torch
    renderer. device auto + backend torch (the ``cpu`` profile): the CPU, also on a GPU node,
    because the pure-PyTorch renderer is the reference path, not the fast one; ``--device cuda``
    runs it on the GPU on purpose. gsplat needs CUDA.
    """
    import torch

    if device == "cuda" and not cuda_available:
        raise BenchError("--device cuda: CUDA is not available on this machine")
    if backend == "gsplat" and device == "cpu":
        raise BenchError("train.backend=gsplat: needs CUDA; use train.backend=torch with --device cpu")
    if backend == "gsplat" and not cuda_available:
        raise BenchError("train.backend=gsplat: needs CUDA, and no GPU is visible; use train.backend=torch on CPU")
    if device == "auto":
        if backend == "torch":
            use_cuda, why = False, "train.backend=torch with device auto runs on the CPU (--device cuda for the GPU)"
        else:
            use_cuda = cuda_available
            why = "device auto: a CUDA GPU is visible" if use_cuda else "device auto: no CUDA GPU is visible"
    else:
        use_cuda, why = device == "cuda", f"--device {device}"
    if backend == "auto":
        backend = "gsplat" if use_cuda else "torch"
        why += f"; backend auto: {backend} on {'CUDA' if use_cuda else 'the CPU'}"
    return DeviceChoice(torch.device("cuda" if use_cuda else "cpu"), backend, why)


class _Logger:
    """Appends timestamped lines to log.txt (appending keeps the log of interrupted attempts)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        with open(self.path, "a") as f:
            f.write(f"[{stamp}] {line}\n")


def _load_scene(record: dict, data_root):
    from bench.data.registry import load_scene

    scene = load_scene(record["dataset"], record["scene"], data_root=data_root)
    if scene.train.depth is None:
        raise BenchError(f"{record['dataset']}/{record['scene']}: training depth missing; the method needs it")
    return scene


def _scene_tensors(scene, dev) -> dict:
    """Training and test views as tensors on ``dev``.

    Train: images (N,H,W,3), depth (N,H,W), mask (N,H,W) or None, K (N,3,3), w2c (N,4,4),
    frame (N,) long. Test: test_K, test_w2c, test_frame, test_names. W, H: image size.
    """
    import torch

    tr, te = scene.train, scene.test
    to = lambda x: None if x is None else x.to(dev)  # noqa: E731
    return {
        "images": to(tr.images.stack().float()), "depth": to(tr.depth.float()),
        "mask": to(None if tr.motion_mask is None else tr.motion_mask.float()),
        "K": to(tr.cameras.K.float()), "w2c": to(tr.cameras.w2c.float()), "frame": tr.frame_index.long(),
        "names": list(tr.names),
        "test_K": to(te.cameras.K.float()), "test_w2c": to(te.cameras.w2c.float()),
        "test_frame": te.frame_index.long(), "test_names": list(te.names),
        "W": tr.cameras.width, "H": tr.cameras.height,
        "test_W": te.cameras.width, "test_H": te.cameras.height,
        "n": len(tr), "dtype": torch.float32,
    }


GAUSSIAN_LRS = {  # Gaussian param key -> OptimConfig field of its learning rate
    "means": "means", "quats": "rotations", "log_scales": "scales", "opacity_logits": "opacity",
    "sh_dc": "sh_dc", "sh_rest": "sh_rest", "motion_coefs": "motion_coefs",
}


def _make_optimizers(cfg: MethodConfig, model, bpnet) -> dict:
    """Adam (eps from the config) for the Gaussians (one group per attribute), bases and BP-Net."""
    import torch

    o = cfg.optim
    groups = [{"params": [model.params[k]], "lr": getattr(o, f), "name": k} for k, f in GAUSSIAN_LRS.items()]
    opts = {
        "gaussians": torch.optim.Adam(groups, lr=0.0, eps=o.eps),
        "bases": torch.optim.Adam(model.bases.parameters(), lr=o.motion_bases, eps=o.eps),
    }
    if bpnet is not None:
        # The per-frame camera embedding gets its own group: each frame's row is updated only on
        # that frame's steps, so short runs need a larger step for it (blur.embedding_lr_scale).
        emb = list(bpnet.embedding.parameters())
        rest = [p for n, p in bpnet.named_parameters() if not n.startswith("embedding.")]
        opts["bpnet"] = torch.optim.Adam([{"params": rest, "scale": 1.0},
                                          {"params": emb, "scale": cfg.blur.embedding_lr_scale}],
                                         lr=cfg.blur.lr, eps=o.eps)
    return opts


def exp_lr(start: float, end: float, progress: float) -> float:
    """Log-linear interpolation from ``start`` to ``end``; progress clamped to [0,1]."""
    p = min(max(progress, 0.0), 1.0)
    return math.exp((1 - p) * math.log(start) + p * math.log(end))


def _set_lrs(run: Run, s: int) -> None:
    """Learning rates of step ``s``: means decay over means_decay_frac, BP-Net from its start."""
    cfg = run.cfg
    for group in run.optimizers["gaussians"].param_groups:
        if group["name"] == "means":
            group["lr"] = exp_lr(cfg.optim.means, cfg.optim.means_final, s / cfg.every(cfg.optim.means_decay_frac))
    if "bpnet" in run.optimizers:
        start = cfg.at(cfg.blur.start_frac)
        lr = exp_lr(cfg.blur.lr, cfg.blur.lr_final, (s - start) / cfg.every(cfg.blur.lr_decay_frac))
        for group in run.optimizers["bpnet"].param_groups:
            group["lr"] = lr * group["scale"]


def _step_generator(seed: int, step: int):
    """The generator that draws step ``step``'s view: a pure function of (seed, step)."""
    import torch

    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2 ** 63 - 1))


def _uses_virtual(run: Run, s: int) -> bool:
    u = run.cfg.unseen
    return (run.virtual is not None and s % u.every == 0
            and run.cfg.at(u.start_frac) <= s < max(run.cfg.at(u.end_frac), 1))


def _target(run: Run, s: int) -> dict:
    """The view step ``s`` trains on: a training frame, or every n-th step a virtual view.

    Returns image (H,W,3), mask (H,W) or None, depth (H,W) or None, K, w2c, frame (int), virtual,
    and for a training frame its view index ``view``.
    """
    gen = _step_generator(run.record["seed"], s)
    d = run.data
    if _uses_virtual(run, s):
        v = run.virtual
        j = torch_randint(len(v), gen)
        return {"image": v.images[j], "mask": v.motion_mask[j], "depth": None, "K": v.K[j], "w2c": v.w2c[j],
                "frame": int(d["frame"][int(v.source_frame[j])]), "virtual": True}
    i = int(torch_randint(d["n"], gen))
    return {"image": d["images"][i], "mask": None if d["mask"] is None else d["mask"][i], "depth": d["depth"][i],
            "K": d["K"][i], "w2c": d["w2c"][i], "frame": int(d["frame"][i]), "virtual": False, "view": i}


def torch_randint(n: int, gen) -> int:
    import torch

    return int(torch.randint(n, (1,), generator=gen).item())


def _sh_degree(cfg: MethodConfig, s: int) -> int:
    return min(cfg.model.sh_degree, s // cfg.every(cfg.model.sh_increase_every_frac))


def _chw(x):
    """(H,W,C) -> (1,C,H,W)."""
    return x.permute(2, 0, 1)[None]


def _forward(run: Run, s: int, t: dict) -> tuple[dict, Any, Any, Any]:
    """Render the target's camera and compute every loss term of step ``s``.

    Returns (terms: name -> weighted scalar tensor, render result, prediction (1,3,H,W),
    (kernels (1,K²,H,W), mask (1,1,H,W)) or None).
    """
    import torch

    from bench.method import losses as L
    from bench.method.kernels import blur_formation

    cfg, d = run.cfg, run.data
    r = run.model.render(t["K"], t["w2c"], d["W"], d["H"], t["frame"], sh_degree=_sh_degree(cfg, s),
                         backend=run.backend)
    sharp = _chw(r.rgb)
    gt = _chw(t["image"])
    blur = None
    pred = sharp
    if run.bpnet is not None and s >= cfg.at(cfg.blur.start_frac):
        frame = torch.tensor([t["frame"]], device=run.device)
        kernels, mask = run.bpnet(frame, sharp, _chw(r.depth), _chw(r.dyn_mask))
        pred = blur_formation(sharp, kernels, mask)
        blur = (kernels, mask)
    elif run.true_blur is not None and not t["virtual"]:  # virtual views are warped frames, no known blur
        pred = run.true_blur(sharp, t["view"])
    lw = cfg.loss
    terms = {"rec": L.reconstruction_loss(pred, gt, lw.ssim_lambda)}
    if t["mask"] is not None and lw.dynamic_mask > 0:
        terms["dyn_mask"] = lw.dynamic_mask * L.trimmed_l1(r.dyn_mask[..., 0], t["mask"], trim=lw.trim_fraction)
    if t["depth"] is not None and lw.depth > 0:
        terms["depth"] = lw.depth * L.depth_loss(r.depth[..., 0], t["depth"], trim=lw.trim_fraction)
    if not t["virtual"] and lw.low_frequency > 0 and s >= cfg.at(lw.low_frequency_start_frac):
        terms["low_freq"] = lw.low_frequency * L.low_frequency_loss(sharp, gt, lw.low_frequency_factor)
    if blur is not None:
        if lw.blur_sparsity > 0 and s >= cfg.at(lw.blur_sparsity_start_frac):
            terms["blur_sparsity"] = lw.blur_sparsity * L.blur_aware_sparsity(*blur)
        if lw.mask_sparsity > 0 and s >= cfg.at(lw.mask_sparsity_start_frac):
            terms["mask_sparsity"] = lw.mask_sparsity * L.mask_sparsity(blur[1])
    return terms, r, pred, blur


def _train_step(run: Run, s: int) -> dict[str, float]:
    """One optimisation step (0-based step index ``s``); returns float terms and train PSNR."""
    from bench.method.losses import psnr

    t = _target(run, s)
    _set_lrs(run, s)
    for opt in run.optimizers.values():
        opt.zero_grad(set_to_none=True)
    terms, r, pred, _ = _forward(run, s, t)
    loss = sum(terms.values())
    loss.backward()
    _densify_stats(run, r)
    for opt in run.optimizers.values():
        opt.step()
    _densify_ops(run, s + 1)
    out = {k: float(v.detach()) for k, v in terms.items()}
    out["loss"] = float(loss.detach())
    out["unseen"] = float(t["virtual"])
    if not t["virtual"]:
        out["train_psnr"] = psnr(pred, _chw(t["image"]))
    return out


def _accumulate(run: Run, values: dict[str, float]) -> None:
    """Add one step's values to the running sums of the current logging window."""
    acc = run.curve_acc
    acc["count"] = acc.get("count", 0) + 1
    for k, v in values.items():
        acc[k] = acc.get(k, 0.0) + v
        if k == "train_psnr":
            acc["psnr_count"] = acc.get("psnr_count", 0) + 1


def _curve_row(run: Run, step: int) -> dict:
    """Means over the logging window (loss terms over all steps, PSNR over training-view steps)."""
    acc, n = run.curve_acc, max(run.curve_acc.get("count", 0), 1)
    row = {"step": step}
    for k in CURVE_TERMS:
        row[k] = acc.get(k, 0.0) / n
    pn = acc.get("psnr_count", 0)
    row["train_psnr"] = acc["train_psnr"] / pn if pn else float("nan")
    row["num_gaussians"] = run.model.num_gaussians
    row["elapsed_s"] = run.elapsed_s
    run.curve_acc = {}
    return row


def _read_curves(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_curves(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    fields = ["step", *CURVE_TERMS, "train_psnr", "num_gaussians", "elapsed_s"]
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, buf.getvalue())


def _truncate_curves(run_dir: Path, step: int) -> None:
    """Drop curve rows written after the checkpoint a resumed run continues from."""
    path = run_dir / rundir.CURVES
    rows = _read_curves(path)
    kept = [r for r in rows if int(r["step"]) <= step]
    if len(kept) != len(rows) or (rows and step == 0):
        _write_curves(path, kept)


def _loop(run: Run, log, progress: bool) -> None:
    """Train from ``run.step`` to ``train.steps`` with periodic logging and checkpoints."""
    cfg = run.cfg
    total = cfg.train.steps
    curves_path = run.run_dir / rundir.CURVES
    rows = _read_curves(curves_path)
    start_clock = time.perf_counter() - run.elapsed_s
    bar = _ProgressBar(total, run.step, enabled=progress)
    with bar:
        while run.step < total:
            s = run.step
            values = _train_step(run, s)
            run.step = s + 1
            run.elapsed_s = time.perf_counter() - start_clock
            _accumulate(run, values)
            bar.update(run.step, values, run.model.num_gaussians)
            if run.step % cfg.train.log_every == 0 or run.step == total:
                rows.append(_curve_row(run, run.step))
                _write_curves(curves_path, rows)
            if run.step % cfg.train.checkpoint_every == 0 or run.step == total:
                _save_checkpoint(run)
    log(f"trained {total} steps in {run.elapsed_s:.1f} s; {run.model.num_gaussians} Gaussians "
        f"({run.model.num_dynamic} dynamic)")


class _ProgressBar:
    """rich progress bar with loss, training PSNR and the Gaussian count (no-op when disabled)."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self.task = self.progress.add_task("train", total=total, completed=done, info="")
        self.psnr = float("nan")

    def __enter__(self):
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)

    def update(self, step: int, values: dict, n: int) -> None:
        if not self.enabled:
            return
        self.psnr = values.get("train_psnr", self.psnr)
        info = f"loss {values['loss']:.4f}  psnr {self.psnr:.2f}  N {n}"
        self.progress.update(self.task, completed=step, info=info)


# -- checkpoints ---------------------------------------------------------------------------------


def _rng_state() -> dict:
    import numpy as np
    import torch

    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    """Restore the global RNGs; every state must be the CPU ByteTensor torch saved."""
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(run: Run) -> None:
    """Atomically write checkpoints/step_NNNNNNN.pt and drop all but the newest few."""
    state = {
        "step": run.step, "elapsed_s": run.elapsed_s, "init_path": run.init_path,
        "model": run.model.state_dict(),
        "bpnet": None if run.bpnet is None else run.bpnet.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in run.optimizers.items()},
        "densify": run.densify_state.state_dict(),
        "rng": _rng_state(), "curve_acc": dict(run.curve_acc),
        "config_hash": run.record["config_hash"],
    }
    torch_save(rundir.checkpoint_path(run.run_dir, run.step), state)
    for old in sorted((run.run_dir / rundir.CHECKPOINTS).glob("step_*.pt"))[:-KEEP_CHECKPOINTS]:
        old.unlink()


def read_checkpoint(path: Path, device) -> dict:
    """A checkpoint's state with its training tensors on ``device`` and its RNG states on the CPU.

    Loading with ``map_location=device`` would also move the saved RNG states (CPU ByteTensors)
    to the GPU, which ``torch.set_rng_state`` rejects; so everything is read onto the CPU and only
    the training state is moved (optimiser moments are placed by ``Optimizer.load_state_dict``,
    which keeps Adam's step counters on the CPU).
    """
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "bpnet", "densify"):
        state[key] = _to_device(state[key], device)
    return state


def _to_device(obj, device):
    """``obj`` (nested dicts/lists of tensors and plain values) with every tensor on ``device``."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _resume_state(run: Run) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, as (path, state), or None when there is none.

    An unreadable checkpoint (a job killed while the file system was writing it, a truncated copy)
    is renamed to ``*.corrupt``, kept for inspection, and the next older one is tried, so a
    requeued job does not die on it every time. BenchError when checkpoints exist and none loads.
    """
    found = sorted((run.run_dir / rundir.CHECKPOINTS).glob("step_*.pt"), reverse=True)
    for path in found:
        try:
            return path, read_checkpoint(path, run.device)
        except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... here
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            path.rename(path.with_name(path.name + ".corrupt"))
            run.log(f"checkpoint {path.name} does not load ({reason}); kept as {path.name}.corrupt, "
                    "trying the next older one")
    if found:
        raise BenchError(f"{found[0]}: no checkpoint of this run loads (each kept as *.corrupt); "
                         "delete the run directory's checkpoints/ to start over")
    return None


def _load_checkpoint(run: Run, path: Path, state: dict) -> None:
    """Restore every piece of training state from ``state`` (read from ``path``) into ``run``."""
    from bench.method.model import GaussianModel

    if state.get("config_hash") != run.record["config_hash"]:
        raise BenchError(f"{path}: checkpoint of another config; use another --out")
    run.model = GaussianModel.from_state_dict(state["model"]).to(run.device)
    if run.bpnet is not None:
        run.bpnet.load_state_dict(state["bpnet"])
    run.optimizers = _make_optimizers(run.cfg, run.model, run.bpnet)
    for k, opt in run.optimizers.items():
        opt.load_state_dict(state["optimizers"][k])
    run.densify_state.load_state_dict(state["densify"])
    run.step, run.elapsed_s, run.init_path = state["step"], state["elapsed_s"], state["init_path"]
    run.curve_acc = dict(state["curve_acc"])
    _set_rng_state(state["rng"])


# -- outputs -------------------------------------------------------------------------------------


def _png_bytes(img) -> bytes:
    """PNG encoding of a float (H,W,3) RGB or (H,W) image in [0,1] (8-bit)."""
    import cv2
    import numpy as np

    arr = np.clip(np.round(img.detach().float().cpu().numpy() * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3:
        arr = np.ascontiguousarray(arr[..., ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _npz_bytes(**arrays) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def train_view_indices(n: int, count: int) -> list[int]:
    """``count`` training views spread evenly over ``n`` frames (first and last included)."""
    if count <= 0 or n == 0:
        return []
    if count == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(min(count, n))})


def _write_renders(run: Run, log) -> None:
    """Sharp test renders and, for a few training views, reconstruction + kernels + mask."""
    import torch

    from bench.atomic import write_bytes

    d, cfg = run.data, run.cfg
    sh = _sh_degree(cfg, cfg.train.steps)
    out_test = run.run_dir / rundir.TEST_RENDERS
    with torch.no_grad():
        for j, name in enumerate(d["test_names"]):
            r = run.model.render(d["test_K"][j], d["test_w2c"][j], d["test_W"], d["test_H"],
                                 int(d["test_frame"][j]), sh_degree=sh, backend=run.backend)
            write_bytes(out_test / f"{name}.png", _png_bytes(r.rgb.clamp(0, 1)))
        out_train = run.run_dir / rundir.TRAIN_RENDERS
        K = cfg.blur.kernel_size
        for i in train_view_indices(d["n"], cfg.train.num_train_renders):
            name = d["names"][i]
            t = {"image": d["images"][i], "mask": None, "depth": None, "K": d["K"][i], "w2c": d["w2c"][i],
                 "frame": int(d["frame"][i]), "virtual": False, "view": i}
            _, r, pred, blur = _forward(run, cfg.train.steps, t)
            write_bytes(out_train / f"{name}_sharp.png", _png_bytes(r.rgb.clamp(0, 1)))
            write_bytes(out_train / f"{name}_blurred.png", _png_bytes(pred[0].permute(1, 2, 0).clamp(0, 1)))
            if blur is None:
                continue
            kernels, mask = blur
            write_bytes(out_train / f"{name}_mask.png", _png_bytes(mask[0, 0]))
            k = kernels[0].permute(1, 2, 0).reshape(d["H"], d["W"], K, K)
            write_bytes(out_train / f"{name}_kernels.npz",
                        _npz_bytes(kernels=k.cpu().numpy().astype("float32"),
                                   mask=mask[0, 0].cpu().numpy().astype("float32")))
    if run.bpnet is None:
        log("no blur module (blur.enabled=false): training renders hold the sharp render as the "
            "reconstruction; no kernels or blur mask exist")
    log(f"wrote {len(d['test_names'])} test renders and {cfg.train.num_train_renders} training views")


def _finish(run: Run, log) -> dict:
    """Renders and train_summary.json after the last step."""
    import torch

    from bench.provenance import peak_memory_bytes

    _write_renders(run, log)
    peak = peak_memory_bytes(run.device.type == "cuda")
    rows = _read_curves(run.run_dir / rundir.CURVES)
    summary = {
        "steps": run.step,
        "wall_time_s": round(run.elapsed_s, 3),
        "peak_memory_bytes": peak["gpu_allocated"] if peak["gpu_allocated"] is not None else peak["cpu_rss"],
        "peak_memory": peak,
        "device": str(run.device),
        "backend": run.backend,
        "threads": torch.get_num_threads(),
        "motion_init": run.init_path,
        "num_gaussians": run.model.num_gaussians,
        "num_dynamic": run.model.num_dynamic,
        "final_train_psnr": float(rows[-1]["train_psnr"]) if rows else None,
        "final_loss": float(rows[-1]["loss"]) if rows else None,
        "method": run.record["method"], "dataset": run.record["dataset"], "scene": run.record["scene"],
        "seed": run.record["seed"], "profile": run.record["profile"], "config_hash": run.record["config_hash"],
    }
    write_json(run.run_dir / rundir.TRAIN_SUMMARY, summary)
    log(f"done: {json_line(summary)}")
    return summary


def json_line(d: dict) -> str:
    import json

    return json.dumps(d, default=str)


# -- densification -------------------------------------------------------------------------------


class DensifyState:
    """Gradient statistics of adaptive density control (bench.method.densify.new_state) + extent."""

    def __init__(self, num_gaussians: int, device, extent: float):
        from bench.method.densify import new_state

        self.stats = new_state(num_gaussians, device)
        self.extent = extent

    def state_dict(self) -> dict:
        return {"stats": {k: v.clone() for k, v in self.stats.items()}, "extent": self.extent}

    def load_state_dict(self, state: dict) -> None:
        self.stats = {k: v.clone() for k, v in state["stats"].items()}
        self.extent = state["extent"]


def _densify_stats(run: Run, r) -> None:
    """Accumulate the view-space gradients of this step while adaptive density control runs."""
    from bench.method.densify import accumulate_gradients

    d = run.cfg.densify
    if not d.enabled or run.step >= run.cfg.at(d.end_frac) or r.raw.means2d.grad is None:
        return
    accumulate_gradients(run.densify_state.stats, r.raw.means2d.grad, r.raw.radii, run.data["W"], run.data["H"])


def _growth_threshold(run: Run) -> float:
    """The gradient threshold, raised so that growth cannot exceed ``densify.max_gaussians``."""
    d = run.cfg.densify
    if d.max_gaussians <= 0:
        return d.grad_threshold
    stats = run.densify_state.stats
    grads = stats["grad2d"] / stats["count"].clamp_min(1)
    room = d.max_gaussians - run.model.num_gaussians
    if room <= 0:
        return math.inf
    if int((grads > d.grad_threshold).sum()) <= room:
        return d.grad_threshold
    # Only the `room` largest gradients grow (each grown Gaussian adds one net).
    return max(d.grad_threshold, float(grads.topk(room + 1).values[-1]))


def _densify_ops(run: Run, done: int) -> None:
    """Clone/split/prune, opacity reset and DGD due after ``done`` completed steps."""
    from bench.method.densify import densify_and_prune, reset_opacity

    cfg, d = run.cfg, run.cfg.densify
    opt = run.optimizers["gaussians"]
    params = run.model.params
    if d.enabled and cfg.at(d.start_frac) < done <= cfg.at(d.end_frac):
        if done % cfg.every(d.every_frac) == 0:
            densify_and_prune(params, opt, run.densify_state.stats, scene_extent=run.densify_state.extent,
                              grad_threshold=_growth_threshold(run), percent_dense=d.percent_dense,
                              prune_opacity=d.prune_opacity, prune_big=done > cfg.at(d.prune_big_after_frac),
                              max_world_scale=d.prune_scale_frac_extent)
        if done % cfg.every(d.opacity_reset_every_frac) == 0:
            reset_opacity(params, opt)
    if d.dgd and done == max(1, cfg.at(d.dgd_at_frac)):
        _dgd(run, done)


def _dgd(run: Run, done: int) -> None:
    """Dynamic Gaussian densification: new dynamic Gaussians copy their neighbour's coefficients."""
    import torch

    from bench.method.densify import append_gaussians, dynamic_gaussian_densification
    from bench.method.model import rgb_to_sh_dc

    d, model = run.cfg.densify, run.model
    p = model.params
    dyn = p["flag"] > 0.5
    gen = torch.Generator().manual_seed(run.record["seed"] * 7919 + done)
    rows = dynamic_gaussian_densification(run.scene.train, model.bases, p["means"].detach()[dyn],
                                          p["motion_coefs"].detach()[dyn],
                                          max_points_per_view=d.dgd_points_per_view, opacity=d.dgd_opacity,
                                          generator=gen)
    m = rows["means"].shape[0]
    if m == 0:
        run.log(f"DGD at step {done}: no dynamic pixel with depth or no dynamic Gaussian; nothing added")
        return
    dev = p["means"].device
    new = {
        "means": rows["means"], "quats": rows["quats"], "log_scales": rows["log_scales"],
        "opacity_logits": rows["opacity_logits"], "sh_dc": rgb_to_sh_dc(rows["rgb"])[:, None, :],
        "sh_rest": torch.zeros((m,) + tuple(p["sh_rest"].shape[1:]), device=dev),
        "motion_coefs": rows["coef_logits"], "flag": torch.ones(m, device=dev),
    }
    append_gaussians(p, run.optimizers["gaussians"], run.densify_state.stats, new)
    run.log(f"DGD at step {done}: added {m} dynamic Gaussians (total {model.num_gaussians})")
