"""Power, false positives and interval coverage of the paired tests on simulated demo-shaped sweeps
(prints figures; not a test). README "Statistics" quotes its output::

    OMP_NUM_THREADS=1 python tests/perf/stats_power.py --reps 200 --permutation-reps 0

(the permutation figures: ``--reps 400``, whose default also runs 100 permutation tables).

Each replicate is one table (bench.report.power.simulate): 4 scenes in 2 blur groups, 3 seeds, 16
test views, a reference and 8 variants, one of them ``--effect`` dB off (scenes at effect -/+ 0.2),
seven changing nothing. Printed per test, noise setting and row kind: the share of rows marked
(significant after Holm), rejected at the raw level (p < 0.05) and covered by the 95% interval, each
with its Monte-Carlo standard error over replicates; then what Benjamini-Hochberg would have marked
instead of Holm, and the coverage of the noisiest and the quietest scene's rows (where a pooled noise
model that misfits the scenes' noise levels shows first).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from scipy import stats as scipy_stats

from bench.report import power as P


def bh_marked(rows) -> np.ndarray:
    """Whether Benjamini-Hochberg over each table (the same families as Holm's) would mark a row."""
    family = np.where(rows.kind == "scene", "scenes", "datasets")
    adjusted = rows.groupby([rows.rep, family])["p"].transform(lambda p: scipy_stats.false_discovery_control(p))
    return (adjusted < 0.05).to_numpy()


def report(title: str, rows) -> None:
    table = P.summary(rows)
    cells = lambda m, se: f"{m * 100:5.1f} ± {se * 100:3.1f}"  # noqa: E731
    print(f"\n{title}")
    print(f"  {'variant':8s} {'rows':8s} {'marked %':>12s} {'raw p<.05 %':>12s} {'covered %':>12s}  n")
    for (variant, kind), r in table.iterrows():
        print(f"  {variant:8s} {kind:8s} {cells(r.marked, r.marked_se):>12s} {cells(r.raw, r.raw_se):>12s} "
              f"{cells(r.covered, r.covered_se):>12s}  {int(r.rows)}")
    bh = rows.assign(marked=bh_marked(rows))
    by_rep = bh.groupby(["variant", "rep"]).marked.mean().groupby(level=0)
    shares = zip(by_rep.mean().items(), by_rep.sem())
    print("  Benjamini-Hochberg instead of Holm, rows marked %: "
          + ", ".join(f"{v} {m * 100:.1f} ± {se * 100:.1f}" for (v, m), se in shares))
    # scene_ratio and noisy_view make the last scene the noisiest, the first the quietest
    for name, (scene, _) in (("noisiest", P.SCENES[-1]), ("quietest", P.SCENES[0])):
        one = rows[rows.group == f"{P.DATASET}:{scene}"]
        cover = one.groupby("rep").covered.mean()
        raw = one[one.variant == "null"].groupby("rep").raw.mean()
        print(f"  {name} scene: covered {cover.mean() * 100:.1f} ± {cover.sem() * 100:.1f} %, "
              f"null rows raw p<.05 {raw.mean() * 100:.1f} ± {raw.sem() * 100:.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="replicates (tables) per setting")
    ap.add_argument("--effect", type=float, default=-1.0, help="the effect variant's mean effect (dB)")
    ap.add_argument("--permutation-reps", type=int, default=100,
                    help="replicates of the permutation test (its bootstrap is slower); 0 skips it")
    args = ap.parse_args()
    settings = [("t-test, demo noise (scene noise ratio 2)", "t", P.Noise(), args.reps),
                ("t-test, equal scene noise", "t", replace(P.Noise(), scene_ratio=1.0), args.reps),
                ("t-test, scene noise ratio 4", "t", replace(P.Noise(), scene_ratio=4.0), args.reps),
                ("t-test, scene noise ratio 10", "t", replace(P.Noise(), scene_ratio=10.0), args.reps),
                ("t-test, last scene's view noise x10 (its run shift not)", "t",
                 replace(P.Noise(), noisy_view=10.0), args.reps),
                ("t-test, seed noise dominant (seed sd 0.25, view sd 0.08)", "t",
                 replace(P.Noise(), seed_sd=0.25, view_sd=0.08), args.reps),
                ("t-test, effect 0.5 dB", "t", P.Noise(), args.reps)]
    if args.permutation_reps:
        settings.append(("permutation test (bootstrap interval), demo noise", "permutation", P.Noise(),
                         args.permutation_reps))
    for title, test, noise, reps in settings:
        effect = args.effect / 2 if "0.5 dB" in title else args.effect
        start = time.perf_counter()
        rows = P.simulate(reps, seed=1, effect=effect, noise=noise, test=test)
        report(f"{title}: effect {effect:+.2f} dB, {reps} replicates ({time.perf_counter() - start:.0f} s)", rows)


if __name__ == "__main__":
    main()
