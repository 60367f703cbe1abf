"""Per-component profile of `full` training steps on a synthetic scene at the `cpu` profile.

Run: python tests/perf/profile_step.py [--scene motion_0] [--steps 300] [--warmup 10]
         [--threads 1] [--data-root DIR] [--method full] [--code CHECKOUT]
Trains the real loop (bench.method.train internals, no run directory outputs besides a temporary
config) for --steps steps of the cpu schedule and prints the mean milliseconds per step of each
component, timed by wrapping the functions the step calls. Times are exclusive: a component's
row does not include the rows nested inside it (for example "render: other" excludes projection,
tile planning and compositing). Backward rows: compositing and blur formation time their
autograd Functions' backward; BP-Net's backward is the interval between the first gradient
reaching its outputs and the last one reaching its first convolution; "backward: other" is the
rest of loss.backward() (projection, SH, motion bases, losses). "step: bookkeeping" is what the
step spends outside every row (learning rates, zero_grad, host syncs of loss terms, PSNR).
Times are this thread's CPU time by default (--clock). The first --warmup steps (allocator warm-up, extension load) are left out of the means.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch


def _code_root() -> str:
    """The checkout whose `bench` package is profiled: --code DIR (read before argparse, since
    the imports below depend on it), else this file's checkout."""
    if "--code" in sys.argv:
        return str(Path(sys.argv[sys.argv.index("--code") + 1]).resolve())
    return str(Path(__file__).resolve().parents[2])


sys.path.insert(0, _code_root())


class Clock:
    """Exclusive wall-clock accounting over nested, named sections."""

    def __init__(self, now=time.thread_time):
        self.now = now
        self.total = defaultdict(float)
        self.stack: list[list] = []  # [name, start, child seconds]
        self.enabled = False

    def push(self, name: str) -> None:
        self.stack.append([name, self.now(), 0.0])

    def pop(self) -> None:
        name, start, child = self.stack.pop()
        spent = self.now() - start
        if self.enabled:
            self.total[name] += spent - child
        if self.stack:
            self.stack[-1][2] += spent

    def wrap(self, owner, attr: str, name: str) -> None:
        """Replace owner.attr by a timed version (functions, methods, staticmethods alike)."""
        raw = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        is_static = isinstance(raw, staticmethod)
        fn = raw.__func__ if is_static else raw
        clock = self

        def timed(*args, **kwargs):
            clock.push(name)
            try:
                return fn(*args, **kwargs)
            finally:
                clock.pop()

        setattr(owner, attr, staticmethod(timed) if is_static else timed)


def _composite_functions(composite_mod) -> list[tuple[type, str]]:
    """The compositor's autograd Functions (one per renderer path)."""
    found = []
    for mod in [composite_mod, sys.modules.get("bench.render.cpu_ext.ops")]:
        if mod is None:
            continue
        for value in vars(mod).values():
            if isinstance(value, type) and issubclass(value, torch.autograd.Function) \
                    and value is not torch.autograd.Function and "backward" in value.__dict__:
                found.append(value)
    return found


def instrument(clock: Clock) -> None:
    """Wrap every component the training step calls (those the profiled code has: older
    checkouts lack some)."""
    import bench.method.densify as densify
    import bench.method.kernels as kernels
    import bench.method.losses as losses
    import bench.method.train as train
    import bench.render.composite as composite_mod
    from bench.method.bpnet import BPNet
    from bench.method.model import GaussianModel

    # bench.render re-exports the function `rasterize`, which shadows the submodule's name
    rast = sys.modules["bench.render.rasterize"]
    try:
        import bench.render.cpu_ext.ops as ops
    except ImportError:  # code before the compiled kernels
        ops = None
    strategy = getattr(densify, "DensifyStrategy", None)
    wraps = [
        (GaussianModel, "render", "render: other (SH, channels, untile)"),
        (GaussianModel, "at_frame", "motion bases (forward)"),
        (rast, "project", "projection (forward)"),
        (rast, "quat_scale_to_factor", "projection (forward)"),
        (rast, "project_compiled", "projection (forward)"),
        (getattr(ops, "_CompiledProjection", None), "backward", "projection backward"),
        (rast, "plan_tiles", "tile planning"),
        (rast, "plan_tiles_compiled", "tile planning"),
        (rast, "composite_compiled", "compositing forward"),
        (rast, "pair_tables", "pair tables (forward)"),
        (rast, "composite", "compositing forward"),
        *[(cls, "backward", "compositing backward") for cls in _composite_functions(composite_mod)
          if "Projection" not in cls.__name__],
        (BPNet, "forward", "BP-Net forward"),
        (kernels, "blur_formation", "blur formation forward"),
        (kernels._ShiftedSum, "backward", "blur formation backward"),
        (getattr(kernels, "_ShiftedSumCompiled", None), "backward", "blur formation backward"),
        *[(losses, name, f"loss: {name}") for name in (
            "reconstruction_loss", "trimmed_l1", "depth_loss", "low_frequency_loss",
            "blur_aware_sparsity", "mask_sparsity")],
        (losses, "psnr", "train PSNR (host sync)"),
        (strategy, "step_post_backward", "densification: statistics"),
        (strategy, "step_post_optimizer", "densification: clone/split/prune, DGD"),
        (torch.Tensor, "backward", "backward: other (SH, motion, losses)"),
        (train, "_train_step", "step: bookkeeping"),
    ]
    for owner, attr, name in wraps:
        if owner is not None and attr in (vars(owner) if isinstance(owner, type) else dir(owner)):
            clock.wrap(owner, attr, name)


