"""Build gsplat's CUDA extension once before a sweep's jobs start, instead of in each of them.

The first import of gsplat compiles its CUDA sources (minutes), and processes importing it at the
same time are not serialised (gsplat deletes torch's build lock, see :mod:`bench.render.gsplat_ext`):
100 array tasks starting together would compile 100 times into one folder. So when a SLURM sweep has
runs on the gsplat backend, every job exports one shared ``TORCH_EXTENSIONS_DIR`` (and
``TORCH_CUDA_ARCH_LIST`` when known), and the extension is built once, before any array starts:

- already built there for this Python, torch, gsplat and arch list (its ``bench_build.json``): nothing;
- ``gsplat_build: here``, or ``auto`` on a submitting node with a GPU: ``bench doctor --build-gsplat`` here;
- ``job``, or ``auto`` otherwise: one build job with the resources of the first gsplat run; every array
  waits for it (``--dependency=afterok``) and is cancelled if it fails (``--kill-on-invalid-dep``,
  rather than pending forever);
- ``off``: only the environment (the user built it).

A local queue that starts several gsplat runs at once builds here first, for the same reason; one
that starts runs on the CPU loads (or builds) the compiled CPU kernels here first
(:func:`prebuild_cpu_local`), so its runs neither wait on one build nor count it in their wall time.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from bench import sweepdir
from bench.errors import BenchError
from bench.harness import procs
from bench.harness.runs import RunSpec
from bench.harness.spec import Resources
from bench.render import cpu_ext
from bench.render.gsplat_ext import MARKER, NAME, fingerprint, is_built

BUILD_TIME_MIN = 60  # time limit of the build job (a build takes minutes; the runs may ask for days)


@dataclass(frozen=True)
class Prebuild:
    """What every job array of a sweep needs so that none of its tasks compiles gsplat."""

    setup: tuple[str, ...]  # shell lines exporting TORCH_EXTENSIONS_DIR (and TORCH_CUDA_ARCH_LIST)
    dependency: str | None  # "afterok:<build job id>", or None when no build job was submitted
    note: str  # one line for the user: what was done


SubmitBuild = Callable[[Path, dict], tuple[str, str]]


class JobSubmitter(Protocol):
    """What the prebuild needs of a batch executor (:class:`bench.harness.executors.slurm.SlurmExecutor`):
    the job parameters of a resource setting and a way to submit one job running a function."""

    def parameters(self, res: Resources, sweep: str) -> dict: ...

    def submit_call(self, folder: Path, params: dict, fn: Callable, *args: Any, what: str = ...
                    ) -> tuple[str, str]: ...


def asks_for_gpu(res: Resources) -> bool:
    """Whether a job with these resources gets a GPU (gpus_per_node, or a gres/gpus sbatch option)."""
    return res.gpus_per_node > 0 or any("gpu" in k or k == "gres" for k in res.additional)


@functools.cache
def _backend(variant: str, profile: str | None, overrides: str) -> str:
    """A run's resolved train.backend (cached: the runs of a sweep share a few configs)."""
    from bench.method.config import resolve_config

    return resolve_config(variant, profile, json.loads(overrides)).train.backend


def uses_gsplat(run: RunSpec, gpu: bool) -> bool:
    """Whether ``run`` renders with gsplat on a node that has a GPU (``gpu``) or not.

    bench.method.device.pick_device's rule: train.backend gsplat, or auto with device cuda, or auto with device
    auto when a GPU is visible.
    """
    backend = _backend(run.variant, run.profile, json.dumps(run.overrides, sort_keys=True, default=str))
    return backend == "gsplat" or (backend == "auto" and (run.device == "cuda" or (run.device == "auto" and gpu)))


def extensions_dir(sweep_dir: Path, res: Resources) -> Path:
    """executor.resources.torch_extensions_dir > $TORCH_EXTENSIONS_DIR > <sweep_dir>/torch_extensions."""
    chosen = res.torch_extensions_dir or os.environ.get("TORCH_EXTENSIONS_DIR")
    return Path(chosen).expanduser().absolute() if chosen else Path(sweep_dir) / sweepdir.TORCH_EXTENSIONS


def arch_list(res: Resources) -> str | None:
    """executor.resources.cuda_arch_list > $TORCH_CUDA_ARCH_LIST > None (the build job's GPU)."""
    return res.cuda_arch_list or os.environ.get("TORCH_CUDA_ARCH_LIST") or None


def job_env(ext_dir: Path, arch: str | None) -> dict[str, str]:
    """The environment that points a job (or a build) at the shared build."""
    return {"TORCH_EXTENSIONS_DIR": str(ext_dir), **({"TORCH_CUDA_ARCH_LIST": arch} if arch else {})}


