"""Short training runs on CUDA (last and dearest): the gsplat backend trains, densifies and runs DGD,
an interrupted run resumes on CUDA to the same result, and the pure-PyTorch backend on the same GPU
reaches the same PSNR (slowest: last).

Every run: variant ``full`` on the synthetic scene motion_0, the ``cpu`` profile (its 800-step
schedule shape: densification from 1.25% to 37.5% of the run, DGD at 6.25%, BP-Net from step 0)
shortened to STEPS, ``--device cuda`` and ``train.backend`` pinned explicitly.
"""

from __future__ import annotations

import json
import math
import re
import time

import pytest

from gpu_compare import RenderTap, psnr_of_test_views, read_curves, synthetic_data_root

from bench import rundir
from bench.method.train import train

pytestmark = pytest.mark.gpu

SCENE = "motion_0"
STEPS = 200
INTERRUPT_AT = 130  # gsplat renders (one per step) before the interruption: resumes from step 100
OVERRIDES = {"train.steps": STEPS, "train.checkpoint_every": 50, "train.log_every": 20,
             "train.num_train_renders": 1, "train.num_threads": 8}
# Tolerances. The two backends' float32 gradients differ by rounding (test_gpu_2), and gsplat's
# backward sums with atomics in no fixed order, so no two CUDA runs are bitwise equal: after 200
# steps (and discrete densification decisions) the runs are different samples of the same training.
PSNR_TOL_DB = 1.0  # gsplat vs torch backend: test-view PSNR and the last train-PSNR window
RESUME_PSNR_TOL_DB = 0.5  # resumed vs uninterrupted gsplat run (same backend, same schedule)
RESUME_COUNT_TOL = 0.05  # relative difference of the final number of Gaussians
MIN_PSNR_GAIN_DB = 0.5  # the last curve rows' train PSNR above the first row's
DEVICE = "cuda"  # what train_summary.json and log.txt must name


@pytest.fixture(scope="module")
def data_root():
    return synthetic_data_root(SCENE)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("gpu_train")


def _train(run_dir, backend: str, data_root):
    return train(run_dir, method="full", dataset="synthetic", scene=SCENE, seed=0, profile="cpu",
                 overrides={**OVERRIDES, "train.backend": backend}, data_root=data_root, device="cuda",
                 progress=False)


def _finished(run_dir, backend: str, data_root, summary: dict, wall: float, tap: RenderTap | None) -> dict:
    rows = read_curves(run_dir)
    log = (run_dir / rundir.LOG).read_text()
    peak = (summary.get("peak_memory") or {}).get("gpu_allocated")
    return {"run_dir": run_dir, "backend": backend, "summary": summary, "wall_s": wall, "rows": rows, "log": log,
            "test_psnr": psnr_of_test_views(run_dir, SCENE, data_root),
            "last_psnr": float(rows[-1]["train_psnr"]), "first_psnr": float(rows[0]["train_psnr"]),
            "num_gaussians": int(rows[-1]["num_gaussians"]), "peak_gpu_mb": None if peak is None else peak / 2 ** 20,
            "tap": tap}


@pytest.fixture(scope="module")
def gsplat_run(gsplat_ready, data_root, runs):
    """The uninterrupted gsplat run (the reference of the two comparisons below)."""
    run_dir = runs / "gsplat"
    start = time.perf_counter()
    with RenderTap() as tap:
        summary = _train(run_dir, "gsplat", data_root)
    return _finished(run_dir, "gsplat", data_root, summary, time.perf_counter() - start, tap)


def _check_run(run: dict) -> None:
    """Outputs of a finished run on CUDA: device and backend, finite curves, test renders."""
    s, rows = run["summary"], run["rows"]
    assert s["steps"] == STEPS and str(s["device"]).startswith(DEVICE) and s["backend"] == run["backend"], s
    said = [line for line in run["log"].splitlines()
            if f"device={DEVICE}" in line and f"backend={run['backend']}" in line]
    assert said, f"log.txt does not say the run used {DEVICE} with the {run['backend']} backend"
    assert [int(r["step"]) for r in rows] == list(range(OVERRIDES["train.log_every"], STEPS + 1,
                                                        OVERRIDES["train.log_every"]))
    for r in rows:
        assert math.isfinite(float(r["loss"])) and math.isfinite(float(r["train_psnr"])), r
    assert math.isfinite(run["test_psnr"])
    json.loads((run["run_dir"] / rundir.TRAIN_SUMMARY).read_text())


