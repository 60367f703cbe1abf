"""Test-set checkpoint selection (``eval.select: best_test``), as the public dydeblur code does it.

dydeblur's ``train.py`` evaluates the test views at 38 iterations (3600, 4000, 5000, 6000, then every
1000 to 40000), keeps the model with the best mean test PSNR and renders that one: every number it
reports is the best of 38 evaluations on the test set. ``CheckpointSelector`` reproduces this, with the
iterations scaled to ``train.steps``, so that its effect can be measured (docs/method.md §12). The
evaluations only read the model: the training trajectory is the one ``select: last`` follows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from bench import rundir
from bench.atomic import torch_save
from bench.errors import BenchError
from bench.method.losses import psnr
from bench.method.model import GaussianModel

if TYPE_CHECKING:
    from bench.method.run_state import Run, SceneTensors

UPSTREAM_STEPS = 40000
UPSTREAM_EVALS = (3600, 4000, *range(5000, UPSTREAM_STEPS + 1, 1000))


def selection_steps(steps: int) -> list[int]:
    """The upstream evaluation iterations scaled to a run of ``steps`` steps (rounded half up, at
    least step 1, duplicates merged): 38 steps for any run of at least 800 steps."""
    return sorted({max(1, math.floor(it * steps / UPSTREAM_STEPS + 0.5)) for it in UPSTREAM_EVALS})


@torch.no_grad()
def mean_test_psnr(model: GaussianModel, data: SceneTensors, gt: torch.Tensor, sh_degree: int, backend: str) -> float:
    """Mean over the test views of each view's PSNR (dB) of the sharp render, clamped to [0,1],
    against ``gt`` (M,H,W,3) in [0,1]: the figure upstream selects on."""
    values = [psnr(model.render(data.test_K[j], data.test_w2c[j], data.test_W, data.test_H, int(data.test_frame[j]),
                                sh_degree=sh_degree, backend=backend).rgb, gt[j])
              for j in range(len(data.test_names))]
    return sum(values) / len(values)


class CheckpointSelector:
    """Owns the schedule and state of test-set selection for one run.

    State: ``history`` [(step, mean test PSNR)] and the best entry with its model state (in memory,
    in every checkpoint through ``state_dict``, so a resumed run selects exactly as an uninterrupted
    one; and in ``checkpoints/best_test.pt`` once training ends, for evaluation).
    """

    def __init__(self, run: Run):
        self.steps = set(selection_steps(run.cfg.train.steps))
        self.gt = run.scene.test.images.stack().float().to(run.device)  # (M,H,W,3)
        self.history: list[tuple[int, float]] = []
        self.best: dict | None = None  # {"step", "psnr", "model"}

    def after_step(self, run: Run) -> None:
        """Evaluate the test views when ``run.step`` is on the schedule; keep the state if it is the best."""
        from bench.method.step import sh_degree

        if run.step not in self.steps:
            return
        value = mean_test_psnr(run.model, run.data, self.gt, sh_degree(run.cfg, run.step), run.backend)
        self.history.append((run.step, value))
        if self.best is None or value > self.best["psnr"]:
            self.best = {"step": run.step, "psnr": value, "model": run.model.state_dict()}

    def state_dict(self) -> dict:
        return {"history": list(self.history), "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.history = [(int(s), float(p)) for s, p in state["history"]]
        self.best = state["best"]

    def save(self, run_dir) -> None:
        """Write ``checkpoints/best_test.pt``: the selected state, its step and PSNR, the history."""
        torch_save(run_dir / rundir.BEST_TEST_STATE, {**self.best, "history": self.history})

    def summary(self) -> dict:
        """For train_summary.json: the selected step and PSNR, and every evaluation it was chosen from."""
        return {"selected_step": self.best["step"] if self.best else None,
                "selected_test_psnr": round(self.best["psnr"], 4) if self.best else None,
                "evaluations": len(self.history),
                "history": [[s, round(p, 4)] for s, p in self.history]}


def load_best_model(run_dir, device: torch.device) -> tuple[GaussianModel, int]:
    """(the model of ``checkpoints/best_test.pt``, its step); BenchError when the run has none."""
    path = run_dir / rundir.BEST_TEST_STATE
    if not path.is_file():
        raise BenchError(f"{path}: missing; the run was not trained with eval.select=best_test")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    return GaussianModel.from_state_dict(saved["model"]).to(device), int(saved["step"])