def hook_bpnet_backward(clock: Clock, bpnet) -> None:
    """Time BP-Net's backward as the interval from its outputs' gradient to its first conv's.

    The autograd engine runs a CPU graph on the calling thread, nodes in reverse creation order;
    BP-Net's input is detached, so its nodes form one contiguous stretch of the backward pass."""
    first = bpnet.scene_cnn[0]
    state = {"open": False, "left": 0}

    def start(*_):
        if not state["open"]:
            state["open"], state["left"] = True, 2
            clock.push("BP-Net backward")

    def end(_param):
        if state["open"]:
            state["left"] -= 1
            if state["left"] == 0:
                state["open"] = False
                clock.pop()

    orig_forward = type(bpnet).forward

    def forward(self, *args, **kwargs):
        kernels, mask = orig_forward(self, *args, **kwargs)
        if torch.is_grad_enabled():
            for t in (kernels, mask):
                t.grad_fn.register_prehook(start)
        return kernels, mask

    bpnet.forward = forward.__get__(bpnet)
    first.weight.register_post_accumulate_grad_hook(end)
    first.bias.register_post_accumulate_grad_hook(end)


def wrap_optimizers(clock: Clock, optimizers: dict) -> None:
    for key, opt in optimizers.items():
        clock.wrap(opt, "step", f"optimiser step: {key}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="full")
    parser.add_argument("--scene", default="motion_0")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None, help="synthetic dataset root (default: registry)")
    parser.add_argument("--code", default=None,
                        help="profile the bench package of this checkout (e.g. an older commit's "
                             "worktree) instead of this one")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this thread's CPU time, which other processes on a shared machine "
                             "disturb much less than wall time (right for --threads 1)")
    ns = parser.parse_args()
    os.environ["BENCH_TORCH_THREADS"] = str(ns.threads)

    import bench.method.train as train
    from bench.method.config import resolve_config
    try:
        from bench.method.device import set_threads
    except ImportError:  # code before bench.method.device (e.g. 84c8113): threads set directly
        def set_threads(_cfg):
            torch.set_num_threads(ns.threads)
    try:
        from bench.method.progress import RunLog
    except ImportError:  # code before bench.method.progress (e.g. 84c8113)
        from bench.method.train import _Logger as RunLog
    from bench.data.registry import load_scene
    from bench.method.registry import get_method

    load_before = os.getloadavg()[0]
    clock = Clock(time.thread_time if ns.clock == "cpu" else time.perf_counter)
    instrument(clock)
    cfg = resolve_config(ns.method, "cpu", None)
    record = {"method": ns.method, "base_method": get_method(ns.method).base, "dataset": "synthetic",
              "scene": ns.scene, "seed": ns.seed, "profile": "cpu", "overrides": {},
              "data_root": ns.data_root, "config_hash": "profile", "config": cfg.to_dict()}
    set_threads(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        log = RunLog(Path(tmp) / "log.txt")
        scene = load_scene("synthetic", ns.scene, data_root=ns.data_root)
        run = train._build(Path(tmp), cfg, record, scene, torch.device("cpu"), "torch", log)
        if run.bpnet is not None:
            hook_bpnet_backward(clock, run.bpnet)
        wrap_optimizers(clock, run.optimizers)
        step_times, wall_times = [], []
        for s in range(ns.steps):
            clock.enabled = s >= ns.warmup
            t0, w0 = clock.now(), time.perf_counter()
            train._train_step(run, s)
            if clock.enabled:
                step_times.append(clock.now() - t0)
                wall_times.append(time.perf_counter() - w0)
            run.step = s + 1
    n = len(step_times)
    print(f"profile: {ns.method} on synthetic/{ns.scene}, cpu profile, {torch.get_num_threads()} "
          f"thread(s), steps {ns.warmup}..{ns.steps - 1} of {cfg.train.steps} "
          f"({n} timed), {run.model.num_gaussians} Gaussians at the end")
    try:
        from bench.render.cpu_ext import active_path
        path = active_path()
    except ImportError:  # code before the compiled kernels
        path = "torch"
    print(f"renderer compositing path: {path}; load average (1 min) before {load_before:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print(f"{'component':<52} {'ms/step':>9} {'share':>7}")
    total = sum(step_times) / n * 1e3
    for name, seconds in sorted(clock.total.items(), key=lambda kv: -kv[1]):
        ms = seconds / n * 1e3
        print(f"{name:<52} {ms:>9.2f} {ms / total:>7.1%}")
    print(f"{'total step (' + ns.clock + ')':<52} {total:>9.2f}")
    print(f"{'total step (wall clock, for reference)':<52} {sum(wall_times) / n * 1e3:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
