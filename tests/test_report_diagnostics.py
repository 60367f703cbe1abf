"""Region metrics in the report: results.csv, per-image rows of training views, ``bench compare
--metric psnr_unseen`` / ``false_blur`` and the diagnostics table (bench/report/tables.py), on fake runs."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.metrics import regions as R
from report_fakes import write_manifest, write_run

VIEWS = ("00000", "00001", "00002")
# variant -> (whole-image PSNR, unseen PSNR, sharp PSNR, false blur %); the reference is "full"
EFFECTS = {"full": (25.0, 20.0, 27.0, 5.0), "no_unseen_views": (24.9, 18.0, 27.0, 5.0),
           "no_sparsity": (25.0, 20.0, 26.5, 9.0), "no_blur": (23.0, 20.0, 25.0, None)}


def _view_values(variant: str, seed: int, k: int) -> dict:
    """Per-view values: the variant's effect plus a small view and seed offset shared by all variants, and
    a seed jitter of the variants against the reference that averages to 0 over seeds 0-2 (training
    noise: without it the paired t-test has no spread to test against)."""
    psnr, unseen, sharp, _ = EFFECTS[variant]
    off = 0.1 * k + 0.05 * seed + (0.02 * (seed - 1) if variant != "full" else 0.0)
    return {"psnr": psnr + off, "psnr_unseen": None if k == 1 else unseen + off, "psnr_sharp": sharp + off,
            "psnr_emerging": None, "psnr_blurred": None}


def _add_regions(run, variant: str, seed: int) -> None:
    """Put region metrics into a fake run's results.json, in the layout evaluate_run writes."""
    doc = json.loads((run / "results.json").read_text())
    m = doc["metrics"]
    m["per_image"] = {v: {**m["per_image"].get(v, {}), **_view_values(variant, seed, k)} for k, v in enumerate(VIEWS)}
    share = EFFECTS[variant][3]
    train = {} if share is None else {
        name: {"false_blur": share + 0.5 * k + seed, "pixels": {"sharp": 100}, "missing": {}}
        for k, name in enumerate(("00000", "00002"))}
    m["regions"] = {"thresholds_px": R.thresholds(), "per_train_view": train,
                    "per_image": {v: {"pixels": {"unseen": 0 if k == 1 else 40}, "missing": {}}
                                  for k, v in enumerate(VIEWS)}}
    for metric in ("psnr", "psnr_unseen", "psnr_sharp"):
        m["aggregate"][metric] = float(np.mean([x[metric] for x in m["per_image"].values() if x[metric] is not None]))
    shares = [t["false_blur"] for t in train.values()]
    m["aggregate"].update({"psnr_emerging": None, "psnr_blurred": None,
                           "false_blur": float(np.mean(shares)) if shares else None})
    m["missing"].update({"psnr_emerging": R.NO_VIEW_SCORED, "psnr_blurred": R.NO_VIEW_SCORED})
    if share is None:
        m["missing"]["false_blur"] = "no blur model (blur.enabled=false): it predicts no kernels"
    (run / "results.json").write_text(json.dumps(doc))


@pytest.fixture
def sweep(tmp_path):
    sweep = tmp_path / "diag"
    for variant in EFFECTS:
        for seed in (0, 1, 2):
            run = write_run(sweep, variant, "synthetic_toy", "a", seed, {"psnr": 0.0}, blur_type="defocus")
            _add_regions(run, variant, seed)
    # a real-data run of the same sweep: no region metrics at all
    for variant in EFFECTS:
        run = write_run(sweep, variant, "stereo_toy", "r", 0, {"psnr": EFFECTS[variant][0]}, protocol="dyblurf")
        doc = json.loads((run / "results.json").read_text())
        doc["metrics"]["aggregate"].update(dict.fromkeys(R.REGION_METRICS))
        doc["metrics"]["missing"].update(dict.fromkeys(R.REGION_METRICS, R.NOT_SYNTHETIC))
        (run / "results.json").write_text(json.dumps(doc))
    write_manifest(sweep)
    return sweep


def test_region_metrics_reach_results_csv_and_per_image_rows(sweep):
    from bench.report.collect import collect, collect_per_image

    assert main(["collect", str(sweep)]) == 0
    csv = pd.read_csv(sweep / "results.csv")
    unseen = csv[(csv.metric == "psnr_unseen") & (csv.variant == "full")]
    assert sorted(unseen.dataset.unique()) == ["stereo_toy", "synthetic_toy"]
    synth = unseen[unseen.dataset == "synthetic_toy"].sort_values("seed")
    assert synth.value.tolist() == pytest.approx([20.1, 20.15, 20.2])  # views 0 and 2: the empty view left out
    real = unseen[unseen.dataset == "stereo_toy"]
    assert real.value.isna().all() and (real.missing_reason == R.NOT_SYNTHETIC).all()
    fb = collect(sweep)
    no_blur = fb[(fb.metric == "false_blur") & (fb.variant == "no_blur") & (fb.dataset == "synthetic_toy")]
    assert len(no_blur) == 3 and no_blur.missing_reason.str.startswith("no blur model").all()
    per = collect_per_image(sweep)
    train = per[per.metric == "false_blur"]
    assert set(train.view) == {"train/00000", "train/00002"}  # training views, never a test view's name
    assert not (per.view.str.startswith("train/") & (per.metric != "false_blur")).any()


