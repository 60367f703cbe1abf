"""Checkpoints of a training run: every piece of state a resume needs, written atomically.

``checkpoints/step_NNNNNNN.pt`` (path from bench.rundir) holds the Gaussians, motion bases, BP-Net,
optimiser moments, densification statistics, the global RNG states and the open curve window; the
newest that loads is resumed from, so an interrupted run continues exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench import rundir
from bench.atomic import torch_save
from bench.errors import BenchError
from bench.method.model import GaussianModel
from bench.method.optim import make_optimizers
from bench.method.progress import CurveWindow
from bench.method.run_state import Run

KEEP_CHECKPOINTS = 2


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    """Restore the global RNGs; every state must be the CPU ByteTensor torch saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: Run) -> None:
    """Atomically write checkpoints/step_NNNNNNN.pt and drop all but the newest few."""
    state = {
        "step": run.step, "elapsed_s": run.elapsed_s, "init_path": run.init_path,
        "model": run.model.state_dict(),
        "bpnet": None if run.bpnet is None else run.bpnet.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in run.optimizers.items()},
        "densify": run.densify.state_dict(),
        "rng": rng_state(), "curve_acc": dict(run.curves.sums),
        "config_hash": run.record["config_hash"],
        "selector": None if run.selector is None else run.selector.state_dict(),
    }
    torch_save(rundir.checkpoint_path(run.run_dir, run.step), state)
    for old in rundir.checkpoints(run.run_dir)[:-KEEP_CHECKPOINTS]:
        old.unlink()


def read_checkpoint(path: Path, device: torch.device) -> dict:
    """A checkpoint's state with its training tensors on ``device`` and its RNG states on the CPU.

    Loading with ``map_location=device`` would also move the saved RNG states (CPU ByteTensors)
    to the GPU, which ``torch.set_rng_state`` rejects; so everything is read onto the CPU and only
    the training state is moved (optimiser moments are placed by ``Optimizer.load_state_dict``,
    which keeps Adam's step counters on the CPU).
    """
    state = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model", "bpnet", "densify", "selector"):
        state[key] = _to_device(state.get(key), device)
    return state


def _to_device(obj, device):
    """``obj`` (nested dicts/lists of tensors and plain values) with every tensor on ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def resume_state(run: Run) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, as (path, state), or None when there is none.

    An unreadable checkpoint (a job killed while the file system was writing it, a truncated copy)
    is renamed to ``*.corrupt``, kept for inspection, and the next older one is tried, so a
    requeued job does not die on it every time. BenchError when checkpoints exist and none loads.
    """
    found = rundir.checkpoints(run.run_dir)[::-1]
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


def load_checkpoint(run: Run, path: Path, state: dict) -> None:
    """Restore every piece of training state from ``state`` (read from ``path``) into ``run``."""
    if state.get("config_hash") != run.record["config_hash"]:
        raise BenchError(f"{path}: checkpoint of another config; use another --out")
    run.model = GaussianModel.from_state_dict(state["model"]).to(run.device)
    if run.bpnet is not None:
        run.bpnet.load_state_dict(state["bpnet"])
    run.optimizers = make_optimizers(run.cfg, run.model, run.bpnet)
    for k, opt in run.optimizers.items():
        opt.load_state_dict(state["optimizers"][k])
    run.densify.load_state_dict(state["densify"])
    run.step, run.elapsed_s, run.init_path = state["step"], state["elapsed_s"], state["init_path"]
    run.curves = CurveWindow(state["curve_acc"])
    set_rng_state(state["rng"])
    if run.selector is not None:
        run.selector.load_state_dict(state["selector"])
