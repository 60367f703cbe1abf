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


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field by field means nothing here
class SceneTensors:
    """A scene's training and test views as tensors, built once per run by :meth:`from_scene`.

    Train (N views of W x H pixels): images (N,H,W,3) float32, depth (N,H,W) float32,
    mask (N,H,W) float32 motion mask or None, K (N,3,3), w2c (N,4,4), frame (N,) long frame
    indices (kept on the CPU: they are read as Python ints), names (N file stems).
    Test (M views of test_W x test_H): test_K (M,3,3), test_w2c (M,4,4), test_frame (M,) long (CPU),
    test_names (M). ``n`` is N; ``dtype`` the float type of every float tensor.
    """

    images: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor | None
    K: torch.Tensor
    w2c: torch.Tensor
    frame: torch.Tensor
    names: list[str]
    test_K: torch.Tensor
    test_w2c: torch.Tensor
    test_frame: torch.Tensor
    test_names: list[str]
    W: int
    H: int
    test_W: int
    test_H: int
    n: int
    dtype: torch.dtype = torch.float32

    @classmethod
    def from_scene(cls, scene: Scene, dev: torch.device) -> SceneTensors:
        """``scene``'s views on ``dev`` (frame indices stay on the CPU)."""
        tr, te = scene.train, scene.test

        def to(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(dev)

        return cls(
            images=to(tr.images.stack().float()), depth=to(tr.depth.float()),
            mask=to(None if tr.motion_mask is None else tr.motion_mask.float()),
            K=to(tr.cameras.K.float()), w2c=to(tr.cameras.w2c.float()), frame=tr.frame_index.long(),
            names=list(tr.names),
            test_K=to(te.cameras.K.float()), test_w2c=to(te.cameras.w2c.float()),
            test_frame=te.frame_index.long(), test_names=list(te.names),
            W=tr.cameras.width, H=tr.cameras.height, test_W=te.cameras.width, test_H=te.cameras.height,
            n=len(tr), dtype=torch.float32,
        )


@dataclass
class Run:
    """One training run's state.

    ``record`` is config.yaml's content (method, dataset, scene, seed, config_hash, config);
    ``data`` the scene's tensors on ``device`` (:class:`SceneTensors`).
    """

    cfg: MethodConfig
    record: dict[str, Any]
    run_dir: Path
    device: torch.device
    backend: str
    scene: Scene
    data: SceneTensors
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
