"""What a finished run leaves besides its checkpoints: renders, kernels and train_summary.json.

Paths come from bench.rundir: sharp test renders (renders/test/<name>.png) and, for a few training
views, the sharp render, the blurred reconstruction, the blur mask and the predicted kernels.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from bench import rundir
from bench.atomic import write_bytes, write_json
from bench.method.model import GaussianModel
from bench.method.refine import refine_pose
from bench.method.run_state import Run, SceneTensors
from bench.method.step import forward, sh_degree, step_counts, train_view, virtual_possible
from bench.method.unseen import inpainted_share
from bench.provenance import peak_memory_bytes


def png_bytes(img: torch.Tensor, bits: int = 8) -> bytes:
    """PNG encoding of a float (H,W,3) RGB or (H,W) image in [0,1], 8 or 16 bits per channel."""
    top, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    arr = np.clip(np.round(img.detach().float().cpu().numpy() * top), 0, top).astype(dtype)
    if arr.ndim == 3:
        arr = np.ascontiguousarray(arr[..., ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def train_view_indices(n: int, count: int) -> list[int]:
    """``count`` training views spread evenly over ``n`` frames (first and last included)."""
    if count <= 0 or n == 0:
        return []
    if count == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(min(count, n))})


@torch.no_grad()
def write_test_renders(model: GaussianModel, data: SceneTensors, out_dir: Path, sh: int, backend: str) -> None:
    """Sharp renders of every test view into ``out_dir/<name>.png``.

    16-bit: protocols that score the float render (docs/datasets.md §Protocols) lose nothing to
    quantisation; those that score a saved 8-bit image round it themselves.
    """
    d = data
    for j, name in enumerate(d.test_names):
        r = model.render(d.test_K[j], d.test_w2c[j], d.test_W, d.test_H, int(d.test_frame[j]),
                         sh_degree=sh, backend=backend)
        write_bytes(out_dir / f"{name}.png", png_bytes(r.rgb.clamp(0, 1), bits=16))


def write_refined_renders(model: GaussianModel, data: SceneTensors, gt: torch.Tensor, out_dir: Path, eval_cfg,
                          sh: int, backend: str, progress: bool = False) -> dict:
    """Refine every test camera against its ground truth (bench.method.refine), write the renders
    from the refined cameras into ``out_dir`` and ``out_dir/poses.json`` (per view: the original and
    refined w2c, L1 before and after); returns that record. gt: (M,H,W,3) in [0,1]."""
    d, steps = data, eval_cfg.refine_test_poses
    views = {}
    names = list(enumerate(d.test_names))
    if progress:
        from rich.progress import track

        names = track(names, description=f"refining {len(names)} test poses ({steps} steps each)", transient=True)
    for j, name in names:
        refined = refine_pose(model, d.test_K[j], d.test_w2c[j], d.test_W, d.test_H,
                              int(d.test_frame[j]), gt[j], steps=steps, lr=eval_cfg.refine_lr,
                              lr_final=eval_cfg.refine_lr_final, sh_degree=sh, backend=backend)
        write_bytes(out_dir / f"{name}.png", png_bytes(refined.rgb, bits=16))
        views[name] = {"w2c": d.test_w2c[j].tolist(), "refined_w2c": refined.w2c.tolist(),
                       "l1_before": round(refined.first_loss, 6), "l1_after": round(refined.last_loss, 6)}
    record = {"steps": steps, "lr": eval_cfg.refine_lr, "lr_final": eval_cfg.refine_lr_final,
              "method": "Deblur4DGS validate_imgs_with_optimization: [A R | t + d], Adam, L1", "views": views}
    write_json(out_dir / rundir.REFINED_POSES, record)
    return record


def write_eval_renders(run: Run) -> None:
    """The test renders of every evaluation mode the config asks for besides ``last``: the
    best_test state, and the selected state's renders from refined test poses."""
    cfg, sh = run.cfg, sh_degree(run.cfg, run.cfg.train.steps)
    model = run.model
    if run.selector is not None:
        model = GaussianModel.from_state_dict(run.selector.best["model"]).to(run.device)
        write_test_renders(model, run.data, run.run_dir / rundir.eval_renders("best_test"), sh, run.backend)
    if cfg.eval.refine_test_poses:
        mode = rundir.eval_mode(cfg.eval.select, cfg.eval.refine_test_poses)
        gt = run.scene.test.images.stack().float().to(run.device)
        write_refined_renders(model, run.data, gt, run.run_dir / rundir.eval_renders(mode), cfg.eval, sh,
                              run.backend)
        run.log(f"test poses refined ({cfg.eval.refine_test_poses} steps each): renders in {rundir.eval_renders(mode)}")


