"""The paired t-test on simulated demo-shaped sweeps (bench.report.power): a 1 dB effect is marked in
at least 90% of scene and group rows, a null effect in at most 5% of rows, and the 95% t intervals
cover at about their rate. A few replicates only: tests/perf/stats_power.py runs more and prints the
figures README "Statistics" quotes."""

import numpy as np
import pytest

from bench.report import power as P

REPS = 40  # 40 tables x 8 variants x 7 rows; about 10 s a setting


def test_t_test_marks_a_1_db_effect_keeps_its_error_rate_and_covers():
    rows = P.simulate(REPS, seed=0)
    table = P.summary(rows)
    effect, null = table.loc["effect"], table.loc["null"]
    # Power after Holm over each table: every scene and group row of the 1 dB variant.
    assert effect.loc["scene", "marked"] >= 0.90 and effect.loc["group", "marked"] >= 0.90
    assert effect.loc["dataset", "marked"] >= 0.90
    # Null variants: marked rows (after Holm) at most 5%; raw p < 0.05 near 5% (Monte-Carlo error of
    # 40 tables x 49 rows is about 1 point).
    assert null.loc["all", "marked"] <= 0.05
    assert null.loc["all", "raw"] <= 0.05 + 0.02
    # Coverage of the 95% t intervals, both kinds of variant, every kind of row.
    covered = rows.groupby("kind").covered.mean()
    assert ((covered >= 0.90) & (covered <= 0.99)).all(), covered
    assert 0.92 <= rows.covered.mean() <= 0.98


@pytest.mark.parametrize("noise", [P.Noise(scene_ratio=10.0), P.Noise(noisy_view=10.0)],
                         ids=["scene_ratio_10", "noisy_view_10"])
def test_t_test_keeps_its_error_rate_when_one_scene_is_much_noisier(noise):
    # The pooled model scales each scene's variance by its own view-level noise, so the noisiest scene's
    # row covers near its rate (pooling the variance itself: about 68% at ratio 10), false marks stay
    # rare. With only the view noise 10x (noisy_view) that row is conservative, the quiet ones a little
    # liberal (README "Statistics").
    rows = P.simulate(REPS, seed=0, noise=noise)
    null = P.summary(rows).loc["null"]
    assert null.loc["all", "marked"] <= 0.05 and null.loc["all", "raw"] <= 0.05 + 0.02
    for scene, _ in (P.SCENES[0], P.SCENES[-1]):
        one = rows[rows.group == f"{P.DATASET}:{scene}"]
        assert 0.90 <= one.covered.mean() <= 1.0, (scene, one.covered.mean())
        assert one[one.variant == "null"].raw.mean() <= 0.05 + 0.04, scene


def test_simulated_sweep_has_the_demo_shape_and_exact_scene_effects():
    rng = np.random.default_rng(0)
    effect = np.array([-1.2, -1.0, -0.9, -0.9])
    per_image = P.simulate_sweep(rng, {"effect": effect}, P.Noise(seed_sd=0.0, view_sd=0.0))
    assert len(per_image) == 2 * 4 * 3 * 16 and set(per_image.blur_type) == {"motion", "defocus"}
    wide = per_image.pivot_table(index=["scene", "seed", "view"], columns="variant", values="value")
    delta = (wide["effect"] - wide["full"]).groupby(level="scene").mean()
    # Without training noise each scene's delta is its effect exactly (the view effects are centred).
    assert delta[[s for s, _ in P.SCENES]].to_numpy() == pytest.approx(effect)