def test_compare_metric_psnr_unseen_and_false_blur(sweep, capsys):
    assert main(["compare", str(sweep), "--metric", "psnr_unseen"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("psnr_unseen: variant - full")
    row = next(line for line in out.splitlines() if line.split()[:2] == ["no_unseen_views", "synthetic_toy"])
    assert "-2.00" in row and "stereo_toy" not in out  # paired over the views with unseen pixels; none on real data
    assert main(["compare", str(sweep), "--metric", "false_blur"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("no_sparsity"))
    assert "+4.00" in row and "no_blur " not in out  # no blur model: no false-blur values to pair


def _add_scene_b(sweep) -> None:
    """A second synthetic scene on which only full and no_sparsity ran (3 seeds each)."""
    for variant in ("full", "no_sparsity"):
        for seed in (0, 1, 2):
            run = write_run(sweep, variant, "synthetic_toy", "b", seed, {"psnr": 0.0}, blur_type="motion")
            _add_regions(run, variant, seed)
    write_manifest(sweep)  # the sweep now plans scene b too


def test_diagnostics_table_on_fake_results(sweep):
    """One row per (component, region metric), scored where the variant ran: no_unseen_views on scene a
    alone (that scene's row), no_sparsity on scenes a and b (the dataset row); never a blur-type group."""
    from bench.report.build import build_tables, summarise
    from bench.report.html import write_report
    from bench.report.tables import diagnostics_table, to_csv, to_latex, to_markdown

    _add_scene_b(sweep)
    built = summarise(sweep, save=False)
    table = diagnostics_table(built.stats)
    assert table.rows == ["w/o unseen views: unseen PSNR \u2191 (synthetic_toy / a)",
                          "w/o sparsity: sharp PSNR \u2191 (synthetic_toy, mean of a, b)",
                          "w/o sparsity: false blur (%) \u2193 (synthetic_toy, mean of a, b)"]  # no blurred pixel
    heads = [(c.group, c.header) for c in table.columns]
    assert heads == [("\u0394 vs Full", "whole image PSNR [95% CI]"), ("\u0394 vs Full", "own region [95% CI]"),
                     ("runs", "scenes"), ("runs", "seeds"), ("runs", "df")]
    values = dict(zip(table.rows, table.values.tolist()))
    unseen, sharp, false_blur = (values[r] for r in table.rows)
    # whole image, own region, scenes, seeds, df (seeds - 1 summed over the scenes the variant was paired on)
    assert unseen == pytest.approx([-0.1, -2.0, 1, 3, 2])
    assert sharp == pytest.approx([0.0, -0.5, 2, 3, 4]) and false_blur[:2] == pytest.approx([0.0, 4.0])
    assert "[" in table.marks[0][0] and "[" in table.marks[0][1] and "(" not in table.marks[0][1]
    stats_a = built.stats[(built.stats.group == "synthetic_toy:a") & (built.stats.variant == "no_unseen_views")]
    assert float(stats_a[stats_a.metric == "psnr_unseen"].delta.iloc[0]) == pytest.approx(unseen[1])
    assert "Own region" in " ".join(table.footnotes) and "df: degrees of freedom" in " ".join(table.footnotes)
    md, tex, csv = to_markdown(table), to_latex(table), to_csv(table)
    assert "w/o sparsity: false blur" in md and "(synthetic\\_toy / a)" in tex and table.name == "diagnostics"
    assert csv.splitlines()[0].startswith("row,reported,\u0394 vs Full whole image PSNR")

    build_tables(sweep, built)
    assert (sweep / "tables" / "diagnostics.md").is_file() and (sweep / "tables" / "diagnostics.tex").is_file()
    assert [t.name for t in built.tables][:2] == ["ablation", "diagnostics"]
    assert any(t.name == "per_scene_synthetic_toy_psnr_unseen" for t in built.tables)
    assert not any(t.name == "per_scene_stereo_toy_psnr_unseen" for t in built.tables)
    page = write_report(sweep / "report.html", sweep, built.df, built.tables, [], []).read_text()
    assert 'id="table-diagnostics"' in page and "w/o sparsity: false blur (%)" in page


def test_diagnostics_region_paired_in_fewer_scenes_says_so(sweep):
    """A region present in one of the variant's two scenes: its delta carries "(1 of 2 scenes, df ...)"."""
    from bench.report.build import summarise
    from bench.report.tables import diagnostics_table

    _add_scene_b(sweep)
    for run in (sweep / "runs").glob("*-synthetic_toy-b-s*"):
        doc = json.loads((run / "results.json").read_text())
        for values in doc["metrics"]["per_image"].values():
            values["psnr_sharp"] = None  # scene b: no sharp pixel
        (run / "results.json").write_text(json.dumps(doc))
    table = diagnostics_table(summarise(sweep, save=False).stats)
    r = table.rows.index("w/o sparsity: sharp PSNR \u2191 (synthetic_toy, mean of a, b)")
    assert table.values[r, 1] == pytest.approx(-0.5) and "(1 of 2 scenes, df " in table.marks[r][1]


def test_no_diagnostics_table_without_region_metrics(tmp_path):
    from bench.report.build import make_tables, summarise
    from bench.report.tables import diagnostics_table

    sweep = tmp_path / "real"
    for variant, (psnr, *_) in EFFECTS.items():
        for seed in (0, 1):
            write_run(sweep, variant, "stereo_toy", "r", seed, {"psnr": psnr + 0.1 * seed}, protocol="dyblurf")
    built = summarise(sweep, save=False)
    assert diagnostics_table(built.stats) is None and diagnostics_table(None) is None
    assert "diagnostics" not in [t.name for t in make_tables(built, reported=False)]


def test_variant_colours_are_distinct_from_the_spares():
    """A variant without a fixed colour takes a spare: no spare may repeat a fixed colour."""
    from bench.report import labels

    fixed, spare = list(labels._COLOURS.values()), labels._SPARE
    assert len(set(fixed)) == len(fixed) and len(set(spare)) == len(spare) and not set(fixed) & set(spare)
