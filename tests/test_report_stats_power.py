"""The paired t-test on simulated demo-shaped sweeps (bench.report.power): a 1 dB effect is marked in
at least 90% of scene and group rows, a null effect in at most 5% of rows, and the 95% t intervals
cover at about their rate. A few replicates only: tests/perf/stats_power.py runs more and prints the
figures README "Statistics" quotes."""

import numpy as np
import pytest

from bench.report import power as P

REPS = 40  # 40 tables x 8 variants x 7 rows; about 10 s


def test_t_test_marks_a_1_db_effect_keeps_its_error_rate_and_covers():
    rows = P.simulate(REPS, seed=0)
    table = P.summary(rows)
    effect, null = table.loc["effect"], table.loc["null"]
    # Power after Holm over each table: every scene and group row of the 1 dB variant.
    assert effect.loc["scene", "marked"] >= 0.90 and effect.loc["group", "marked"] >= 0.90
    assert effect.loc["dataset", "marked"] >= 0.90
    # Null variants: marked rows (after Holm) at most 5%; raw p < 0.05 near 5% (Monte-Carlo error of
    # 40 tables x 49 rows is about 1 point; the noisiest scene's pooled variance adds about 1).
    assert null.loc["all", "marked"] <= 0.05
    assert null.loc["all", "raw"] <= 0.05 + 0.03
    # Coverage of the 95% t intervals, both kinds of variant, every kind of row.
    covered = rows.groupby("kind").covered.mean()
    assert ((covered >= 0.90) & (covered <= 0.99)).all(), covered
    assert 0.92 <= rows.covered.mean() <= 0.98


def test_simulated_sweep_has_the_demo_shape_and_exact_scene_effects():
    rng = np.random.default_rng(0)
    effect = np.array([-1.2, -1.0, -0.9, -0.9])
    per_image = P.simulate_sweep(rng, {"effect": effect}, P.Noise(seed_sd=0.0, view_sd=0.0))
    assert len(per_image) == 2 * 4 * 3 * 16 and set(per_image.blur_type) == {"motion", "defocus"}
    wide = per_image.pivot_table(index=["scene", "seed", "view"], columns="variant", values="value")
    delta = (wide["effect"] - wide["full"]).groupby(level="scene").mean()
    # Without training noise each scene's delta is its effect exactly (the view effects are centred).
    assert delta[[s for s, _ in P.SCENES]].to_numpy() == pytest.approx(effect)
