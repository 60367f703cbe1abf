"""The checks of ``bench doctor``: what this machine offers for running the benchmark, one line each.

Each check returns a :class:`Check` marked ok, warn, FAIL or skip (not applicable here, e.g. gsplat
on a CPU-only machine). Only FAIL means this machine cannot do what it is meant to: a CPU-only
machine without nvcc or GPUs passes, a missing LPIPS backbone or dataset is a warning.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
# What the harness calls (submitit: sbatch; monitor: squeue; cancel: scancel; MaxArraySize: scontrol),
# then what a user looks at.
SLURM_NEEDED = ("sbatch", "squeue", "scancel", "scontrol")
SLURM_EXTRA = ("sacct", "sinfo")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # OK | WARN | FAIL | SKIP
    detail: str

    def line(self) -> str:
        """``status  name  detail``, aligned, plain text (readable in a SLURM log)."""
        return f"{self.status:<4}  {self.name:<7} {self.detail}"


def python_check() -> Check:
    return Check("python", OK, f"{platform.python_version()} ({sys.executable})")


def torch_check() -> Check:
    """torch's version and the CUDA it was built with."""
    import torch

    built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    return Check("torch", OK, f"{torch.__version__}, {built}, {torch.get_num_threads()} threads")


def cuda_check() -> Check:
    """The CUDA toolkit (nvcc) torch's extension builder would use; needed to build gsplat only."""
    import torch

    from bench.render import gsplat_ext

    home, nvcc = gsplat_ext.find_nvcc()
    if nvcc is None:
        needed = torch.cuda.is_available() and not gsplat_ext.precompiled()
        where = f"no {home}/bin/nvcc" if home else "no nvcc on PATH, CUDA_HOME unset"
        if needed:
            return Check("cuda", WARN, f"toolkit not found ({where}): gsplat's extension cannot be built")
        return Check("cuda", SKIP, f"toolkit not found ({where}); not needed without a GPU")
    found = gsplat_ext.nvcc_version(nvcc)
    detail = f"nvcc {found} at {nvcc}"
    problem = gsplat_ext.toolkit_files_problem(home)
    if problem:
        return Check("cuda", WARN, f"{detail}, but {problem}")
    if torch.version.cuda and found and found.split(".")[0] != torch.version.cuda.split(".")[0]:
        return Check("cuda", WARN, f"{detail}, but torch is built with CUDA {torch.version.cuda}")
    return Check("cuda", OK, detail)


def gpu_check() -> Check:
    """The GPUs torch sees: count, name, memory, compute capability."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        if visible not in (None, "", "-1"):
            return Check("gpus", WARN, f"CUDA_VISIBLE_DEVICES={visible} but torch sees no GPU "
                                       "(driver, or a CPU-only torch build?)")
        return Check("gpus", SKIP, "no CUDA device: runs use the CPU and the torch renderer")
    kinds: dict[str, int] = {}
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        kind = f"{p.name} ({p.total_memory / 2**30:.1f} GiB, compute {p.major}.{p.minor})"
        kinds[kind] = kinds.get(kind, 0) + 1
    shown = "; ".join(f"{n} x {kind}" for kind, n in kinds.items())
    return Check("gpus", OK, shown + (f", CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""))


def gsplat_check(build: bool) -> Check:
    """Whether gsplat's CUDA extension loads; with ``build``, build it (minutes) when it is not built."""
    import torch

    from bench.render import gsplat_ext

    try:
        name = f"gsplat {version('gsplat')}"
    except PackageNotFoundError:
        return Check("gsplat", FAIL if build else WARN, "not installed (pip install gsplat==1.5.3)")
    if not build and not torch.cuda.is_available():
        return Check("gsplat", SKIP, f"{name}: no CUDA device, torch backend will be used")
    # need_device=False: building for TORCH_CUDA_ARCH_LIST needs no GPU (a login node can do it).
    status = gsplat_ext.ensure_extension(build=build, need_device=False)
    if status.needs_build:
        return Check("gsplat", WARN, f"{name}: {status.reason}")
    if not status.ok:
        return Check("gsplat", FAIL, f"{name}: {status.reason}")
    target = "" if torch.cuda.is_available() else \
        f" (no GPU here: built for TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST')})"
    return Check("gsplat", OK, f"{name}: CUDA extension {status.summary()}{target}")


def lpips_check() -> Check:
    """The LPIPS weight files (bench.metrics.weights); without them LPIPS is recorded as missing."""
    from bench.metrics.weights import check

    found = check()
    missing = [f"{name} ({path})" for name, (path, present) in found.items() if not present]
    if missing:
        return Check("lpips", WARN, f"missing: {', '.join(missing)}; run `bench weights fetch` on a "
                                    "machine with network access (same $TORCH_HOME)")
    return Check("lpips", OK, "; ".join(f"{name}: {path}" for name, (path, _) in found.items()))


def slurm_check() -> Check:
    """The SLURM commands on PATH, and the job this runs in (if any)."""
    found = {tool: shutil.which(tool) for tool in SLURM_NEEDED + SLURM_EXTRA}
    job = os.environ.get("SLURM_JOB_ID")
    in_job = f"; in job {job} on {os.environ.get('SLURMD_NODENAME', platform.node())}" if job else ""
    missing = [t for t in SLURM_NEEDED if not found[t]]
    if len(missing) == len(SLURM_NEEDED):
        return Check("slurm", SKIP, f"no SLURM commands on PATH: --executor auto uses the local queue{in_job}")
    present = " ".join(t for t, path in found.items() if path)
    if missing:
        return Check("slurm", WARN, f"{present} on PATH, missing {' '.join(missing)}{in_job}")
    return Check("slurm", OK, f"{present} on PATH ({Path(found['sbatch']).parent}){in_job}")


def data_checks(data_parent: str | None = None) -> list[Check]:
    """Per dataset: how many of its scenes are present under its data root (as ``bench data list``)."""
    from bench.data.registry import dataset_folder, list_datasets
    from bench.data.synth.generate import scene_complete

    checks = []
    for spec in list_datasets():
        root = dataset_folder(spec.name, data_parent)
        synthetic = spec.layout == "synthetic"
        present = [s.name for s in spec.scenes
                   if (root / s.name).is_dir() and (not synthetic or scene_complete(root, s.name))]
        missing = [s.name for s in spec.scenes if s.name not in present]
        detail = f"{spec.name}: {len(present)}/{len(spec.scenes)} scenes under {root}"
        if not missing:
            checks.append(Check("data", OK, detail))
        elif synthetic:
            checks.append(Check("data", OK, f"{detail} (the others are generated on first use)"))
        else:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            checks.append(Check("data", WARN, f"{detail}; missing {shown} (set $BENCH_DATA or --data-parent)"))
    return checks


def run_checks(build_gsplat: bool = False, data_parent: str | None = None) -> Iterator[Check]:
    """Every check in report order, yielded as each completes (the gsplat build can take minutes)."""
    yield python_check()
    yield torch_check()
    yield cuda_check()
    yield gpu_check()
    yield gsplat_check(build_gsplat)
    yield lpips_check()
    yield slurm_check()
    yield from data_checks(data_parent)

