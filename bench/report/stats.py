"""Paired statistics of every variant against a reference variant (README "Statistics").

Input: per-image metrics (``bench.report.collect.collect_per_image``; columns variant, dataset, scene,
blur_type, seed, view, metric, value). A variant's differences to the reference are paired by
(dataset, scene, seed, view): the same view of the same scene (a test view; a training view
``train/<name>`` for false_blur, which is scored on training frames), rendered by runs of the same
seed, which share their random draws wherever the variants do not differ (bench.method.rng).

For each variant, metric and group the tables show (a dataset, a ``dataset/blur_type`` group, a
scene ``dataset:scene``):

- ``delta``: mean over the group's scenes of the mean over seeds of the mean over test views of
  (variant - reference); the scene average the tables show, as a difference;
- ``ci_low``, ``ci_high``, ``p_value``, ``df``: from the test ``test`` names (TESTS):

  - ``"t"`` (the default): a t-test and its 95% t interval from one model per variant, metric and
    dataset: each run's mean over its test views is its scene's effect plus training noise, scenes are
    fixed effects, and the training noise is pooled over the dataset's scenes as the ratio of a run
    mean's variance to the scene's own view-level noise (``view_noise``), so scenes may differ in noise
    level (df = sum over scenes of seeds - 1). A row (scene, blur-type group, dataset) is the mean of its
    scenes' effects. Test views are held fixed like the scenes; with one seed the units are test views
    instead (their variance pooled unscaled, df = sum over scenes of views - 1), and the interval covers
    the test views only, not training noise. Without replication (df 0, or no spread) p is NaN;
  - ``"permutation"``: the exact paired sign-flip test over runs (scene, seed), with one seed over test
    views (scene, view), exact for up to EXACT_MAX units; its interval is a 95% percentile bootstrap
    resampling within each scene its seeds and its test views, crossed (every drawn seed keeps the
    drawn views, as every seed renders the same views), scenes fixed. It cannot reject with few runs
    (3 seeds of one scene: p >= 0.25); ``df`` is NaN;
- ``p_holm``, ``significant``: Holm's correction over the comparisons of one table (a metric's
  dataset-level groups; a metric's scenes of one dataset) that have a p-value (NaN p stays NaN),
  significant when p_holm < ALPHA; blank (None) on a subset's row (``missing``);
- ``n_scenes``, ``n_seeds`` (distinct seeds), ``n_views`` (test views summed over scenes; each is
  evaluated once per seed); ``test``: which test gave ``p_value``;
- ``n_planned``, ``missing``: the scenes the sweep planned in the group, and those of them where the variant
  or the reference has no finished run (``collect.missing_scenes``, the tables' rule for a scene average).
  A row with ``missing`` is a subset's figure, not the group's: its delta, interval and p describe the scenes
  that ran, and it is never marked significant. A variant the sweep planned with no finished run at all
  (``unfinished``) gets a row per dataset-level group and metric with no figures, n_scenes 0 and every
  planned scene missing.

bench.report.power simulates demo-shaped sweeps to check the tests' power, error rate and coverage.

Every random draw comes from ``numpy.random.default_rng(seed)``, fresh for each comparison, so a
row does not depend on which other rows were computed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.errors import BenchError
from bench.report.collect import missing_scenes, subset_label
from bench.report.labels import order_variants

ALPHA = 0.05
LEVEL = 0.95
N_BOOT = 4000
EXACT_MAX = 16  # sign flips enumerated exactly up to 2^16 = 65536 of them
N_FLIPS = 20000  # Monte Carlo sign flips beyond that
TESTS = ("t", "permutation")  # bench compare / table / report --test; "t" is the default
DEFAULT_TEST = "t"
STATS_COLUMNS = ["variant", "reference", "group", "metric", "delta", "ci_low", "ci_high", "p_value", "p_holm",
                 "significant", "n_scenes", "n_seeds", "n_views", "n_planned", "missing", "test", "df"]
PAIR_KEYS = ["dataset", "scene", "seed", "view"]
# A pair's view is a test view, or a training view for metrics scored on training frames (false_blur).
PAIRED_VIEW = "view (a test view; a training view for false blur)"


def paired_differences(per_image: pd.DataFrame, variant: str, reference: str, metric: str) -> pd.DataFrame:
    """Rows (dataset, scene, blur_type, seed, view, diff) where both variants have a finite value."""
    cols = PAIR_KEYS + ["blur_type", "value"]
    sel = per_image[per_image.metric == metric]
    a = sel.loc[sel.variant == variant, cols]
    b = sel.loc[sel.variant == reference, PAIR_KEYS + ["value"]]
    out = a.merge(b, on=PAIR_KEYS, suffixes=("", "_ref"))
    out["diff"] = out["value"] - out["value_ref"]
    out = out[np.isfinite(out["diff"])]
    return out[PAIR_KEYS[:2] + ["blur_type", "seed", "view", "diff"]].reset_index(drop=True)


def scene_matrices(pairs: pd.DataFrame) -> list[np.ndarray]:
    """Per scene an (R,V) array of differences: rows = seeds, columns = test views, NaN where unpaired."""
    out = []
    for _, scene in pairs.groupby(["dataset", "scene"], sort=True):
        row, seeds = pd.factorize(scene["seed"], sort=True)
        col, views = pd.factorize(scene["view"], sort=True)
        m = np.full((len(seeds), len(views)), np.nan)
        m[row, col] = scene["diff"].to_numpy(float)
        out.append(m)
    return out


def group_delta(scenes: list[np.ndarray]) -> float:
    """Mean over scenes of the mean over runs of the mean over views."""
    return float(np.mean([np.nanmean(np.nanmean(m, axis=1)) for m in scenes]))


def _counts(n_boot: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,k) how often each of k items is drawn in k draws with replacement, per replicate."""
    idx = rng.integers(0, k, size=(n_boot, k)) + k * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * k).reshape(n_boot, k)


