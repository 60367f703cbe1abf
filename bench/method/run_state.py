"""``Run``: everything one training run holds in memory, shared by the loop, checkpoints and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.data.scene import Scene
from bench.method.bpnet import BPNet
from bench.method.config import MethodConfig
from bench.method.densify import DensifyStrategy
from bench.method.model import GaussianModel
from bench.method.progress import CurveWindow, RunLog
from bench.method.true_blur import TrueBlur
from bench.method.unseen import VirtualViews


@dataclass
class Run:
    """One training run's state.

    ``record`` is config.yaml's content (method, dataset, scene, seed, config_hash, config);
    ``data`` the scene's tensors on ``device`` (bench.method.train.scene_tensors: images (N,H,W,3),
    depth (N,H,W), mask (N,H,W) or None, K (N,3,3), w2c (N,4,4), frame (N,), test cameras, sizes).
    """

    cfg: MethodConfig
    record: dict[str, Any]
    run_dir: Path
    device: torch.device
    backend: str
    scene: Scene
    data: dict[str, Any]
    model: GaussianModel
    bpnet: BPNet | None
    optimizers: dict[str, torch.optim.Adam]
    densify: DensifyStrategy
    log: RunLog
    virtual: VirtualViews | None = None
    true_blur: TrueBlur | None = None  # the scene's ground-truth blur when blur.ground_truth
    selector: Any = None  # bench.method.selection.CheckpointSelector when eval.select=best_test
    step: int = 0
    elapsed_s: float = 0.0
    init_path: str = ""
    curves: CurveWindow = field(default_factory=CurveWindow)
