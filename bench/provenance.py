"""Provenance recorded in every results file: code, packages, machine, scheduler, time, memory."""

from __future__ import annotations

import os
import platform
import resource
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench import __version__
from bench.repo import REPO_ROOT


def git_commit(repo: Path | None = None) -> tuple[str | None, bool | None]:
    """Return (commit sha, dirty flag) of the checkout holding this package, or (None, None)."""
    repo = repo or REPO_ROOT
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return sha, bool(status.strip())


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device=None) -> str:
    """The name of ``device`` (a torch.device): the GPU's for CUDA, else the CPU model. Without one,
    the first GPU's when CUDA is available, else the CPU model."""
    try:
        import torch

        if device is None and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        if device is not None and device.type == "cuda":
            return torch.cuda.get_device_name(device)
    except ImportError:
        pass
    return cpu_model()


def peak_memory_bytes(cuda: bool) -> dict[str, int | None]:
    """Peak resident memory of this process and, for a run on CUDA, the peak allocated GPU memory.

    ``cuda`` says whether the run used the GPU: a CPU run on a GPU host has no GPU peak (None),
    not the 0 that ``torch.cuda.max_memory_allocated`` would report.
    """
    # ru_maxrss is in kilobytes on Linux.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    gpu = None
    if cuda:
        import torch

        gpu = int(torch.cuda.max_memory_allocated())
    return {"cpu_rss": int(rss), "gpu_allocated": gpu}


def slurm_ids() -> dict[str, str | None]:
    env = os.environ
    return {
        "job_id": env.get("SLURM_JOB_ID"),
        "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "restart_count": env.get("SLURM_RESTART_COUNT"),
    }


def collect() -> dict:
    """A JSON-ready snapshot of where and with what code this process runs."""
    sha, dirty = git_commit()
    return {
        "git_commit": sha,
        "git_dirty": dirty,
        "packages": {
            "dydeblur-bench": __version__,
            "torch": _package_version("torch"),
            "gsplat": _package_version("gsplat"),
            "lpips": _package_version("lpips"),
            "python": sys.version.split()[0],
        },
        "device": device_name(),
        "hostname": socket.gethostname(),
        "slurm": slurm_ids(),
    }
