"""A trained run's saved state, loaded after training: to render it anew (videos, the viewer,
rendering speed), to export its Gaussians, or to evaluate it another way (test-time pose refinement
of the final or the test-selected state, docs/method.md §12; ``bench eval --refine-test-poses``).
Kept apart from training, which it reads, so nothing imports back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench import rundir
from bench.data import registry as datasets
from bench.data.scene import Scene
from bench.errors import BenchError
from bench.method.kernels import blur_formation
from bench.method.bpnet import BPNet
from bench.method.checkpoints import read_checkpoint
from bench.method.config import MethodConfig, validate
from bench.method.device import DeviceChoice, pick_device, set_threads
from bench.method.model import GaussianModel, RenderResult
from bench.method.outputs import write_refined_renders
from bench.method.run_state import SceneTensors
from bench.method.selection import load_best_model
from bench.method.step import chw, sh_degree

STATES = ("last", "best_test")


@dataclass
class SavedRun:
    """A trained run loaded from its directory: config, the Gaussians of the chosen saved ``state``
    (``last``: the final checkpoint; ``best_test``: checkpoints/best_test.pt), BP-Net when the run
    trained one (final checkpoint only), the scene and where it renders."""

    run_dir: Path
    record: dict
    cfg: MethodConfig
    state: str
    step: int
    model: GaussianModel
    bpnet: BPNet | None
    scene: Scene
    data: SceneTensors
    choice: DeviceChoice

    @classmethod
    def load(cls, run_dir, state: str = "last", device: str = "auto") -> "SavedRun":
        """Load ``run_dir``'s ``state``; BenchError naming the file when the run has no such state
        (a run that did not finish training has no final checkpoint)."""
        run_dir = Path(run_dir)
        if state not in STATES:
            raise BenchError(f"state {state!r}: expected one of {', '.join(STATES)}")
        record = rundir.read_config(run_dir)
        cfg = validate(record.get("config") or {}, str(run_dir / rundir.CONFIG))
        set_threads(cfg)
        choice = pick_device(device, cfg.train.backend, torch.cuda.is_available())
        bpnet_state = None
        if state == "best_test":
            model, step = load_best_model(run_dir, choice.device)
        else:
            step = cfg.train.steps
            final = rundir.checkpoint_path(run_dir, step)
            if not final.is_file():
                raise BenchError(f"{final}: missing; the run's final checkpoint (has it finished training?)")
            saved = read_checkpoint(final, choice.device)
            model, bpnet_state = GaussianModel.from_state_dict(saved["model"]).to(choice.device), saved.get("bpnet")
        scene = datasets.load_scene(record["dataset"], record["scene"], data_root=record.get("data_root"))
        bpnet = _bpnet(cfg, len(scene.train), bpnet_state, choice.device)
        return cls(run_dir, record, cfg, state, step, model, bpnet, scene,
                   SceneTensors.from_scene(scene, choice.device), choice)

    @property
    def sh_degree(self) -> int:
        """The SH degree every evaluation renders with (that of the last step, as the test renders)."""
        return sh_degree(self.cfg, self.cfg.train.steps)

    @torch.no_grad()
    def render(self, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, frame: float) -> RenderResult:
        """Sharp render of a camera (K (3,3), w2c (4,4), OpenCV) at training-frame time ``frame``
        (0 .. number of training frames - 1; fractions interpolate the motion)."""
        return self.model.render(K.to(self.choice.device), w2c.to(self.choice.device), width, height, frame,
                                 sh_degree=self.sh_degree, backend=self.choice.backend)

    @torch.no_grad()
    def blurred(self, render: RenderResult, frame: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """BP-Net's blurred reconstruction of ``render`` at time ``frame``: (image (H,W,3), kernels
        (H,W,K*K), blur mask (H,W)); None when the run has no BP-Net."""
        if self.bpnet is None:
            return None
        sharp = chw(render.rgb)
        kernels, mask = self.bpnet(torch.tensor([float(frame)], device=self.choice.device), sharp,
                                   chw(render.depth), chw(render.dyn_mask))
        pred = blur_formation(sharp, kernels, mask)
        return pred[0].permute(1, 2, 0), kernels[0].permute(1, 2, 0), mask[0, 0]


def _bpnet(cfg: MethodConfig, num_frames: int, state: dict | None, device: torch.device) -> BPNet | None:
    """The run's BP-Net with its trained weights, None when it has none (no blur module, the
    ground-truth blur, or a state saved without it)."""
    if state is None or not cfg.blur.enabled or cfg.blur.ground_truth:
        return None
    b = cfg.blur
    net = BPNet(num_frames, b.kernel_size, b.kernel_type, b.shortcut, cnn_width=b.cnn_width,
                init_centre=b.init_centre, init_mask=b.init_mask).to(device)
    net.load_state_dict(state)
    return net.eval()


def refine_saved_run(run_dir, steps: int, select: str | None = None, progress: bool = True) -> str:
    """Refine the test poses of a trained run from its saved state and write that mode's renders
    (bench.rundir.eval_renders); returns the mode's name. ``select``: the state refined, ``last``
    (the final checkpoint) or ``best_test`` (checkpoints/best_test.pt); default the run's own
    ``eval.select``. BenchError when the run has no such saved state."""
    run_dir = Path(run_dir)
    cfg = validate(rundir.read_config(run_dir).get("config") or {}, str(run_dir / rundir.CONFIG))
    select = select or cfg.eval.select
    saved = SavedRun.load(run_dir, select)
    gt = saved.scene.test.images.stack().float().to(saved.choice.device)
    mode = rundir.eval_mode(select, steps)
    eval_cfg = cfg.eval.model_copy(update={"refine_test_poses": steps})
    write_refined_renders(saved.model, saved.data, gt, run_dir / rundir.eval_renders(mode), eval_cfg,
                          saved.sh_degree, saved.choice.backend, progress)
    return mode