@torch.no_grad()
def write_renders(run: Run) -> None:
    """Sharp test renders (every evaluation mode) and, for a few training views, reconstruction +
    kernels + mask."""
    d, cfg = run.data, run.cfg
    write_test_renders(run.model, d, run.run_dir / rundir.TEST_RENDERS, sh_degree(cfg, cfg.train.steps), run.backend)
    with torch.enable_grad():  # refinement differentiates through the renderer
        write_eval_renders(run)
    for i in train_view_indices(d.n, cfg.train.num_train_renders):
        _write_train_view(run, i)
    if run.bpnet is None:
        run.log("no blur module (blur.enabled=false): training renders hold the sharp render as the "
                "reconstruction; no kernels or blur mask exist")
    run.log(f"wrote {len(d.test_names)} test renders and {cfg.train.num_train_renders} training views")


def _write_train_view(run: Run, i: int) -> None:
    """Training view ``i``: sharp render, blurred reconstruction and, with BP-Net, mask and kernels."""
    d, K = run.data, run.cfg.blur.kernel_size
    out, name = run.run_dir / rundir.TRAIN_RENDERS, d.names[i]
    _, r, pred, blur = forward(run, run.cfg.train.steps, train_view(run, i, with_mask=False, with_depth=False))
    write_bytes(out / f"{name}_sharp.png", png_bytes(r.rgb.clamp(0, 1)))
    write_bytes(out / f"{name}_blurred.png", png_bytes(pred[0].permute(1, 2, 0).clamp(0, 1)))
    if blur is None:
        return
    kernels, mask = blur
    write_bytes(out / f"{name}_mask.png", png_bytes(mask[0, 0]))
    k = kernels[0].permute(1, 2, 0).reshape(d.H, d.W, K, K)
    write_bytes(out / f"{name}_kernels.npz", _npz_bytes(kernels=k.cpu().numpy().astype("float32"),
                                                         mask=mask[0, 0].cpu().numpy().astype("float32")))


def _unseen_summary(virtual) -> dict | None:
    """The virtual views a run trained on: count, side offset (scene units), inpainted share per kind."""
    if virtual is None:
        return None
    return {"count": len(virtual), "offset": round(virtual.offset, 6),
            "inpainted_share": {k: round(v, 4) for k, v in inpainted_share(virtual).items()}}


def write_summary(run: Run) -> dict:
    """train_summary.json: steps, time, peak memory, where it ran, init path, final figures."""
    peak = peak_memory_bytes(run.device.type == "cuda")
    rows = rundir.read_curves(run.run_dir)
    summary = {
        "steps": run.step,
        "wall_time_s": round(run.elapsed_s, 3),
        "peak_memory_bytes": peak["gpu_allocated"] if peak["gpu_allocated"] is not None else peak["cpu_rss"],
        "peak_memory": peak,
        "device": str(run.device),
        "backend": run.backend,
        "threads": torch.get_num_threads(),
        "motion_init": run.init_path,
        "num_gaussians": run.model.num_gaussians,
        "num_dynamic": run.model.num_dynamic,
        "final_train_psnr": float(rows[-1]["train_psnr"]) if rows else None,
        "final_loss": float(rows[-1]["loss"]) if rows else None,
        "unseen_views": _unseen_summary(run.virtual),
        "test_selection": None if run.selector is None else run.selector.summary(),
        # real-frame, virtual-view and skipped steps (unseen.skip_virtual_steps), docs/method.md §7
        "step_counts": step_counts(run.cfg, virtual_possible(run.data)),
        "method": run.record["method"], "dataset": run.record["dataset"], "scene": run.record["scene"],
        "seed": run.record["seed"], "profile": run.record["profile"], "config_hash": run.record["config_hash"],
    }
    write_json(run.run_dir / rundir.TRAIN_SUMMARY, summary)
    run.log(f"done: {json.dumps(summary, default=str)}")
    return summary
