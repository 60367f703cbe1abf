"""Paired statistics (bench.report.stats): the t-test against scipy and least squares, the bootstrap
interval's coverage and the permutation test's calibration on simulated data (the t-test's power,
false positives and coverage: tests/test_report_stats_power.py), a hand-made sweep with a known 1 dB
effect, and where they show up (CSV, tables, HTML, ``bench compare``), plus dataset averages over the
scenes a sweep planned."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bench.cli import main
from bench.errors import BenchError
from bench.harness.spec import load_sweep
from bench.report import stats as S
from bench.report import tables as T
from bench.report.build import build_all, summarise
from report_fakes import require_pdflatex, write_manifest, write_run

TRUTH = -0.3


def _simulated(rng, effect, scenes=4, seeds=3, views=16, sd_seed=0.1, sd_view=0.1, sd_noise=0.1, spread=0.2):
    """Per scene an (R,V) matrix of paired differences: scene effect + seed effect + view effect
    (shared by the seeds, as the test views are) + noise. The scene effects, ``effect`` -/+ ``spread``,
    average to ``effect``."""
    offsets = np.linspace(-spread, spread, scenes)
    return [effect + offsets[s] + rng.normal(0, sd_seed, (seeds, 1)) + rng.normal(0, sd_view, (1, views))
            + rng.normal(0, sd_noise, (seeds, views)) for s in range(scenes)]


def test_bootstrap_interval_covers_a_known_effect_at_about_the_nominal_level():
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(200):
        lo, hi = S.bootstrap_ci(_simulated(rng, TRUTH), np.random.default_rng(i))
        covered += lo <= TRUTH <= hi
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_sign_flip_p_values_are_uniform_without_an_effect():
    # The test's null is "the variant changes nothing" (no scene effect either); scene effects that
    # only average to zero make it conservative, not uniform.
    rng = np.random.default_rng(2)
    p = []
    for i in range(200):
        values, weights, unit = S.units(_simulated(rng, 0.0, spread=0.0))
        p.append(S.sign_flip_p(values, weights, np.random.default_rng(i)))
    assert unit == "runs" and len(values) == 12
    assert scipy_stats.kstest(p, "uniform").pvalue > 0.01


def test_sign_flip_exact_and_monte_carlo_agree_and_holm_by_hand():
    x = np.array([0.3, 0.1, 0.2, 0.4])
    assert S.sign_flip_p(x, np.full(4, 0.25), None) == pytest.approx(2 / 16)  # only all-plus and all-minus
    x = np.random.default_rng(0).normal(0.05, 0.1, 14)
    exact = S.sign_flip_p(x, np.ones(14), None)
    approx = S.sign_flip_p(x, np.ones(14), np.random.default_rng(0), exact_max=10)
    assert approx == pytest.approx(exact, abs=0.01)
    # Holm: sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (running maximum), back in the given order.
    assert S.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert S.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_t_test_is_scipys_one_sample_t_for_one_scene_and_a_weighted_ls_contrast_when_pooled():
    rng = np.random.default_rng(3)
    scenes = _simulated(rng, TRUTH)
    run_means = np.nanmean(scenes[0], axis=1)
    lo, hi, p, df = S.t_test(scenes[:1])
    ref = scipy_stats.ttest_1samp(run_means, 0.0)
    assert (p, df) == (pytest.approx(ref.pvalue), 2)
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    # Pooled over the four scenes: run means = scene effects (fixed) + noise whose variance is a common
    # ratio times the scene's view-level noise, fitted by weighted least squares (weights 1 / view
    # noise); the first two scenes' mean is a contrast of the fit with the residual variance's 8 df.
    y = np.concatenate([np.nanmean(m, axis=1) for m in scenes])
    w = np.repeat([1 / S.view_noise(m) for m in scenes], 3)
    x = np.kron(np.eye(4), np.ones((3, 1)))
    xtwx = x.T @ (w[:, None] * x)
    beta = np.linalg.solve(xtwx, x.T @ (w * y))
    ratio = float(w @ (y - x @ beta) ** 2) / 8
    c = np.array([0.5, 0.5, 0, 0])
    se = np.sqrt(ratio * c @ np.linalg.inv(xtwx) @ c)
    lo, hi, p, df = S.t_test(scenes[:2], pool=S.pooled_variance(scenes))
    assert df == 8 and p == pytest.approx(2 * scipy_stats.t.sf(abs(c @ beta) / se, 8))
    assert (lo + hi) / 2 == pytest.approx(c @ beta) and hi - lo == pytest.approx(2 * se * scipy_stats.t.ppf(0.975, 8))


def test_view_noise_is_the_seed_by_view_interaction_mean_square():
    m = np.random.default_rng(4).normal(size=(3, 6))
    # Least squares with seed and view effects; its residual mean square has (3-1)(6-1) df.
    x = np.hstack([np.kron(np.eye(3), np.ones((6, 1))), np.kron(np.ones((3, 1)), np.eye(6))])
    resid = m.ravel() - x @ np.linalg.lstsq(x, m.ravel(), rcond=None)[0]
    assert S.view_noise(m) == pytest.approx(resid @ resid / 10)
    m[1, 2] = np.nan  # an incomplete view is left out, not imputed
    assert S.view_noise(m) == pytest.approx(S.view_noise(np.delete(m, 2, axis=1)))
    assert np.isnan(S.view_noise(m[:1]))  # one run: no view-by-run spread


def test_t_test_without_replication_variance_tests_nothing():
    # A variant identical to its reference, or a constant shift: no spread between runs to test against.
    for shift in (0.0, 0.5):
        lo, hi, p, df = S.t_test([np.full((3, 4), shift), np.full((3, 4), shift)])
        assert np.isnan(lo) and np.isnan(hi) and np.isnan(p) and df == 4
    # One seed and one view per scene: one unit per scene, df 0.
    lo, hi, p, df = S.t_test([np.array([[0.3]]), np.array([[0.1]])])
    assert np.isnan(p) and np.isnan(lo) and df == 0
    one_seed = [np.array([[0.1, 0.3, 0.2, np.nan]]), np.array([[0.0, 0.1, 0.2]])]
    lo, hi, p, df = S.t_test(one_seed)
    assert df == 2 + 2 and lo < 0.15 < hi  # with one seed the units are test views
    assert S.pooled_variance(one_seed).unit == "views" and not S.pooled_variance(one_seed).scaled
    with pytest.raises(BenchError, match="test 'wilcoxon': unknown; known tests: t, permutation"):
        S.compare(pd.DataFrame({"variant": ["full"], "dataset": ["d"], "scene": ["s"], "blur_type": ["motion"],
                                "seed": [0], "view": ["0"], "metric": ["psnr"], "value": [1.0]}), test="wilcoxon")


def test_holm_counts_only_finite_p_values():
    # The NaN rows are not tests: the two others are corrected as a family of 2, and NaN stays NaN.
    adjusted = S.holm([0.02, np.nan, 0.04, np.nan])
    assert adjusted[[0, 2]] == pytest.approx([0.04, 0.04]) and np.isnan(adjusted[[1, 3]]).all()
    assert np.isnan(S.holm([np.nan])).all() and len(S.holm([])) == 0


def test_pooled_t_test_covers_a_scene_ten_times_noisier_than_its_neighbours():
    # Scene noise levels 1, 1, 1, 10 (run shift and view noise alike): pooling the variance itself covers
    # the noisy scene's row in about 68% (a quarter of its variance); pooling the ratio to each scene's
    # view-level noise keeps that row, and the quiet ones, near 95%.
    rng = np.random.default_rng(5)
    scale = np.array([1.0, 1.0, 1.0, 10.0])[:, None, None]
    covered, rejected = np.zeros(4), np.zeros(4)
    reps = 300
    for _ in range(reps):
        scenes = list(scale * (rng.normal(0, 0.1, (4, 3, 1)) + rng.normal(0, 0.25, (4, 3, 16))))  # truth 0
        pool = S.pooled_variance(scenes)
        assert pool.scaled and pool.df == 8
        for s in range(4):
            lo, hi, p, _ = S.t_test(scenes[s:s + 1], pool)
            covered[s] += lo <= 0 <= hi
            rejected[s] += p < 0.05
    assert ((covered / reps >= 0.91) & (covered / reps <= 0.98)).all(), covered / reps
    assert (rejected / reps <= 0.09).all(), rejected / reps


def paired_sweep(root, effects: dict, seeds=(0, 1, 2), scenes=("a", "b", "c", "d"), dataset="toy", views=8):
    """A sweep whose per-view PSNR of each variant is full's plus ``effects[variant]`` plus small noise;
    a run-level draw common to the variants of one (scene, seed) stands for shared randomness."""
    rng = np.random.default_rng(0)
    sweep = root / "demo"
    base = {s: 25 + rng.normal(0, 1, views) for s in scenes}
    for seed in seeds:
        for s in scenes:
            common = base[s] + rng.normal(0, 0.3)
            for variant, effect in effects.items():
                own = 0.0 if variant == "full" else rng.normal(0, 0.05) + rng.normal(0, 0.1, views)
                psnr = common + effect + own
                write_run(sweep, variant, dataset, s, seed, {"psnr": float(psnr.mean())},
                          per_image={f"{i:05d}": {"psnr": float(v)} for i, v in enumerate(psnr)},
                          blur_type="defocus" if s.startswith("defocus") else "motion")
    write_manifest(sweep)
    return sweep


EFFECTS = {"full": 0.0, "no_sparsity": -1.0, "no_shortcut": 0.0}


def _row(stats, variant, group="toy", metric="psnr"):
    return stats[(stats.variant == variant) & (stats.group == group) & (stats.metric == metric)].iloc[0]


def test_a_variant_1_db_worse_is_significant_and_an_equal_one_is_not(tmp_path):
    built = summarise(paired_sweep(tmp_path, EFFECTS), save=False)
    stats = built.stats
    worse, equal = _row(stats, "no_sparsity"), _row(stats, "no_shortcut")
    assert worse.significant and worse.ci_low <= -1.0 <= worse.ci_high and worse.delta == pytest.approx(-1, abs=0.1)
    assert not equal.significant and equal.ci_low <= 0.0 <= equal.ci_high
    assert (worse.n_scenes, worse.n_seeds, worse.n_views, worse.unit) == (4, 3, 32, "runs")
    assert worse.reference == "full" and worse.p_holm >= worse.p_value
    # The table's scene average and the paired delta agree (complete pairs).
    summary = built.summary.set_index(["variant", "group", "metric"])["value"]
    assert worse.delta == pytest.approx(summary["no_sparsity", "toy", "psnr"] - summary["full", "toy", "psnr"])
    # The t-test (default) marks one scene of 3 seeds; the exact permutation test cannot (p >= 2 / 2^3).
    scene = _row(stats, "no_sparsity", "toy:a")
    assert (scene.n_scenes, scene.n_seeds, scene.n_views) == (1, 3, 8)
    assert scene.significant and scene.test == "t" and scene.df == 8  # noise pooled over the 4 scenes
    assert scene.ci_low <= -1.0 <= scene.ci_high
    perm = summarise(paired_sweep(tmp_path / "p", EFFECTS), save=False, test="permutation").stats
    scene = _row(perm, "no_sparsity", "toy:a")
    assert scene.p_value == pytest.approx(2 / 8) and not scene.significant and scene.test == "permutation"
    assert np.isnan(scene.df) and _row(perm, "no_sparsity").significant


def test_one_seed_falls_back_to_views_and_says_so(tmp_path):
    stats = summarise(paired_sweep(tmp_path, EFFECTS, seeds=(0,)), save=False).stats
    worse = _row(stats, "no_sparsity")
    assert worse.unit == "views" and worse.n_seeds == 1 and worse.significant
    for test in S.TESTS:
        assert "test views only" in S.interval_note(1, "Full", test)
        assert "another training run" in S.interval_note(1, "Full", test)
    assert "seeds and test views" in S.interval_note(3, "Full", "permutation")
    assert "t interval over training runs" in S.interval_note(3, "Full")


def test_report_writes_the_stats_csv_and_leads_with_the_ablation_deltas(tmp_path):
    sweep = paired_sweep(tmp_path, EFFECTS)
    build_all(sweep, reported=False)
    csv = pd.read_csv(sweep / "tables" / "ablation_stats.csv")
    assert list(csv.columns) == S.STATS_COLUMNS and set(csv.test) == {"t"} and set(csv.df) == {8}
    assert set(csv.group) == {"toy", "toy:a", "toy:b", "toy:c", "toy:d"} and set(csv.metric) == {"psnr"}
    md = (sweep / "tables" / "ablation.md").read_text()
    assert "\u0394 vs Full [95% CI]" in md and "\u00b1" in md and "3 seeds" in md
    worse = next(line for line in md.splitlines() if line.startswith("| w/o sparsity"))
    assert "\\*" in worse and "[-1." in worse
    equal = next(line for line in md.splitlines() if line.startswith("| w/o shortcut"))
    assert "\\*" not in equal
    assert "| Full |" in md and "reference" in md
    tex = (sweep / "tables" / "ablation.tex").read_text()
    assert "$\\Delta$ vs Full" in tex and "$\\pm$" in tex
    html = (sweep / "report.html").read_text()
    assert "How to read the ablation" in html and "95% t interval over training runs" in html
    build_all(sweep, reported=False, test="permutation")
    assert set(pd.read_csv(sweep / "tables" / "ablation_stats.csv").test) == {"permutation"}
    assert "bootstrap interval over seeds and test views" in (sweep / "report.html").read_text()
    assert "sign-flip" in (sweep / "tables" / "ablation.md").read_text()
    assert html.index('id="table-ablation"') < html.index('id="table-main"')


def test_ablation_latex_with_intervals_compiles(tmp_path):
    require_pdflatex()  # a skip here, a failure under CI
    built = summarise(paired_sweep(tmp_path, EFFECTS), save=False)
    path = T.write_tables(tmp_path / "tables", [T.ablation_table(built.summary, stats=built.stats)])[0]
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                      f"\\input{{{path}}}\n\\end{{document}}\n")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]


def test_bench_compare_prints_the_comparison(tmp_path, capsys):
    sweep = paired_sweep(tmp_path, EFFECTS)
    assert main(["compare", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("psnr: variant - full, paired by scene, seed and view (t test)")
    line = next(l for l in out.splitlines() if l.split()[:2] == ["no_sparsity", "toy"])
    assert "*" in line and line.split()[-4:] == ["8", "4", "3", "32"]
    assert "note: " in out and "t interval over training runs" in out
    assert main(["compare", str(sweep), "--test", "permutation"]) == 0
    out = capsys.readouterr().out
    assert "(permutation test)" in out and "seeds and test views" in out and "sign-flip" in out
    assert main(["compare", str(sweep), "--ref", "no_shortcut"]) == 0
    assert "psnr: variant - no_shortcut" in capsys.readouterr().out
    assert main(["compare", str(sweep), "--ref", "no_blur"]) == 2
    assert "no runs of the reference variant 'no_blur'" in capsys.readouterr().err
    assert main(["compare", str(sweep), "--metric", "nope"]) == 2
    assert main(["compare", str(sweep), "--metric", "lpips"]) == 2  # no values of it


def _manifest(sweep, scenes, dataset="synthetic", variants=("full", "no_sparsity"), seeds=(0,), sweep_file=None,
              **plan):
    """A manifest of these runs; ``plan``: the keys `bench sweep` records besides (e.g. reference)."""
    runs = {f"{v}-{dataset}-{s}-s{seed}": {"variant": v, "dataset": dataset, "scene": s, "seed": seed}
            for v in variants for s in scenes for seed in seeds}
    (sweep / "manifest.json").write_text(json.dumps({"runs": runs, "sweep_file": sweep_file, **plan}))


DEMO_SCENES = ["motion_0", "motion_1", "defocus_0", "defocus_1"]


def test_a_planned_subset_of_scenes_is_averaged_and_labelled(tmp_path):
    sweep = paired_sweep(tmp_path, {"full": 0.0, "no_sparsity": -1.0}, seeds=(0,), scenes=DEMO_SCENES,
                         dataset="synthetic")
    _manifest(sweep, DEMO_SCENES)
    built = summarise(sweep, save=False)
    row = built.summary[(built.summary.group == "synthetic") & (built.summary.metric == "psnr")].iloc[0]
    assert row.missing == "" and np.isfinite(row.value) and (row.n_planned, row.n_dataset) == (4, 5)
    assert T.group_label(built.summary, "synthetic") == "Synthetic, 4 of 5 scenes"
    assert T.group_label(built.summary, "synthetic/motion") == "Synthetic (motion)"  # both motion scenes
    per_scene = T.per_scene_tables(built.df, built.per_scene, built.summary, built.expected)[0]
    assert [c.header for c in per_scene.columns][:4] == DEMO_SCENES  # no mixed_0 column
    # A scene the sweep planned and did not get keeps the missing mark.
    _manifest(sweep, DEMO_SCENES + ["mixed_0"])
    built = summarise(sweep, save=False)
    row = built.summary[(built.summary.group == "synthetic") & (built.summary.metric == "psnr")].iloc[0]
    assert row.missing == "mixed_0" and np.isnan(row.value)
    assert T.group_label(built.summary, "synthetic") == "Synthetic"
    ab = T.ablation_table(built.summary, stats=built.stats)
    assert ab.notes[0][0] == "missing: mixed_0" and ab.notes[0][1] == "missing: mixed_0"
    # ... and the ablation figure draws the scenes it has, its average left blank
    from bench.report.figures import plot_ablation_deltas

    figs = plot_ablation_deltas(built.stats, built.summary, tmp_path / "figures")
    assert [p.name for p in figs.paths] == ["ablation_delta_synthetic.png", "ablation_delta_synthetic.pdf"]


def test_sweep_file_reference_is_validated_and_used(tmp_path, write_sweep):
    with pytest.raises(BenchError, match="reference 'no_unseen_views': not a variant of this sweep"):
        load_sweep(write_sweep(reference="no_unseen_views"))
    assert load_sweep(write_sweep("plain")).reference == "full"
    path = write_sweep(reference="no_blur")
    assert load_sweep(path).reference == "no_blur"
    sweep = paired_sweep(tmp_path, {"full": 0.0, "no_blur": -1.0}, seeds=(0,), scenes=["motion_0"], dataset="synthetic")
    _manifest(sweep, ["motion_0"], variants=("full", "no_blur"), sweep_file=str(path), reference="no_blur")
    stats = summarise(sweep, save=False).stats
    assert set(stats.reference) == {"no_blur"} and set(stats.variant) == {"full"}
    # The report reads the manifest only: one written before it recorded the reference means "full",
    # whatever its sweep file says.
    _manifest(sweep, ["motion_0"], variants=("full", "no_blur"), sweep_file=str(path))
    assert set(summarise(sweep, save=False).stats.reference) == {"full"}


def test_bench_compare_on_a_subset_of_scenes(tmp_path, capsys):
    """--scenes: the comparison rests on those scenes' runs only (fewer runs, other df), as if the
    sweep had planned just them; an unknown scene is a one-line error."""
    sweep = paired_sweep(tmp_path, EFFECTS)
    _manifest(sweep, ["a", "b", "c", "d"], dataset="toy", variants=tuple(EFFECTS), seeds=(0, 1, 2))
    assert main(["compare", str(sweep)]) == 0
    whole = next(l for l in capsys.readouterr().out.splitlines() if l.split()[:2] == ["no_sparsity", "toy"])
    assert main(["compare", str(sweep), "--scenes", "a,c"]) == 0
    out = capsys.readouterr().out
    part = next(l for l in out.splitlines() if l.split()[:2] == ["no_sparsity", "toy"])
    # columns df, scenes, seeds, n: df 4 over 2 scenes x 3 seeds, against df 8 over all 4
    assert whole.split()[-4:-1] == ["8", "4", "3"] and part.split()[-4:-1] == ["4", "2", "3"]
    assert main(["compare", str(sweep), "--scenes", "a,zz"]) == 2
    err = capsys.readouterr().err
    assert "--scenes zz: no finished runs" in err and len(err.strip().splitlines()) == 1


def _partial_sweep(root):
    """DEMO_SCENES x 3 seeds of full, no_sparsity (-1 dB) and no_blur (-1 dB); no_blur's runs of defocus_1
    never finished, and no_shortcut was planned and has no finished run at all."""
    sweep = paired_sweep(root, {"full": 0.0, "no_sparsity": -1.0, "no_blur": -1.0}, scenes=DEMO_SCENES,
                         dataset="synthetic")
    write_manifest(sweep, variants=("no_shortcut",))  # plans every run, defocus_1 of no_blur included
    for run in (sweep / "runs").glob("no_blur-synthetic-defocus_1-s*"):
        (run / "results.json").unlink()
    return sweep


def test_a_subset_of_the_planned_scenes_is_labelled_and_never_marked(tmp_path):
    stats = summarise(_partial_sweep(tmp_path), save=False).stats
    whole, part = _row(stats, "no_sparsity", "synthetic"), _row(stats, "no_blur", "synthetic")
    assert whole.significant is True and whole.missing == "" and (whole.n_scenes, whole.n_planned) == (4, 4)
    # -1 dB over 3 of the 4 scenes: the figure is the subset's, its flag blank whatever its p
    assert part.missing == "defocus_1" and (part.n_scenes, part.n_planned) == (3, 4)
    assert part.significant is None and part.p_holm < S.ALPHA and part.delta == pytest.approx(-1, abs=0.1)
    assert _row(stats, "no_blur", "synthetic/defocus").significant is None
    assert _row(stats, "no_blur", "synthetic/motion").significant is True  # both motion scenes ran
    assert _row(stats, "no_blur", "synthetic:defocus_0").significant is True


def test_ablation_stats_csv_labels_the_subset_and_lists_unfinished_variants(tmp_path):
    from bench.report.build import build_tables

    sweep = _partial_sweep(tmp_path)
    built = summarise(sweep, save=False)
    build_tables(sweep, built, reported=False)
    csv = pd.read_csv(sweep / "tables" / "ablation_stats.csv", keep_default_na=False)
    part = csv[(csv.variant == "no_blur") & (csv.group == "synthetic")].iloc[0]
    assert (part.missing, part.n_scenes, part.n_planned, part.significant) == ("defocus_1", 3, 4, "")
    whole = csv[(csv.variant == "no_sparsity") & (csv.group == "synthetic")].iloc[0]
    assert (whole.missing, whole.significant) == ("", "True")
    unfinished = csv[csv.variant == "no_shortcut"]
    assert set(unfinished.group) == {"synthetic", "synthetic/motion", "synthetic/defocus"}
    assert (unfinished.n_scenes == 0).all() and (unfinished.delta == "").all()
    assert sorted(unfinished.set_index("group").missing["synthetic"].split(", ")) == sorted(DEMO_SCENES)
    assert "planned variants with no finished run: no_shortcut (absent from the tables and figures)" in built.notes


def test_bench_compare_says_subset_and_unfinished_variants(tmp_path, capsys):
    sweep = _partial_sweep(tmp_path)
    assert main(["compare", str(sweep)]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.split()[:2] == ["no_blur", "synthetic"])
    assert "*" not in line and "3 of 4" in line
    assert "*" in next(l for l in out.splitlines() if l.split()[:2] == ["no_sparsity", "synthetic"])
    assert ("no_blur synthetic: subset: 3 of 4 scenes, missing defocus_1; not marked significant: the group's "
            "figure needs every planned scene") in out
    assert "no_shortcut: planned, no finished run; not compared" in out
    # Asked for: the subset is the user's, labelled in the header, complete over what was asked
    assert main(["compare", str(sweep), "--scenes", "motion_0,motion_1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("; scenes motion_0, motion_1 only (asked with --scenes)")
    assert "*" in next(l for l in out.splitlines() if l.split()[:2] == ["no_blur", "synthetic"])
    assert "subset:" not in out


def test_a_reference_missing_a_planned_scene_blanks_every_delta_of_the_group(tmp_path):
    """full (the reference) lacks scene d: no_sparsity's own average stands, its Δ is over 3 of 4 scenes,
    so the ablation table blanks it like an average ("missing: d") and the statistics label it."""
    sweep = paired_sweep(tmp_path, EFFECTS)
    for run in (sweep / "runs").glob("full-toy-d-s*"):
        (run / "results.json").unlink()
    built = summarise(sweep, save=False)
    row = _row(built.stats, "no_sparsity")
    assert (row.missing, row.significant) == ("d", None)
    ab = T.ablation_table(built.summary, stats=built.stats)
    r = ab.rows.index("w/o sparsity")
    assert np.isfinite(ab.values[r, 0]) and np.isnan(ab.values[r, 1]) and ab.notes[r][1] == "missing: d"
