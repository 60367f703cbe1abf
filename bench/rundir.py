"""The layout of one run directory, shared by training, the harness, evaluation and reports.

::

    <run_dir>/
      config.yaml            resolved configuration (method, variant, dataset, scene, seed, every setting)
      status.json            harness state: pending | running | done | failed, error, log path, job ids
      log.txt                the run's log (which init path was taken, warnings, errors)
      checkpoints/step_NNNNNNN.pt   atomic checkpoints; the highest step is resumed from
      renders/test/<name>.png       sharp renders of every test view (final step)
      renders/train/<name>_blurred.png, <name>_sharp.png, <name>_mask.png   a few training views
      renders/train/<name>_kernels.npz   predicted kernels (H,W,K,K) and blur mask (H,W) of those views
      curves.csv             one row per logged step: step, loss terms, train_psnr, elapsed_s
      train_summary.json     steps, wall_time_s, peak_memory_bytes, device, backend, init path
      results.json           THE "finished" marker: metrics (per image and aggregate), protocol,
                             provenance; written atomically and last
"""

from __future__ import annotations

from pathlib import Path

CONFIG = "config.yaml"
STATUS = "status.json"
LOG = "log.txt"
CHECKPOINTS = "checkpoints"
TEST_RENDERS = "renders/test"
TRAIN_RENDERS = "renders/train"
CURVES = "curves.csv"
TRAIN_SUMMARY = "train_summary.json"
RESULTS = "results.json"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:07d}.pt"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the highest step in ``run_dir``, or None."""
    found = sorted((Path(run_dir) / CHECKPOINTS).glob("step_*.pt"))
    return found[-1] if found else None


def is_finished(run_dir: Path) -> bool:
    """A run is finished exactly when its own results file exists."""
    return (Path(run_dir) / RESULTS).is_file()
