"""Rendering speed of a trained run: frames per second of its sharp test renders.

One measurement (:func:`measure`) serves ``bench fps`` and the harness's job, which records it in
results.json as the ``speed`` block (:func:`record_speed`): the run's test views at the test
resolution, rendered by the same call the test renders use (bench.method.outputs.write_test_renders),
``warmup`` passes over the views first (the compiled kernels' first call, allocator growth, CUDA
start-up), then ``repeats`` timed passes; the figure is the median over the passes of views / seconds.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from bench import provenance, rundir
from bench.errors import BenchError
from bench.method.saved_run import SavedRun

REPEATS = 3  # the job's default: a few passes keep the cost small beside an evaluation
WARMUP = 1


def backend_name(saved: SavedRun) -> str:
    """The renderer that ran: "gsplat", "torch (CUDA)", "compiled CPU kernels (avx512)" or "torch (CPU)"."""
    from bench.render import cpu_ext

    if saved.choice.device.type == "cuda":
        return "gsplat" if saved.choice.backend == "gsplat" else "torch (CUDA)"
    if cpu_ext.active_path() == "compiled":
        return f"compiled CPU kernels ({cpu_ext.active_isa()})"
    return "torch (CPU)"



def _render_pass(saved: SavedRun) -> int:
    """Render every test view once (sharp, at its time, the evaluation's SH degree); returns the count."""
    d = saved.data
    for j in range(len(d.test_names)):
        saved.render(d.test_K[j], d.test_w2c[j], d.test_W, d.test_H, int(d.test_frame[j]))
    if saved.choice.device.type == "cuda":
        torch.cuda.synchronize(saved.choice.device)  # kernels run asynchronously: time their end
    return len(d.test_names)


def measure(saved: SavedRun, repeats: int = REPEATS, warmup: int = WARMUP) -> dict:
    """The ``speed`` block of a loaded run: fps (median over ``repeats`` timed passes of views /
    seconds, after ``warmup`` untimed passes), where it ran (device, backend, threads) and what
    (state, views, resolution [W, H], Gaussian count)."""
    if repeats < 1 or warmup < 0:
        raise BenchError(f"repeats={repeats}, warmup={warmup}: expected repeats >= 1 and warmup >= 0")
    d = saved.data
    if not d.test_names:
        raise BenchError(f"{saved.run_dir}: the scene has no test views to render")
    for _ in range(warmup):
        _render_pass(saved)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        views = _render_pass(saved)
        rates.append(views / (time.perf_counter() - start))
    return {"fps": statistics.median(rates), "device": provenance.device_name(saved.choice.device),
            "backend": backend_name(saved), "threads": torch.get_num_threads(), "repeats": repeats,
            "warmup": warmup, "state": saved.state, "views": len(d.test_names),
            "resolution": [d.test_W, d.test_H], "num_gaussians": saved.model.num_gaussians}


def measure_run(run_dir, state: str | None = None, device: str = "auto", repeats: int = REPEATS,
                warmup: int = WARMUP) -> dict:
    """:func:`measure` of ``run_dir``'s saved ``state`` (default: the state its evaluation reports,
    the config's ``eval.select``)."""
    from bench.method.config import validate

    if state is None:
        cfg = validate(rundir.read_config(Path(run_dir)).get("config") or {}, str(Path(run_dir) / rundir.CONFIG))
        state = cfg.eval.select
    return measure(SavedRun.load(run_dir, state, device), repeats, warmup)


def record_speed(run_dir, speed: dict) -> Path:
    """Put ``speed`` into a finished run's results.json as its ``speed`` block (replacing an older
    one; every other block kept, identity first, written atomically); returns the file's path."""
    from bench.metrics.results import stored_run, write_results

    run_dir = Path(run_dir)
    if not rundir.is_finished(run_dir):
        raise BenchError(f"{run_dir / rundir.RESULTS}: missing; the speed is recorded in a finished run's results")
    identity, metrics, extra = stored_run(run_dir)
    return write_results(run_dir, identity, metrics, {**extra, "speed": speed})