def test_gsplat_training_run(gsplat_run, record):
    run, tap = gsplat_run, gsplat_run["tap"]
    log = run["log"]
    dgd = re.search(r"DGD at step (\d+): added (\d+)", log)
    changes = sum(1 for a, b in zip(tap.sizes, tap.sizes[1:]) if a != b)
    record(wall_s=round(run["wall_s"], 1), steps_per_s=tap.steps_per_second(skip=10),
           first_train_psnr=run["first_psnr"], last_train_psnr=run["last_psnr"], test_psnr=run["test_psnr"],
           num_gaussians=run["num_gaussians"], dgd_added=int(dgd.group(2)) if dgd else 0,
           count_changes=changes, peak_gpu_mb=run["peak_gpu_mb"])
    _check_run(run)
    assert tap.calls >= STEPS, f"{tap.calls} gsplat renders for {STEPS} steps"
    mean_last = sum(float(r["train_psnr"]) for r in run["rows"][-2:]) / 2
    assert mean_last >= run["first_psnr"] + MIN_PSNR_GAIN_DB, "training did not improve the train PSNR"
    assert dgd and int(dgd.group(2)) > 0, "DGD did not add Gaussians: " + \
        " / ".join(line for line in log.splitlines() if "DGD" in line)
    # the Gaussian count changes at DGD and at several clone/split/prune rounds
    assert changes >= 3, f"the number of Gaussians changed {changes} times in {tap.calls} renders"
    assert len({int(r["num_gaussians"]) for r in run["rows"]}) >= 2
    if run["peak_gpu_mb"] is not None:
        assert run["peak_gpu_mb"] > 0


def test_interrupted_run_resumes_on_cuda(gsplat_run, data_root, runs, record):
    run_dir = runs / "resumed"
    with RenderTap(limit=INTERRUPT_AT) as tap, pytest.raises(Exception) as stopped:
        _train(run_dir, "gsplat", data_root)
    assert tap.interrupted, f"the run stopped before the interruption: {stopped.value!r}"
    latest = rundir.latest_checkpoint(run_dir)
    assert latest is not None, "the interrupted run left no checkpoint"
    ckpt_step = int(re.search(r"(\d+)", latest.stem).group(1))
    assert 0 < ckpt_step < STEPS and not (run_dir / rundir.TRAIN_SUMMARY).exists()
    start = time.perf_counter()
    summary = _train(run_dir, "gsplat", data_root)  # the same command again, as a requeued job would
    run = _finished(run_dir, "gsplat", data_root, summary, time.perf_counter() - start, None)
    resumed = [line for line in run["log"].splitlines() if "resum" in line.lower()]
    record(checkpoint_step=ckpt_step, resume_wall_s=round(run["wall_s"], 1), test_psnr=run["test_psnr"],
           straight_test_psnr=gsplat_run["test_psnr"], last_train_psnr=run["last_psnr"],
           straight_last_train_psnr=gsplat_run["last_psnr"], num_gaussians=run["num_gaussians"],
           straight_num_gaussians=gsplat_run["num_gaussians"])
    assert any(str(ckpt_step) in line for line in resumed), \
        f"log.txt does not say it resumed from step {ckpt_step}: {resumed}"
    _check_run(run)
    assert abs(run["test_psnr"] - gsplat_run["test_psnr"]) <= RESUME_PSNR_TOL_DB
    assert abs(run["last_psnr"] - gsplat_run["last_psnr"]) <= RESUME_PSNR_TOL_DB
    n, n0 = run["num_gaussians"], gsplat_run["num_gaussians"]
    assert abs(n - n0) <= RESUME_COUNT_TOL * n0, f"{n} Gaussians after the resume, {n0} without interruption"


def test_torch_backend_on_cuda_reaches_the_same_psnr(gsplat_run, data_root, runs, record):
    run_dir = runs / "torch"
    start = time.perf_counter()
    summary = _train(run_dir, "torch", data_root)
    run = _finished(run_dir, "torch", data_root, summary, time.perf_counter() - start, None)
    record(wall_s=round(run["wall_s"], 1), gsplat_wall_s=round(gsplat_run["wall_s"], 1),
           test_psnr=run["test_psnr"], gsplat_test_psnr=gsplat_run["test_psnr"],
           last_train_psnr=run["last_psnr"], gsplat_last_train_psnr=gsplat_run["last_psnr"],
           num_gaussians=run["num_gaussians"], gsplat_num_gaussians=gsplat_run["num_gaussians"])
    _check_run(run)
    assert abs(run["test_psnr"] - gsplat_run["test_psnr"]) <= PSNR_TOL_DB
    assert abs(run["last_psnr"] - gsplat_run["last_psnr"]) <= PSNR_TOL_DB