def env_lines(env: dict[str, str]) -> tuple[str, ...]:
    """``env`` as shell lines for a job's setup."""
    return tuple(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def already_built(ext_dir: Path, arch: str | None) -> bool:
    """Whether ``ext_dir`` holds a build for this Python, torch, gsplat and arch list."""
    where = Path(ext_dir) / NAME  # torch's build folder when TORCH_EXTENSIONS_DIR is set
    try:
        recorded = json.loads((where / MARKER).read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return False
    return recorded == fingerprint(arch) and is_built(where)


def prebuild_slurm(sweep_dir: Path, sweep: str, runs: list[RunSpec], executor: JobSubmitter,
                   submit_build: SubmitBuild | None = None) -> Prebuild | None:
    """Build gsplat once for the sweep's SLURM jobs (module docstring); None when no run uses gsplat.

    A build job is submitted through ``executor`` (or ``submit_build``, a stand-in for tests).
    Returns the setup lines and dependency the arrays need (see :func:`with_prebuild`).
    """
    users = [r for r in runs if uses_gsplat(r, asks_for_gpu(r.resources))]
    if not users:
        return None
    res = users[0].resources
    ext, arch = extensions_dir(sweep_dir, res), arch_list(res)
    env = job_env(ext, arch)
    setup = env_lines(env)
    if res.gsplat_build == "off":
        return _told(Prebuild(setup, None, f"gsplat: not built by the sweep (gsplat_build: off); jobs use {ext}"))
    if already_built(ext, arch):
        return _told(Prebuild(setup, None, f"gsplat: CUDA extension already built in {ext / NAME}"))
    if res.gsplat_build == "here" or (res.gsplat_build == "auto" and cuda_here()):
        _say(f"gsplat: building the CUDA extension on this node into {ext} (bench doctor --build-gsplat)")
        seconds = build_here(env)
        return _told(Prebuild(setup, None, f"gsplat: CUDA extension built on this node in {seconds:.0f} s"))

    folder, params = Path(sweep_dir) / sweepdir.SUBMITIT, build_parameters(executor, res, sweep, setup)
    if submit_build is not None:
        job_id, log = submit_build(folder, params)
    else:  # the setup lines export the environment: the job builds with none added
        job_id, log = executor.submit_call(folder, params, build_here, {}, what="the gsplat build job")
    return _told(Prebuild(setup, f"afterok:{job_id}",
                          f"gsplat: CUDA extension build job {job_id} (log {log}); the job arrays start "
                          "when it succeeds and are cancelled if it fails"))


def with_prebuild(params: dict, pre: Prebuild | None) -> dict:
    """submitit parameters of an array with the prebuild's environment and dependency added."""
    if pre is None:
        return params
    params = {**params, "slurm_setup": [*params["slurm_setup"], *pre.setup]}
    if pre.dependency:
        extra = dict(params["slurm_additional_parameters"])
        # "," = all of: a dependency the user gave stays.
        extra["dependency"] = ",".join(d for d in (str(extra.get("dependency") or ""), pre.dependency) if d)
        extra["kill_on_invalid_dep"] = "yes"
        params["slurm_additional_parameters"] = extra
    return params


def build_parameters(executor: JobSubmitter, res: Resources, sweep: str, setup: tuple[str, ...]) -> dict:
    """submitit parameters of the build job: the runs' resources, a short time limit, the shared env."""
    params = executor.parameters(res, sweep)
    params.pop("slurm_array_parallelism")
    params.update(name=f"bench-{sweep}-gsplat-build", timeout_min=min(res.time_min, BUILD_TIME_MIN),
                  slurm_setup=[*params["slurm_setup"], *setup])
    return params


def cuda_here() -> bool:
    """Whether this (submitting) node has a CUDA GPU to build on."""
    import torch

    return torch.cuda.is_available()


def build_here(env: dict[str, str], base_env: dict[str, str] | None = None) -> float:
    """``bench doctor --build-gsplat`` in a child with ``env`` added; seconds taken, BenchError on failure.

    ``base_env``: the child environment of the executor asking (:meth:`Executor.child_env`); None in
    the build job itself, which runs on the node with this checkout importable the same way.
    Also what the build job runs (its exception marks the job FAILED, so the arrays never start).
    """
    start = time.perf_counter()
    base = procs.child_env() if base_env is None else base_env
    code = subprocess.run([sys.executable, "-m", "bench.cli", "doctor", "--build-gsplat"],
                          env={**base, **env}).returncode
    if code:
        raise BenchError(f"gsplat: building the CUDA extension on {platform.node()} failed "
                         "(the doctor lines above say why)")
    return time.perf_counter() - start


def prebuild_local(runs: list[RunSpec], gpus: list[str], max_concurrent: int,
                   child_env: dict[str, str] | None = None) -> None:
    """Before a local queue starts several gsplat runs at once on GPUs: load or build gsplat here
    (in a child with the local executor's ``child_env``)."""
    if max_concurrent < 2 or not gpus or not any(uses_gsplat(r, True) for r in runs):
        return
    _say("gsplat: loading (or building) the CUDA extension before the local queue starts")
    build_here({}, child_env)


def prebuild_cpu_local(runs: list[RunSpec], gpus: list[str], child_env: dict[str, str]) -> None:
    """Before a local queue starts runs on the CPU: load or build the compiled CPU kernels
    (bench.render.cpu_ext) once, in a child with the queue's environment. A build counted in a run's
    wall time would inflate the time estimates made from it (bench.harness.estimate); a failed build
    is no error here, the runs fall back to the PyTorch renderer and say so."""
    if not any(r.device == "cpu" or (r.device == "auto" and not gpus) for r in runs):
        return
    if not cpu_ext.wanted_in(child_env):
        return
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from bench.render import cpu_ext; cpu_ext.load()"], env=child_env)
    _say(f"compiled CPU kernels: ready ({time.perf_counter() - start:.1f} s, built once when the sources change)")


def _say(line: str) -> None:
    print(line, flush=True)


def _told(pre: Prebuild) -> Prebuild:
    _say(pre.note)
    return pre
