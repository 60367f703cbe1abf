"""Evaluation modes of a run: which state was scored and from which test poses (docs/method.md §12).

A mode is named by bench.rundir.eval_mode: ``last`` (the model at the end of training, what this
project reports), ``best_test`` (the state with the best test PSNR among the upstream schedule's
evaluations: selected on the test set), and either with ``+refine<N>`` (test cameras optimised N
steps against their ground truth). Every mode has its own test renders (bench.rundir.eval_renders)
and its own metrics block: results.json's ``metrics`` holds the mode the run's config asks for,
``evaluations`` every other mode evaluated, so no mode's numbers replace another's.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import rundir
from bench.errors import BenchError
from bench.metrics.evaluate import RunEvaluation, prepare_evaluation, score_renders

SELECTIONS = ("last", "best_test")


def configured_mode(config: dict) -> str:
    """The mode a run's config.yaml asks for (``last`` for runs from before evaluation modes)."""
    ev = (config.get("config") or {}).get("eval") or {}
    return rundir.eval_mode(ev.get("select", "last"), int(ev.get("refine_test_poses", 0)))


def mode_record(run_dir: Path, mode: str) -> dict:
    """The ``eval`` entry of a mode's metrics block: what was selected and how the poses were got."""
    select, _, refine = mode.partition("+refine")
    record = {"mode": mode, "select": select, "refine_test_poses": int(refine or 0),
              "renders": rundir.eval_renders(mode), "selected_on_test_set": select == "best_test"}
    if select == "best_test":
        summary = rundir.read_json(Path(run_dir) / rundir.TRAIN_SUMMARY) or {}
        selection = summary.get("test_selection") or {}
        record.update(selected_step=selection.get("selected_step"), test_evaluations=selection.get("evaluations"))
    if refine:
        poses = Path(run_dir) / rundir.eval_renders(mode) / rundir.REFINED_POSES
        record["poses"] = str(poses.relative_to(run_dir)) if poses.is_file() else None
        if poses.is_file():
            views = json.loads(poses.read_text())["views"].values()
            record["mean_l1_before"] = sum(v["l1_before"] for v in views) / len(views)
            record["mean_l1_after"] = sum(v["l1_after"] for v in views) / len(views)
    return record


def evaluate_mode(run_dir, mode: str, progress: bool = False, evaluation: RunEvaluation | None = None,
                  **kwargs) -> dict:
    """The metrics block of one mode (its renders scored) with its ``eval`` entry. ``evaluation``:
    what scoring needs, loaded already (``prepare_evaluation``); else loaded from kwargs (lpips_input,
    device, protocol)."""
    run_dir = Path(run_dir)
    if not (run_dir / rundir.eval_renders(mode)).is_dir():
        raise BenchError(f"{run_dir / rundir.eval_renders(mode)}: no test renders of evaluation mode {mode!r}")
    evaluation = evaluation or prepare_evaluation(run_dir, **kwargs)
    block = score_renders(evaluation, rundir.eval_renders(mode), progress)
    block["eval"] = mode_record(run_dir, mode)
    return block


def evaluate_modes(run_dir, progress: bool = False, **kwargs) -> tuple[dict, dict[str, dict]]:
    """(the block of the configured mode, {mode: block} of every other mode with renders on disk);
    the scene, protocol and LPIPS network are loaded once for all of them.

    kwargs go to ``prepare_evaluation`` (lpips_input, device, protocol, warn)."""
    run_dir = Path(run_dir)
    evaluation = prepare_evaluation(run_dir, **kwargs)
    reported = configured_mode(evaluation.config)
    others = {m: evaluate_mode(run_dir, m, progress, evaluation) for m in rundir.eval_modes_on_disk(run_dir)
              if m != reported}
    return evaluate_mode(run_dir, reported, progress, evaluation), others
