"""Figures (PNG + PDF, one fixed colour per variant): per-scene bars, ablation deltas, qualitative
grids, training curves, and predicted-vs-true blur for synthetic scenes.

Every ``plot_*`` returns a :class:`Figures` (written paths, notes); a note says why a figure was
skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import rundir, sweepdir
from bench.atomic import atomic_path
from bench.metrics.protocols import headline_ssim
from bench.metrics.registry import METRICS, arrow
from bench.report import labels


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf atomically and close the figure."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(out_dir) / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")
        paths.append(path)
    pyplot().close(fig)
    return paths


def _ssim_metric(df: pd.DataFrame, dataset: str) -> str:
    return headline_ssim(df.protocol[df.dataset == dataset].dropna())


@dataclass
class Figures:
    """What a figure family wrote: ``paths`` (PNG and PDF), ``notes`` (why a figure was skipped),
    and for the blur-accuracy family its per-view statistics ``blur_stats``."""

    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blur_stats: pd.DataFrame | None = None


def plot_scene_bars(df: pd.DataFrame, per_scene: pd.DataFrame, out_dir: Path):
    """Per dataset: grouped bars (scene groups, one bar per variant, seed std as error bars)."""
    plt = pyplot()
    paths, notes = [], []
    for d in labels.order_datasets(per_scene.dataset.unique()):
        sub = per_scene[per_scene.dataset == d]
        scenes = list(dict.fromkeys(sub.scene))
        variants = labels.order_variants(sub.variant.unique())
        metrics = [m for m in ("psnr", _ssim_metric(df, d), "lpips") if sub.loc[sub.metric == m, "mean"].notna().any()]
        if not metrics:
            notes.append(f"bars_{d}: no metric values")
            continue
        width_each = max(3.5, 0.35 * len(scenes) * len(variants))
        fig, axes = plt.subplots(1, len(metrics), figsize=(width_each * len(metrics) + 1.5, 3.4), squeeze=False)
        width = 0.8 / len(variants)
        for ax, m in zip(axes[0], metrics):
            for k, v in enumerate(variants):
                rows = sub[(sub.variant == v) & (sub.metric == m)].set_index("scene").reindex(scenes)
                ax.bar(np.arange(len(scenes)) + (k - (len(variants) - 1) / 2) * width, rows["mean"],
                       width, yerr=rows["std"].fillna(0), color=labels.colour(v), label=v, capsize=2)
            ax.set_xticks(np.arange(len(scenes)), scenes, rotation=30, ha="right")
            ax.set_title(f"{METRICS[m].label} {arrow(m)}")
            _tight_ylim(ax, sub.loc[sub.metric == m, "mean"])
        axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        seeds = int(sub["n_seeds"].max())
        spread = f"mean over {seeds} seeds, error bars = std over seeds" if seeds > 1 else "one seed: no spread"
        fig.suptitle(f"{labels.dataset_label(d)}: per scene ({spread})")
        fig.tight_layout()
        paths += save_figure(fig, out_dir, f"bars_{d}")
    return Figures(paths, notes)


def _tight_ylim(ax, values: pd.Series) -> None:
    """Zoom the y axis on the data range so small differences between variants stay visible."""
    v = values.dropna()
    if v.empty:
        return
    lo, hi = float(v.min()), float(v.max())
    pad = max((hi - lo) * 0.6, 0.02 * max(abs(hi), 1e-3))
    ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)


def plot_ablation_deltas(stats: pd.DataFrame, summary: pd.DataFrame, out_dir: Path, metric: str = "psnr"):
    """Per dataset: the paired change of every variant against the reference (bench.report.stats),
    per scene and for the scene average, with the 95% intervals as error bars."""
    from bench.report.tables import group_label

    plt = pyplot()
    paths, notes = [], []
    stats = stats[stats.metric == metric]
    for d in labels.order_datasets(summary.dataset.unique()):
        scene_groups = [g for g in dict.fromkeys(stats.group) if g.startswith(f"{d}:")]
        sub = stats[stats.group.isin(scene_groups + [d])]
        if sub.empty:
            notes.append(f"ablation_delta_{d}: no variant paired with a reference run")
            continue
        reference = sub.reference.iloc[0]
        variants = labels.order_variants(sub.variant.unique())
        groups = scene_groups + [d]
        # The average stays blank where the variant or the reference misses a planned scene (stats.compare).
        incomplete = set(sub.loc[(sub.group == d) & (sub.missing != ""), "variant"])
        fig, ax = plt.subplots(figsize=(3 + 0.9 * len(groups) * max(1, len(variants) / 3), 3.2))
        width = 0.8 / len(variants)
        for k, v in enumerate(variants):
            rows = sub[sub.variant == v].set_index("group").reindex(groups)
            if v in incomplete:
                rows.loc[d, ["delta", "ci_low", "ci_high"]] = np.nan
            err = np.vstack([rows["delta"] - rows["ci_low"], rows["ci_high"] - rows["delta"]])
            ax.bar(np.arange(len(groups)) + (k - (len(variants) - 1) / 2) * width, rows["delta"], width,
                   yerr=np.nan_to_num(err), color=labels.colour(v), label=labels.ablation_label(v), capsize=2)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(groups)), [g.partition(":")[2] for g in scene_groups] + ["average"],
                      rotation=30, ha="right")
        ax.set_ylabel(f"\u0394 {METRICS[metric].label} vs {labels.ablation_label(reference)}")
        covers = "seeds and test views" if int(sub.n_seeds.min()) > 1 else "test views only (one seed)"
        ax.set_title(f"{group_label(summary, d)}: ablation, error bars = 95% interval over {covers}", fontsize=9)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        paths += save_figure(fig, out_dir, f"ablation_delta_{d}")
    return Figures(paths, notes)


def _read_curves(run_dir: Path) -> pd.DataFrame | None:
    rows = rundir.read_curves(run_dir)
    return pd.DataFrame(rows) if rows else None


def plot_curves(sweep_dir: Path, df: pd.DataFrame, out_dir: Path):
    """Per dataset: every curves.csv column (loss terms, train PSNR) against step, one colour per variant."""
    plt = pyplot()
    paths, notes = [], []
    runs = df.drop_duplicates("run_id")[["run_id", "variant", "dataset", "scene", "seed"]]
    for d in labels.order_datasets(runs.dataset.unique()):
        curves = {}
        for r in runs[runs.dataset == d].itertuples():
            c = _read_curves(sweepdir.run_dir(sweep_dir, r.run_id))
            if c is not None and "step" in c:
                curves[r.run_id] = (r.variant, c)
        if not curves:
            notes.append(f"curves_{d}: no curves.csv in the runs")
            continue
        order = labels.order_variants({v for v, _ in curves.values()})
        curves = dict(sorted(curves.items(), key=lambda item: order.index(item[1][0])))
        columns = [c for c in dict.fromkeys(col for _, cv in curves.values() for col in cv.columns)
                   if c not in ("step", "elapsed_s") and any(cv[c].notna().any() for _, cv in curves.values() if c in cv)]
        ncols = min(4, len(columns))
        nrows = math.ceil(len(columns) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
        seen = set()
        for ax, col in zip(axes.flat, columns):
            for variant, cv in curves.values():
                if col in cv and cv[col].notna().any():
                    ax.plot(cv["step"], cv[col], color=labels.colour(variant), lw=0.9, alpha=0.7,
                            label=variant if variant not in seen else None)
                    seen.add(variant)
            ax.set_title(col, fontsize=8)
            ax.tick_params(labelsize=7, which="both")
            values = pd.concat([cv[col] for _, cv in curves.values() if col in cv]).dropna()
            if col not in ("train_psnr", *rundir.COUNT_FIELDS) and (values > 0).all():
                ax.set_yscale("log")  # loss terms span decades
        for ax in list(axes.flat)[len(columns):]:
            ax.axis("off")
        fig.suptitle(f"{labels.dataset_label(d)}: training curves against step (one line per run)")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.legend(fontsize=7, loc="lower center", ncol=min(len(seen), 8), frameon=False)
        paths += save_figure(fig, out_dir, f"curves_{d}")
    return Figures(paths, notes)
