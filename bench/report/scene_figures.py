"""Figures that need the scene itself (through the data registry): qualitative grids and, for
synthetic scenes, predicted against ground-truth blur.

Blur size is compared as an RMS radius in pixels, a quantity both sides define: for a predicted
K x K kernel the square root of its second moment about its centroid; for the ground truth
sqrt(coc^2 / 2 + mean_s |d_s - mean d|^2) (a uniform disc of radius R has second moment R^2/2; the
motion part is the spread of the exposure sub-frame displacements; variances of independent blurs add).
Both come from one implementation each (bench.metrics.regions.kernel_rms_radius,
bench.data.synth.regions.rms_radius), and GT radii are resized as the region metrics resize them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench import rundir, sweepdir
from bench.data.synth.regions import SHARP_PX, rms_radius
from bench.metrics.regions import kernel_rms_radius, resized_radius  # one definition for figures and metrics
from bench.report import labels
from bench.report.figures import Figures, pyplot, save_figure


def _runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run (run_id, variant, dataset, scene, seed), lowest seed first."""
    return df.drop_duplicates("run_id")[["run_id", "variant", "dataset", "scene", "seed"]].sort_values("seed")


def _first_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One run per (dataset, scene, variant): the lowest seed."""
    return _runs(df).drop_duplicates(["dataset", "scene", "variant"])


def _data_root(run_dir: Path):
    from bench.metrics.evaluate import run_target

    try:
        return run_target(rundir.read_config(run_dir))["data_root"]
    except Exception:  # a run without a readable config still has the registry's default root
        return None


def scene_runs(sweep_dir: Path, df: pd.DataFrame, what: str, notes: list[str]):
    """Per (dataset, scene) of ``df`` (the collected runs): (dataset, scene name, the scene loaded through
    the data registry, {variant: run directory}) for each variant's lowest-seed run with test renders, in
    the report's variant order. A scene without renders or data is skipped with a note
    ``"<what> <dataset>/<scene>: ..."`` in ``notes``."""
    from bench.data.registry import load_scene

    for (d, sc), group in _first_runs(df).groupby(["dataset", "scene"], sort=False):
        run_dirs = {r.variant: sweepdir.run_dir(sweep_dir, r.run_id) for r in group.itertuples()}
        variants = [v for v in labels.order_variants(run_dirs) if (run_dirs[v] / rundir.TEST_RENDERS).is_dir()]
        if not variants:
            notes.append(f"{what} {d}/{sc}: no test renders")
            continue
        try:
            scene = load_scene(d, sc, data_root=_data_root(run_dirs[variants[0]]))
        except Exception as err:  # missing data must not stop the report
            notes.append(f"{what} {d}/{sc}: scene not loadable ({err})")
            continue
        yield d, sc, scene, {v: run_dirs[v] for v in variants}


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    return img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _crop_box(err: np.ndarray, mask: np.ndarray | None) -> tuple[int, int, int, int]:
    """(y0, x0, ch, cw): a third-size window centred on the largest smoothed error (inside the mask if any)."""
    import cv2

    h, w = err.shape
    ch, cw = max(8, h // 3), max(8, w // 3)
    score = cv2.blur(err.astype(np.float32), (cw, ch))
    if mask is not None and mask.sum() > 0:
        score = score * (0.1 + cv2.blur(mask.astype(np.float32), (cw, ch)))
    y, x = np.unravel_index(np.argmax(score), score.shape)
    return int(np.clip(y - ch // 2, 0, h - ch)), int(np.clip(x - cw // 2, 0, w - cw)), ch, cw


def _per_image_psnr(run_dir: Path, name: str):
    try:
        doc = json.loads((run_dir / rundir.RESULTS).read_text())
        return doc["metrics"]["per_image"][name]["psnr"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return None


def plot_qualitative(sweep_dir: Path, df: pd.DataFrame, out_dir: Path, frames: list[int] | None = None):
    """Per scene and chosen test frame: blurry input, GT, each variant's render, zoomed crops below."""
    from bench.metrics.evaluate import read_image

    paths, notes = [], []
    for d, sc, scene, run_dirs in scene_runs(sweep_dir, df, "qualitative", notes):
        n = len(scene.test.names)
        for i in sorted({min(max(f, 0), n - 1) for f in (frames or [n // 2])}):
            name = scene.test.names[i]
            renders = {v: read_image(run_dir / rundir.TEST_RENDERS / f"{name}.png") for v, run_dir in run_dirs.items()
                       if (run_dir / rundir.TEST_RENDERS / f"{name}.png").is_file()}
            if not renders:
                notes.append(f"qualitative {d}/{sc}: no render of test view {name}")
                continue
            fig = _grid(scene, i, renders, {v: _per_image_psnr(run_dirs[v], name) for v in renders})
            fig.suptitle(f"{labels.dataset_label(d)} / {sc} / test view {name}", fontsize=9)
            paths += save_figure(fig, out_dir, f"qualitative_{d}_{sc}_{name}")
    return Figures(paths, notes)


def _grid(scene, i: int, renders: dict[str, np.ndarray], psnrs: dict):
    """2 x (2 + variants) grid: full images with the crop box, then the crops."""
    from matplotlib.patches import Rectangle

    plt = pyplot()
    h, w = next(iter(renders.values())).shape[:2]
    gt = _resize(scene.test.images[i].numpy(), h, w)
    partner = (scene.train.frame_index == scene.test.frame_index[i]).nonzero()
    panels = {}
    if len(partner):
        panels["blurry input"] = _resize(scene.train.images[int(partner[0, 0])].numpy(), h, w)
    panels["ground truth"] = gt
    for v, img in renders.items():
        panels[f"{v}" + (f"\n{psnrs[v]:.2f} dB" if psnrs.get(v) is not None else "")] = img
    mask = None
    if scene.test.motion_mask is not None:
        mask = _resize(scene.test.motion_mask[i].numpy(), h, w)
    ref = renders.get("full", next(iter(renders.values())))
    y0, x0, ch, cw = _crop_box(np.abs(ref - gt).mean(-1), mask)
    fig, axes = plt.subplots(2, len(panels), figsize=(2.2 * len(panels), 2.2 * h / w * 2 + 0.6), squeeze=False)
    for k, (title, img) in enumerate(panels.items()):
        axes[0, k].imshow(np.clip(img, 0, 1))
        axes[0, k].add_patch(Rectangle((x0, y0), cw, ch, fill=False, ec="yellow", lw=1))
        axes[0, k].set_title(title, fontsize=7)
        axes[1, k].imshow(np.clip(img[y0:y0 + ch, x0:x0 + cw], 0, 1), interpolation="nearest")
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def gt_rms_radius(gt, index: int) -> np.ndarray:
    """(H,W) float64 ground-truth RMS blur radius in pixels of training frame ``index`` (see module doc).

    The generator's ``train_blur_rms`` when the scene has region ground truth (the same function on
    the same stored blur); else computed from ``gt.coc_radius`` (N,H,W) / ``gt.motion_disp`` (N,S,H,W,2).
    """
    regions = getattr(gt, "regions", None)  # GroundTruth from before the field existed has none
    if regions is not None and regions.get("train_blur_rms") is not None:
        return np.asarray(regions["train_blur_rms"][index], dtype=np.float64)
    coc = None if gt.coc_radius is None else gt.coc_radius[index].numpy()
    disp = None if gt.motion_disp is None else gt.motion_disp[index].numpy()
    if coc is None and disp is None:  # no blur at all: every pixel sharp
        return np.zeros(tuple(gt.depth.shape[1:]), dtype=np.float64)
    return rms_radius(coc, disp)


def blur_accuracy(pred_rms: np.ndarray, pred_mask: np.ndarray, true_rms: np.ndarray) -> dict:
    """MAE and Pearson r of RMS radius; IoU of (mask > 0.5) against (true RMS > SHARP_PX: blur present where not sharp)."""
    a, b = pred_rms.ravel(), true_rms.ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    p, t = pred_mask > 0.5, true_rms > SHARP_PX
    union = (p | t).sum()
    return {"rms_mae_px": float(np.abs(a - b).mean()), "rms_corr": corr,
            "mask_iou": float((p & t).sum() / union) if union else float("nan")}


def _true_rms(scene, name: str, shape: tuple[int, int]) -> np.ndarray:
    """(H,W) ground-truth RMS radius of training view ``name`` resized to ``shape``, in its pixels."""
    true = gt_rms_radius(scene.gt, scene.train.names.index(name))
    return resized_radius(true, *shape, "INTER_AREA")  # area averaging, as the figures always resized


def plot_blur_accuracy(sweep_dir: Path, df: pd.DataFrame, out_dir: Path):
    """Synthetic scenes: predicted vs GT blur maps and scatter; the Figures carry the per-view stats."""
    from bench.data.registry import load_scene

    paths, notes, stats = [], [], []
    for (d, sc), group in _runs(df).groupby(["dataset", "scene"], sort=False):
        # every seed's kernels count in the statistics; the figure shows each variant's lowest seed
        run_dirs = {(r.variant, r.seed): sweepdir.run_dir(sweep_dir, r.run_id) for r in group.itertuples()}
        kernel_files = {k: sorted((p / rundir.TRAIN_RENDERS).glob("*_kernels.npz")) for k, p in run_dirs.items()}
        kernel_files = {k: f for k, f in kernel_files.items() if f}
        if not kernel_files:
            continue
        try:
            scene = load_scene(d, sc, data_root=_data_root(next(iter(run_dirs.values()))))
        except Exception as err:  # missing data must not stop the report
            notes.append(f"blur {d}/{sc}: scene not loadable ({err})")
            continue
        if scene.gt is None:
            continue
        shown, truth = {}, {}
        order = {v: i for i, v in enumerate(labels.order_variants({v for v, _ in kernel_files}))}
        for v, seed in sorted(kernel_files, key=lambda k: (order[k[0]], k[1])):
            for f in kernel_files[(v, seed)]:
                name = f.name[: -len("_kernels.npz")]
                if name not in scene.train.names:
                    note = f"blur {d}/{sc}: {f.name} names no training view"
                    notes += [note] if note not in notes else []  # once, not once per seed
                    continue
                with np.load(f) as z:
                    pred_rms, mask = kernel_rms_radius(z["kernels"]), z["mask"]
                key = (name, pred_rms.shape)  # the same view's truth serves every run and seed
                if key not in truth:
                    truth[key] = _true_rms(scene, name, pred_rms.shape)
                true = truth[key]
                stats.append({"variant": v, "dataset": d, "scene": sc, "seed": seed, "view": name,
                              **blur_accuracy(pred_rms, mask, true)})
                shown.setdefault(v, (name, pred_rms, mask, true))
        if shown:
            paths += save_figure(_blur_figure(shown, f"{labels.dataset_label(d)} / {sc}"), out_dir, f"blur_{d}_{sc}")
    return Figures(paths, notes, pd.DataFrame(stats))


def _blur_figure(shown: dict, title: str):
    plt = pyplot()
    fig, axes = plt.subplots(len(shown), 5, figsize=(14, 2.3 * len(shown)), squeeze=False)
    vmax = max(max(t.max(), p.max()) for _, p, _, t in shown.values()) or 1.0
    for row, (v, (name, pred, mask, true)) in zip(axes, shown.items()):
        handles = []
        for ax, img, t in zip(row[:4], (true, pred, true > SHARP_PX, mask),
                              ("GT RMS radius (px)", "predicted RMS radius", "GT blur present", "predicted mask")):
            handles.append(ax.imshow(img, vmin=0, vmax=vmax if "radius" in t else 1, cmap="magma"))
            ax.set_title(f"{v} view {name}: {t}" if ax is row[0] else t, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(handles[1], ax=row[1], fraction=0.04)
        fig.colorbar(handles[3], ax=row[3], fraction=0.04)
        idx = np.random.default_rng(0).choice(true.size, size=min(3000, true.size), replace=False)
        row[4].scatter(true.ravel()[idx], pred.ravel()[idx], s=2, alpha=0.4, color=labels.colour(v))
        row[4].plot([0, vmax], [0, vmax], "k--", lw=0.8)
        row[4].set_xlabel("GT RMS radius (px)", fontsize=7)
        row[4].set_ylabel("predicted (px)", fontsize=7)
    fig.suptitle(f"{title}: predicted vs ground-truth blur", fontsize=9)
    fig.tight_layout()
    return fig
