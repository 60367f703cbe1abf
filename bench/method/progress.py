"""What a run reports while it trains: log.txt lines, the progress bar, the window of curve values."""

from __future__ import annotations

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.rundir import COUNT_FIELDS

# The loss terms a step reports (bench.method.step.forward's names) plus the total and the share
# of virtual-view steps, in curves.csv's column order.
CURVE_TERMS = ("loss", "rec", "depth", "dyn_mask", "low_freq", "blur_sparsity", "mask_sparsity",
               "se3_smooth", "track_smooth", "z_acc", "unseen")


class RunLog:
    """Appends timestamped lines to log.txt (appending keeps the log of interrupted attempts)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        with open(self.path, "a") as f:
            f.write(f"[{stamp}] {line}\n")


class CurveWindow:
    """Running sums of one logging window; ``row`` returns its means and starts the next window.

    Loss terms are averaged over every step of the window, train PSNR over its training-view steps.
    """

    def __init__(self, sums: dict[str, float] | None = None):
        self.sums: dict[str, float] = dict(sums or {})

    def add(self, values: dict[str, float]) -> None:
        acc = self.sums
        acc["count"] = acc.get("count", 0) + 1
        for k, v in values.items():
            acc[k] = acc.get(k, 0.0) + v
            if k == "train_psnr":
                acc["psnr_count"] = acc.get("psnr_count", 0) + 1

    def row(self, step: int, counts: dict[str, int], elapsed_s: float) -> dict[str, float]:
        """The window's curves.csv row; ``counts``: the Gaussian counts at ``step`` (COUNT_FIELDS)."""
        acc, n = self.sums, max(self.sums.get("count", 0), 1)
        row: dict[str, float] = {"step": step}
        for k in CURVE_TERMS:
            row[k] = acc.get(k, 0.0) / n
        pn = acc.get("psnr_count", 0)
        row["train_psnr"] = acc["train_psnr"] / pn if pn else float("nan")
        row.update({k: counts[k] for k in COUNT_FIELDS})
        row["elapsed_s"] = elapsed_s
        self.sums = {}
        return row


class ProgressBar:
    """rich progress bar with loss, training PSNR and the Gaussian count (no-op when disabled)."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.enabled = enabled
        if enabled:
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
