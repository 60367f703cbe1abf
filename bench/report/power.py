"""Power, false-positive rate and interval coverage of bench.report.stats on simulated demo-shaped sweeps.

A simulated sweep has the demo's shape (4 scenes in 2 blur groups, 3 seeds, 16 test views) and the
table's shape (a reference and several variants compared with it, Holm over each table), and goes
through ``stats.compare`` as a real sweep does. What each row claims is known: a scene row's truth is
the variant's effect on that scene, a group row's the mean of its scenes' effects.

The paired delta of a variant on scene s, seed r, test view v is

    effect_s + b_sv + scale_s * (a_sr + e_srv)

- ``a_sr``: the run's training noise common to its views (sd ``seed_sd``);
- ``e_srv``: training noise that differs by view (typical sd ``view_sd``; each view has its own level,
  log-normally spread by ``view_spread``, so some views are much noisier than others, and Student-t
  tails with ``tail_df`` degrees of freedom);
- ``b_sv``: the variant helps some views more than others (sd ``view_effect_sd``, the same in every
  seed, centred within the scene so that the scene's effect is exactly ``effect_s``);
- ``scale_s``: scenes differ in training noise, the noisiest ``scene_ratio`` times the quietest (run
  shift and view noise alike, as when a scene is harder to fit);
- the last scene's view noise ``e_srv`` alone may be ``noisy_view`` times larger, its run shift not (a
  region metric over a few pixels in that scene: noisier per view, not per run).

The reference's own noise is shared by every variant's delta, as in a real table. README "Statistics"
gives the figures of ``tests/perf/stats_power.py``; ``tests/test_report_stats_power.py`` runs a few
replicates and checks the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report.stats import ALPHA, DEFAULT_TEST, compare, table_groups

SCENES = (("motion_0", "motion"), ("motion_1", "motion"), ("defocus_0", "defocus"), ("defocus_1", "defocus"))
DATASET = "sim"  # not a registered dataset: the groups come from the scenes' blur types


@dataclass(frozen=True)
class Noise:
    """Noise of a simulated paired delta (dB); the defaults are the issue's demo-shaped figures."""

    seed_sd: float = 0.08
    view_sd: float = 0.25
    view_spread: float = 0.5
    tail_df: float = 5.0
    view_effect_sd: float = 0.2
    scene_ratio: float = 2.0
    noisy_view: float = 1.0


def _noise(rng: np.random.Generator, noise: Noise, view_level: np.ndarray, seeds: int) -> np.ndarray:
    """(S,R,V) training noise of one variant's runs, with half the variance of a paired delta (the
    other half comes from the reference's runs)."""
    n_scenes, views = view_level.shape
    scale = noise.scene_ratio ** np.linspace(-0.5, 0.5, n_scenes)[:, None, None] / np.sqrt(2)
    tails = rng.standard_t(noise.tail_df, (n_scenes, seeds, views)) * np.sqrt((noise.tail_df - 2) / noise.tail_df)
    return scale * (rng.normal(0, noise.seed_sd, (n_scenes, seeds, 1)) + view_level[:, None, :] * tails)


def simulate_sweep(rng: np.random.Generator, effects: dict[str, np.ndarray], noise: Noise = Noise(),
                   seeds: int = 3, views: int = 16) -> pd.DataFrame:
    """Per-image PSNR in ``collect.collect_per_image``'s columns for the reference ``full`` and each
    variant of ``effects`` (its true effect per scene of SCENES)."""
    n_scenes = len(SCENES)
    # Each view's noise level: its own, the same for every variant and seed (RMS over views = view_sd).
    view_level = noise.view_sd * np.exp(noise.view_spread * rng.normal(size=(n_scenes, views)) - noise.view_spread ** 2)
    view_level[-1] *= noise.noisy_view
    base = 25 + rng.normal(0, 1, (n_scenes, 1, views))
    values = {"full": base + _noise(rng, noise, view_level, seeds)}
    for variant, effect in effects.items():
        by_view = rng.normal(0, noise.view_effect_sd, (n_scenes, 1, views))
        by_view -= by_view.mean(axis=2, keepdims=True)  # the scene's effect stays exactly effect_s
        values[variant] = base + np.asarray(effect)[:, None, None] + by_view + _noise(rng, noise, view_level, seeds)
    s, r, v = np.meshgrid(np.arange(n_scenes), np.arange(seeds), np.arange(views), indexing="ij")
    frames = [pd.DataFrame({"variant": name, "dataset": DATASET, "scene": [SCENES[i][0] for i in s.ravel()],
                            "blur_type": [SCENES[i][1] for i in s.ravel()], "seed": r.ravel(),
                            "view": [f"{i:05d}" for i in v.ravel()], "metric": "psnr", "value": x.ravel()})
              for name, x in values.items()]
    return pd.concat(frames, ignore_index=True)


def row_kind(group: str) -> str:
    """"scene" (dataset:scene), "group" (dataset/blur_type) or "dataset"."""
    return "scene" if ":" in group else "group" if "/" in group else "dataset"


def simulate(n_rep: int, seed: int = 0, effect: float = -1.0, n_null: int = 7, noise: Noise = Noise(),
             seeds: int = 3, views: int = 16, test: str = DEFAULT_TEST, scene_spread: float = 0.2) -> pd.DataFrame:
    """One row per replicate and table row: variant kind ("effect" / "null"), group, row kind, truth,
    p-value, and whether the row was marked (significant after Holm), rejected at the raw level (p < ALPHA) and
    covered its truth by its interval.

    Each table has one variant with ``effect`` (its scenes at effect -/+ ``scene_spread``, averaging
    to ``effect``) and ``n_null`` variants that change no scene; the demo's table has 8 variants.
    """
    rng = np.random.default_rng(seed)
    n_scenes = len(SCENES)
    effects = {"effect": effect + np.linspace(-scene_spread, scene_spread, n_scenes)}
    effects |= {f"null_{i}": np.zeros(n_scenes) for i in range(n_null)}
    names = [name for name, _ in SCENES]
    out = []
    for rep in range(n_rep):
        per_image = simulate_sweep(rng, effects, noise, seeds, views)
        stats = compare(per_image, "full", test=test, seed=rep)
        members = {group: scenes for _, group, _, scenes in table_groups(per_image)}
        truth = [float(np.mean([effects[v][names.index(s)] for s in members[g]]))
                 for v, g in zip(stats.variant, stats.group)]
        out.append(pd.DataFrame({
            "rep": rep, "variant": np.where(stats.variant == "effect", "effect", "null"), "group": stats.group,
            "kind": stats.group.map(row_kind), "truth": truth, "p": stats.p_value,
            "marked": stats.significant.to_numpy(bool),
            "raw": (stats.p_value < ALPHA).to_numpy(bool),
            "covered": ((stats.ci_low <= truth) & (truth <= stats.ci_high)).to_numpy(bool)}))
    return pd.concat(out, ignore_index=True)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant kind and row kind (and "all"): the share of rows marked, rejected raw and covered,
    each with its Monte-Carlo standard error. The error is taken over replicates (each replicate's
    share of its rows), since rows of one table share the reference's runs and are not independent."""
    both = pd.concat([rows, rows.assign(kind="all")], ignore_index=True)
    per_rep = both.groupby(["variant", "kind", "rep"])[["marked", "raw", "covered"]].mean()
    grouped = per_rep.groupby(level=["variant", "kind"])
    out = grouped.mean().join(grouped.sem().add_suffix("_se"))
    out["rows"] = both.groupby(["variant", "kind"]).size()
    return out[["marked", "marked_se", "raw", "raw_se", "covered", "covered_se", "rows"]]