def _scene_replicates(m: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """(n_boot,) bootstrap scene means of an (R,V) seed x view matrix.

    Seeds and views are resampled independently and crossed (every drawn seed keeps the drawn views):
    each seed renders the same test views, so a view's effect repeats over seeds and must be drawn
    once per replicate, not once per run. Deviations from the view means are first scaled by
    sqrt(R/(R-1)) so that the seed-level variance is not shrunk by (R-1)/R, which matters with 3 seeds.
    """
    n_runs, n_views = m.shape
    if n_runs > 1:
        view_mean = np.nanmean(m, axis=0)
        m = view_mean + np.sqrt(n_runs / (n_runs - 1)) * (m - view_mean)
    ok = ~np.isnan(m)
    views = _counts(n_boot, n_views, rng)
    num, den = views @ np.where(ok, m, 0.0).T, views @ ok.T  # (B,R) per drawn view multiset
    weight = _counts(n_boot, n_runs, rng) * (den > 0)  # a run none of whose drawn views is paired drops out
    return (weight * num / np.maximum(den, 1)).sum(axis=1) / weight.sum(axis=1)


def bootstrap_ci(scenes: list[np.ndarray], rng: np.random.Generator, n_boot: int = N_BOOT,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the group delta; each scene resampled on its own, scenes fixed."""
    reps = np.mean([_scene_replicates(m, rng, n_boot) for m in scenes], axis=0)
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(reps, [tail, 100 - tail])
    return float(lo), float(hi)


def unit_values(scenes: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """Per scene the values of the tests' units, and the unit's name.

    unit "runs": one value per (scene, seed), the run's mean over views. With one seed there is a
    single run per scene, too few to test, so the unit is "views": one value per (scene, view).
    """
    if max(m.shape[0] for m in scenes) > 1:
        return [np.nanmean(m, axis=1) for m in scenes], "runs"
    return [m[~np.isnan(m)] for m in scenes], "views"


def units(scenes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, str]:
    """(values, weights, unit) of the permutation test; weights @ values is the group delta (see
    ``unit_values`` for the units)."""
    values, unit = unit_values(scenes)
    weights = [np.full(len(v), 1 / (len(scenes) * len(v))) for v in values]
    return np.concatenate(values), np.concatenate(weights), unit


class Pool(NamedTuple):
    """A dataset's pooled training noise (``pooled_variance``): a unit's variance in scene s is
    ``ratio * scale_s``, with scale_s the scene's view-level noise (``noise_scales``) when ``scaled``,
    else 1; ``df`` the ratio's degrees of freedom; ``unit`` "runs" or "views" (``unit_values``)."""

    ratio: float
    df: int
    unit: str
    scaled: bool


def view_noise(m: np.ndarray) -> float:
    """View-by-run residual mean square of a scene's (R,V) seed x view matrix, over its complete views.

    It measures the training noise that differs by view, with (R-1)(V-1) df (30 on the demo), so each
    scene has a usable noise level of its own where its run means (R-1 = 2 df) do not. NaN with fewer
    than 2 runs or 2 complete views.
    """
    x = m[:, ~np.isnan(m).any(axis=0)]
    n_runs, n_views = x.shape
    if n_runs < 2 or n_views < 2:
        return float("nan")
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    return float((resid ** 2).sum() / ((n_runs - 1) * (n_views - 1)))


def noise_scales(scenes: list[np.ndarray]) -> np.ndarray | None:
    """Per scene its view-level noise (``view_noise``), or None where the pooled model cannot scale by it:
    one seed (the units are then views, with no run to hold a view's noise apart from its effect), or a
    scene without a positive finite estimate (one run, views never complete, no view-level spread)."""
    if unit_values(scenes)[1] != "runs":
        return None
    scales = np.array([view_noise(m) for m in scenes])
    return scales if bool(np.all(np.isfinite(scales) & (scales > 0))) else None


def pooled_variance(scenes: list[np.ndarray]) -> Pool:
    """The training noise of ``scenes``' units around their scene's mean, pooled over the scenes (``Pool``).

    Each scene keeps its own mean (scenes are fixed effects: a variant may help one scene more than
    another), so only the spread within a scene, i.e. training noise, enters; its df are the sum of
    (units - 1). Pooling is what gives 3 seeds a usable test: one scene alone has 2 df, the demo's 4
    scenes have 8. Scenes need not share a noise level: with several seeds each run mean's deviation is
    divided by its scene's view-level noise before pooling, so what is pooled is the ratio of run-level to
    view-level noise, and a scene with noisier views (a region metric over a few pixels) keeps a larger
    variance (README "Statistics"). With one seed, or where a scene has no view-level estimate, the
    variance itself is pooled (scale 1).
    """
    values, unit = unit_values(scenes)
    scales = noise_scales(scenes)
    weights = np.ones(len(values)) if scales is None else 1 / scales
    df = sum(len(v) - 1 for v in values)
    ss = sum(w * float(((v - v.mean()) ** 2).sum()) for v, w in zip(values, weights))
    return Pool(ss / df if df > 0 else np.nan, df, unit, scales is not None)


def t_test(scenes: list[np.ndarray], pool: Pool | None = None,
           level: float = LEVEL) -> tuple[float, float, float, float]:
    """(ci_low, ci_high, p_value, df) of the group delta: a two-sided t-test and its t interval.

    The delta is the mean over scenes of each scene's mean unit; its variance is sum over scenes of
    ratio * scale_s / (S^2 n_s) with ``pool`` (``pooled_variance``; default, or when its unit differs:
    pooled over ``scenes``; ``compare`` pools over the whole dataset). Views within a run only enter
    through the run's mean: a view's own effect repeats in every seed, so it is part of what the scene's
    delta measures on its test views, not noise, and only seeds replicate training noise.

    Without replication variance (df 0: one unit per scene; or no spread at all, e.g. a variant identical
    to its reference) there is nothing to test against: interval and p are NaN, so the row is never
    marked, rather than a p of 0 for any nonzero delta.
    """
    values, unit = unit_values(scenes)
    pool = pool if pool is not None and pool.unit == unit else pooled_variance(scenes)
    scales = noise_scales(scenes) if pool.scaled else None
    scales = np.ones(len(values)) if scales is None else scales
    delta = float(np.mean([v.mean() for v in values]))
    se = float(np.sqrt(pool.ratio * sum(s / len(v) for v, s in zip(values, scales)))) / len(values)
    if not (pool.df > 0 and se > 0):
        return np.nan, np.nan, np.nan, float(pool.df)
    half = se * scipy_stats.t.ppf(0.5 + level / 2, pool.df)
    return delta - half, delta + half, float(2 * scipy_stats.t.sf(abs(delta) / se, pool.df)), float(pool.df)


def sign_flip_p(values: np.ndarray, weights: np.ndarray, rng: np.random.Generator,
                exact_max: int = EXACT_MAX, n_flips: int = N_FLIPS) -> float:
    """Two-sided p-value of ``weights @ values`` under random signs of the paired units.

    Exact over all 2^n sign patterns when n <= exact_max (the smallest p is then 2 / 2^n), else
    Monte Carlo with the observed pattern counted once, p = (1 + hits) / (1 + n_flips).
    """
    x = np.asarray(weights, float) * np.asarray(values, float)
    n = len(x)
    observed = abs(x.sum()) - 1e-12 * np.abs(x).sum()  # float ties with the observed pattern count
    if n <= exact_max:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ x) >= observed))
    hits, chunk = 0, max(1, 2 ** 22 // n)  # bounded memory for many views
    for start in range(0, n_flips, chunk):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(chunk, n_flips - start), n))
        hits += int((np.abs(signs @ x) >= observed).sum())
    return (1 + hits) / (1 + n_flips)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as ``p``), over the finite p-values only: a NaN p
    (no test was possible, ``t_test``) stays NaN and does not count as a test, so it neither tightens the
    other rows' thresholds nor gets marked."""
    p = np.asarray(p, float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    scaled = (len(order) - np.arange(len(order))) * p[order]
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def _compare_scenes(scenes: list[np.ndarray], seeds: list[set], seed: int, test: str, pool: Pool | None) -> dict:
    """delta, ci_low, ci_high, p_value, df, test, unit and counts of one group: its scene matrices
    (``scene_matrices``), whose runs have the seeds ``seeds``.

    ``test``: one of TESTS; ``pool``: the t-test's pooled noise (``pooled_variance``; None: pooled over
    these scenes). The permutation test's rows get the bootstrap interval and df NaN.
    """
    if test == "t":
        lo, hi, p, df = t_test(scenes, pool)
        unit = unit_values(scenes)[1]
    elif test == "permutation":
        rng = np.random.default_rng(seed)
        lo, hi = bootstrap_ci(scenes, rng)
        values, weights, unit = units(scenes)
        p, df = sign_flip_p(values, weights, rng), np.nan
    else:
        raise BenchError(f"test {test!r}: unknown; known tests: {', '.join(TESTS)}")
    return {"delta": group_delta(scenes), "ci_low": lo, "ci_high": hi, "p_value": p, "unit": unit,
            "n_scenes": len(scenes), "n_seeds": len(set().union(*seeds)),
            "n_views": sum(m.shape[1] for m in scenes), "test": test, "df": df}


def table_groups(per_image: pd.DataFrame, expected: dict | None = None) -> list[tuple[str, str, str, list[str]]]:
    """[(family, group, dataset, scenes)]: the dataset-level groups of ``collect.scene_groups`` (family
    "datasets", the ablation table) and one group ``dataset:scene`` per scene (family "scenes of <dataset>")."""
    from bench.report.collect import scene_groups

    out = []
    for dataset in sorted(per_image.dataset.unique()):
        groups = scene_groups(dataset, per_image, expected)
        out += [("datasets", g, dataset, scenes) for g, scenes in groups]
        seen = set(per_image.loc[per_image.dataset == dataset, "scene"])
        scenes = [s for s in groups[0][1] if s in seen] + sorted(seen - set(groups[0][1]))  # the tables' order
        out += [(f"scenes of {dataset}", f"{dataset}:{s}", dataset, [s]) for s in scenes]
    return out


def compare(per_image: pd.DataFrame, reference: str = "full", expected: dict | None = None,
            seed: int = 0, test: str = DEFAULT_TEST, unfinished: list[str] = ()) -> pd.DataFrame:
    """STATS_COLUMNS and ``unit`` (of the test: runs, or views with one seed), one row per variant, group
    (``table_groups``) and metric with paired values; ``test`` (TESTS) gives p_value and the interval.
    ``unfinished``: planned variants without a finished run (``collect.unfinished_variants``), listed by
    rows without figures (``unfinished_rows``).

    The t-test pools its noise variance over all of a dataset's scenes, whichever rows it tests. Holm's
    correction runs over the rows of one metric and one family (one table); a subset's row (``missing``
    scenes) counts in it but is never marked. BenchError when the reference variant has no runs, or for
    an unknown test.
    """
    if test not in TESTS:
        raise BenchError(f"test {test!r}: unknown; known tests: {', '.join(TESTS)}")
    variants = order_variants(per_image.variant.unique())
    if reference not in variants:
        raise BenchError(f"reference {reference!r}: no runs of it; variants with runs: {', '.join(variants) or '(none)'}")
    rows = []
    groups = table_groups(per_image, expected)
    ran = {v: set(zip(g.dataset, g.scene)) for v, g in per_image.groupby("variant")}  # scenes with a run
    for metric in dict.fromkeys(per_image.metric):
        for variant in (v for v in variants if v != reference):
            pairs = paired_differences(per_image, variant, reference, metric)
            # Each scene's matrix once, for every group it belongs to; sorted as scene_matrices sorts.
            keys = list(pairs.groupby(["dataset", "scene"], sort=True).groups)
            found = dict(zip(keys, zip(scene_matrices(pairs),
                                       pairs.groupby(["dataset", "scene"], sort=True)["seed"].agg(set))))
            pools = {d: pooled_variance([m for (ds, _), (m, _) in found.items() if ds == d])
                     for d in dict.fromkeys(d for d, _ in keys)}
            for family, group, dataset, scenes in groups:
                hit = [found[dataset, s] for s in sorted(scenes) if (dataset, s) in found]
                if hit:
                    both = {s for d, s in ran[variant] & ran[reference] if d == dataset}
                    rows.append({"variant": variant, "reference": reference, "group": group, "metric": metric,
                                 "family": family, "n_planned": len(scenes),
                                 "missing": ", ".join(missing_scenes(scenes, both)),
                                 **_compare_scenes([m for m, _ in hit], [r for _, r in hit], seed, test,
                                                   pools[dataset])})
    out = pd.DataFrame(rows, columns=STATS_COLUMNS + ["family", "unit"])
    out["p_holm"] = out.groupby(["metric", "family"])["p_value"].transform(holm)
    # a subset's p is its scenes', not the group's: its flag stays blank rather than False or True
    out["significant"] = (out["p_holm"] < ALPHA).astype(object).where(out["missing"] == "", None)
    if unfinished:
        out = pd.concat([out, unfinished_rows(out, groups, unfinished, reference)], ignore_index=True)
    return out.drop(columns="family")


def unfinished_rows(stats: pd.DataFrame, groups: list, unfinished, reference: str) -> pd.DataFrame:
    """Rows (``compare``'s columns) saying that each planned variant of ``unfinished`` has no finished run:
    one per dataset-level group and metric of ``stats``, no figures, n_scenes 0, every planned scene missing.

    groups: ``table_groups``' (family, group, dataset, scenes)."""
    planned = {group: scenes for family, group, _, scenes in groups if family == "datasets"}
    shown = stats.loc[stats.group.isin(list(planned)), ["group", "metric", "family"]].drop_duplicates()
    rows = [{"variant": variant, "reference": reference, "group": g, "metric": m, "family": f, "n_scenes": 0,
             "n_seeds": 0, "n_views": 0, "n_planned": len(planned[g]), "missing": ", ".join(planned[g]),
             "significant": None}
            for variant in unfinished if variant != reference for g, m, f in shown.itertuples(index=False)]
    return pd.DataFrame(rows, columns=stats.columns)


def interval_note(n_seeds: int, reference: str, test: str = DEFAULT_TEST) -> str:
    """Two sentences on how to read a delta, its interval and its mark, for a table of ``n_seeds`` seeds
    whose statistics came from ``test`` (TESTS)."""
    if test == "permutation":
        if n_seeds > 1:
            covers, unit = "over seeds and test views within each scene (scenes fixed)", "runs"
        else:
            covers = ("over test views only: with one seed it shows how much the number would move with other "
                      "test views, not with another training run")
            unit = "test views"
        return (f"\u0394 is each variant minus {reference}, paired by scene, seed and {PAIRED_VIEW}, and the "
                f"bracket is its 95% bootstrap interval {covers}. * marks a difference whose paired sign-flip test "
                f"over {unit} gives p < 0.05 after Holm's correction over the comparisons of the table.")
    if n_seeds > 1:
        covers = ("over training runs: scenes and their test views fixed, the seed-to-seed spread pooled over "
                  "the dataset's scenes")
    else:
        covers = ("over test views only: with one seed it shows how much the number would move with other "
                  "test views, not with another training run")
    return (f"\u0394 is each variant minus {reference}, paired by scene, seed and {PAIRED_VIEW}, and the bracket "
            f"is its 95% t interval {covers}. * marks a difference whose t-test gives p < 0.05 after Holm's "
            "correction over the comparisons of the table.")


def comparison_text(stats: pd.DataFrame, metric: str, decimals: int = 2, scenes: list[str] | None = None) -> str:
    """``stats`` of one metric as an aligned plain-text table, a line per subset row and per planned variant
    without a finished run, then the note on what the intervals cover. ``scenes``: the scenes asked for
    (``bench compare --scenes``), named in the header as what every group averages."""
    rows = stats[stats.metric == metric]
    if rows.empty:
        known = ", ".join(dict.fromkeys(stats.metric)) or "(none)"
        raise BenchError(f"--metric {metric}: no paired values; metrics with values: {known}")
    unfinished = rows[rows.n_scenes == 0]
    rows = rows[rows.n_scenes > 0]
    f = f"{{:+.{decimals}f}}"
    table = pd.DataFrame({
        "variant": rows.variant, "group": rows.group, "delta": rows.delta.map(f.format),
        "95% CI": [f"[{f.format(lo)}, {f.format(hi)}]" for lo, hi in zip(rows.ci_low, rows.ci_high)],
        "p": rows.p_value.map(_p_text), "p (Holm)": rows.p_holm.map(_p_text),
        "sig.": np.where(rows.significant.eq(True), "*", ""), "unit": rows.unit,
        "df": rows.df.map(lambda d: "-" if np.isnan(d) else f"{d:.0f}"),
        "scenes": [f"{n} of {p}" if m else n for n, p, m in zip(rows.n_scenes, rows.n_planned, rows.missing)],
        "seeds": rows.n_seeds, "views": rows.n_views})
    reference, test = rows.reference.iloc[0], rows.test.iloc[0]
    untested = (" p is - where nothing could be tested: no spread between runs (or views) to test against."
                if rows.p_value.isna().any() else "")
    note = interval_note(int(rows.n_seeds.min()), reference, test) + untested
    asked = f"; scenes {', '.join(scenes)} only (asked with --scenes)" if scenes else ""
    return (f"{metric}: variant - {reference}, paired by scene, seed and view ({test} test){asked}\n"
            + table.to_string(index=False) + "\n" + _partial_lines(rows, unfinished) + "\nnote: " + note)


def _partial_lines(rows: pd.DataFrame, unfinished: pd.DataFrame) -> str:
    """One line per subset row of ``comparison_text`` (its figure is not the group's) and one per planned
    variant without a finished run; "" when the comparison covers every planned scene and variant."""
    lines = [f"{r.variant} {r.group}: {subset_label(int(r.n_planned), r.missing.split(', '))}; not marked "
             "significant: the group's figure needs every planned scene" for r in rows[rows.missing != ""].itertuples()]
    lines += [f"{v}: planned, no finished run; not compared" for v in dict.fromkeys(unfinished.variant)]
    return "".join(f"{line}\n" for line in lines)


def _p_text(p: float) -> str:
    """A p-value with 4 decimals; "-" where no test was possible (NaN, ``t_test``)."""
    return "-" if np.isnan(p) else f"{p:.4f}"
