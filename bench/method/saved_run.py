"""A trained run's saved state, loaded after training to evaluate it another way: test-time pose
refinement of the final or the test-selected state (docs/method.md §12; ``bench eval
--refine-test-poses``). Kept apart from training, which it reads, so nothing imports back."""

from __future__ import annotations

from pathlib import Path

import torch

from bench import rundir
from bench.data import registry as datasets
from bench.errors import BenchError
from bench.method.checkpoints import read_checkpoint
from bench.method.config import validate
from bench.method.device import pick_device, set_threads
from bench.method.model import GaussianModel
from bench.method.outputs import write_refined_renders
from bench.method.run_state import SceneTensors
from bench.method.selection import load_best_model
from bench.method.step import sh_degree
from bench.metrics.evaluate import read_config


def refine_saved_run(run_dir, steps: int, select: str | None = None, progress: bool = True) -> str:
    """Refine the test poses of a trained run from its saved state and write that mode's renders
    (bench.rundir.eval_renders); returns the mode's name. ``select``: the state refined, ``last``
    (the final checkpoint) or ``best_test`` (checkpoints/best_test.pt); default the run's own
    ``eval.select``. BenchError when the run has no such saved state."""
    run_dir = Path(run_dir)
    record = read_config(run_dir)
    cfg = validate(record.get("config") or {}, str(run_dir / rundir.CONFIG))
    select = select or cfg.eval.select
    set_threads(cfg)
    choice = pick_device("auto", cfg.train.backend, torch.cuda.is_available())
    device = choice.device
    if select == "best_test":
        model, _ = load_best_model(run_dir, device)
    else:
        final = rundir.checkpoint_path(run_dir, cfg.train.steps)
        if not final.is_file():
            raise BenchError(f"{final}: missing; refining the test poses of the last state needs the run's final "
                             "checkpoint")
        model = GaussianModel.from_state_dict(read_checkpoint(final, device)["model"]).to(device)
    scene = datasets.load_scene(record["dataset"], record["scene"], data_root=record.get("data_root"))
    data = SceneTensors.from_scene(scene, device)
    gt = scene.test.images.stack().float().to(device)
    mode = rundir.eval_mode(select, steps)
    eval_cfg = cfg.eval.model_copy(update={"refine_test_poses": steps})
    write_refined_renders(model, data, gt, run_dir / rundir.eval_renders(mode), eval_cfg,
                          sh_degree(cfg, cfg.train.steps), choice.backend, progress)
    return mode
