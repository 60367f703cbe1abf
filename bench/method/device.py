"""Where a training run executes: the torch device, the renderer backend and the CPU threads."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from bench.errors import BenchError
from bench.method.config import MethodConfig


@dataclass(frozen=True)
class DeviceChoice:
    """Where a run executes: torch device, renderer backend, and why (for the log)."""

    device: torch.device
    backend: str  # "torch" | "gsplat"
    reason: str


DEVICES = ("auto", "cpu", "cuda")


def pick_device(device: str, backend: str, cuda_available: bool) -> DeviceChoice:
    """Resolve ``--device`` (auto|cpu|cuda) and ``train.backend`` (auto|torch|gsplat).

    device auto + backend auto: CUDA with gsplat when a GPU is seen, else CPU with the torch
    renderer. device auto + backend torch (the ``cpu`` profile): the CPU, also on a GPU node,
    because the pure-PyTorch renderer is the reference path, not the fast one; ``--device cuda``
    runs it on the GPU on purpose. gsplat needs CUDA.
    """
    if device not in DEVICES:
        raise BenchError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "cuda" and not cuda_available:
        raise BenchError("--device cuda: CUDA is not available on this machine")
    if backend == "gsplat" and device == "cpu":
        raise BenchError("train.backend=gsplat: needs CUDA; use train.backend=torch with --device cpu")
    if backend == "gsplat" and not cuda_available:
        raise BenchError("train.backend=gsplat: needs CUDA, and no GPU is visible; use train.backend=torch on CPU")
    if device == "auto":
        if backend == "torch":
            use_cuda, why = False, "train.backend=torch with device auto runs on the CPU (--device cuda for the GPU)"
        else:
            use_cuda = cuda_available
            why = "device auto: a CUDA GPU is visible" if use_cuda else "device auto: no CUDA GPU is visible"
    else:
        use_cuda, why = device == "cuda", f"--device {device}"
    if backend == "auto":
        backend = "gsplat" if use_cuda else "torch"
        why += f"; backend auto: {backend} on {'CUDA' if use_cuda else 'the CPU'}"
    return DeviceChoice(torch.device("cuda" if use_cuda else "cpu"), backend, why)


def set_threads(cfg: MethodConfig) -> None:
    """torch's CPU threads: env BENCH_TORCH_THREADS, else ``train.num_threads`` (0 = torch's default)."""
    env = os.environ.get("BENCH_TORCH_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise BenchError(f"BENCH_TORCH_THREADS={env!r}: expected a positive integer")
        torch.set_num_threads(int(env))
    elif cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
