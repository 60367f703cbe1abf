"""Collection and tables on hand-made sweeps: schema, averaging, missing scenes, ranking with ties,
reported rows, and LaTeX that compiles."""

import subprocess

import numpy as np
import pandas as pd
import pytest

from bench.metrics.registry import METRICS

from bench.report.collect import COLUMNS, collect, dataset_summary, save_collected, seed_summary
from bench.report import tables as T
from report_fakes import make_sweep, require_pdflatex

VALUES = {  # seed-mean PSNR 30.000 and 30.001 both display 30.00 (tie); no_shortcut 29.50; no_blur 29.00
    "full": {"a": {"psnr": 29.995, "ssim": 0.9, "lpips": 0.100}, "b": {"psnr": 29.995, "ssim": 0.9, "lpips": 0.100}},
    "no_sparsity": {"a": {"psnr": 29.996, "ssim": 0.8, "lpips": 0.1004}, "b": {"psnr": 29.996, "ssim": 0.8, "lpips": 0.1004}},
    "no_shortcut": {"a": {"psnr": 29.495, "ssim": 0.85, "lpips": 0.2}, "b": {"psnr": 29.495, "ssim": 0.85, "lpips": 0.2}},
    "no_blur": {"a": {"psnr": 29.0, "ssim": 0.7, "lpips": 0.3}, "b": {"psnr": 29.0, "ssim": 0.7, "lpips": 0.3}},
}


@pytest.fixture
def sweep(tmp_path):
    return make_sweep(tmp_path, VALUES, seeds=(0, 1))


def _summary(df, expected=None):
    return dataset_summary(seed_summary(df), expected or {"toy": ["a", "b"]})


def test_collect_schema_and_values(sweep):
    df = collect(sweep)
    assert list(df.columns) == COLUMNS
    assert len(df) == 4 * 2 * 2 * 7   # variants x scenes x seeds x metrics
    row = df[(df.variant == "full") & (df.scene == "a") & (df.seed == 1) & (df.metric == "psnr")].iloc[0]
    assert row.value == pytest.approx(30.005) and row.sweep == "demo" and row.dataset == "toy"
    assert row.git_commit == "deadbeef" and row.slurm_job_id == "42" and row.peak_memory_bytes == 2048
    assert row.torch == "2.14.1" and row.wall_time_s == 13.0 and row.protocol == "synthetic"
    dyn = df[(df.metric == "psnr_dyn")]
    assert dyn.value.isna().all() and (dyn.missing_reason == "not computed in this fixture").all()
    paths = save_collected(sweep, df)
    back = pd.read_parquet(paths[0])
    assert len(back) == len(df) and list(back.columns) == COLUMNS
    assert pd.read_csv(paths[1]).shape == df.shape


def test_seed_mean_std_and_scene_average(sweep):
    per_scene = seed_summary(collect(sweep))
    r = per_scene[(per_scene.variant == "full") & (per_scene.scene == "a") & (per_scene.metric == "psnr")].iloc[0]
    assert r["mean"] == pytest.approx(30.0) and r["std"] == pytest.approx(np.std([29.995, 30.005], ddof=1))
    assert r["n_seeds"] == 2
    summary = _summary(collect(sweep))
    s = summary[(summary.variant == "no_blur") & (summary.metric == "psnr")].iloc[0]
    assert s.value == pytest.approx(29.005) and s.missing == "" and s.n_scenes == 2


def test_missing_scene_blanks_dataset_average(sweep):
    df = collect(sweep)
    summary = _summary(df, {"toy": ["a", "b", "c", "d"]})
    assert summary.value.isna().all()
    assert set(summary.loc[summary.metric == "psnr", "missing"]) == {"c, d"}
    table = T.main_table(df, summary)
    assert np.isnan(table.values).all()
    md = T.to_markdown(table)
    assert "missing: c, d" in md
    tex = T.to_latex(table)
    assert "--" in tex and "\\rankfirst{" not in tex.split("\\begin{table}")[1]


def test_ranking_on_displayed_values_with_ties(sweep):
    df = collect(sweep)
    table = T.main_table(df, _summary(df))
    psnr_col = [c.metric for c in table.columns].index("psnr")
    lpips_col = [c.metric for c in table.columns].index("lpips")
    ranks = T.rank_table(table)
    by_row = dict(zip(table.rows, ranks[:, psnr_col]))
    assert by_row == {"full": 1, "no_sparsity": 1, "no_shortcut": 3, "no_blur": 4}
    # LPIPS: lower is better; 0.1000 and 0.1004 both display 0.100 and tie.
    assert dict(zip(table.rows, ranks[:, lpips_col])) == {"full": 1, "no_sparsity": 1, "no_shortcut": 3,
                                                          "no_blur": 4}
    tex = T.to_latex(table)
    for line, want in (("full &", r"\rankfirst{30.00}"), ("no\\_sparsity &", r"\rankfirst{30.00}"),
                       ("no\\_shortcut &", r"\rankthird{29.50}")):
        row = next(l for l in tex.splitlines() if l.startswith(line))
        assert want in row, row
    blur_row = next(l for l in tex.splitlines() if l.startswith("no\\_blur &"))
    assert "\\rank" not in blur_row.split("&")[1]
    assert r"\providecommand{\rankfirst}" in tex and r"\toprule" in tex and r"$\downarrow$" in tex


def test_ties_within_rounding_share_rank():
    cols = [T.Column("D", "PSNR", "psnr")]
    vals = np.array([[30.004], [29.996], [29.0], [28.0]])
    t = T.Table("t", "t", list("wxyz"), cols, vals, [[""]] * 4, [[""]] * 4, [False] * 4)
    assert list(T.rank_table(t)[:, 0]) == [1, 1, 3, 4]
    t.values = np.array([[30.0], [29.0], [29.0], [28.0]])
    assert list(T.rank_table(t)[:, 0]) == [1, 2, 2, 4]
    assert "\\ranksecond{29.00}" in T.to_latex(t) and "28.00" in T.to_latex(t)


def test_reported_rows_not_ranked_unless_asked(tmp_path):
    reported = T.load_reported()
    assert {"main", "ablation"} <= set(reported["table"])
    assert reported[(reported.row == "DyDeblur (paper)") & (reported.dataset == "d2rf")
                    & (reported.metric == "psnr")].value.iloc[0] == 29.39
    sweep = make_sweep(tmp_path, {"full": {"a": {"psnr": 20.0, "ssim": 0.5, "lpips": 0.4}}}, dataset="d2rf",
                       protocol="d2rf")
    df = collect(sweep)
    summary = dataset_summary(seed_summary(df), {"d2rf": ["a"]})
    table = T.main_table(df, summary, reported)
    assert "DyDeblur (paper) (reported)" in table.rows and table.reported[0] is False
    ranks = T.rank_table(table)
    assert ranks[0, 0] == 1 and (ranks[1:] == 0).all()
    ranked = T.rank_table(table, rank_reported=True)
    assert ranked[table.rows.index("DyDeblur (paper) (reported)"), 0] == 1 and ranked[0, 0] > 3
    ssim_col = [c.metric for c in table.columns].index("ssim")
    assert table.marks[table.rows.index("D2RF (reported)")][ssim_col] == "\u2020"
    # the paper's LPIPS came from its script's unscaled inputs: shown in the LPIPS column, marked
    lpips_col = [c.metric for c in table.columns].index("lpips")
    paper = table.rows.index("DyDeblur (paper) (reported)")
    assert table.values[paper, lpips_col] == pytest.approx(0.078) and table.marks[paper][lpips_col] == "\u2020"
    assert "LPIPS [0,1] = LPIPS AlexNet v0.1, [0, 1] images fed unscaled" in " ".join(table.footnotes)
    assert "LPIPS: LPIPS AlexNet v0.1, images scaled to [-1, 1]" in " ".join(table.footnotes)
    tex = T.to_latex(table)
    assert tex.count("\\midrule") == 2 and "$^\\dagger$" in tex
    ab = T.ablation_table(summary, reported)
    assert ab.rows[0] == "Full" and "w/o DGD (reported)" in ab.rows


def test_ablation_shape_and_per_scene(sweep):
    df = collect(sweep)
    per_scene = seed_summary(df)
    summary = dataset_summary(per_scene, {"toy": ["a", "b"]})
    ab = T.ablation_table(summary)
    assert ab.rows == ["w/o sparsity", "w/o shortcut", "w/o blur model", "Full"]
    assert [c.metric for c in ab.columns] == ["psnr"]
    tables = T.per_scene_tables(df, per_scene, summary)
    names = [t.name for t in tables]
    assert "per_scene_toy_psnr" in names and "per_scene_toy_psnr_dyn" not in names
    t = tables[names.index("per_scene_toy_psnr")]
    assert [c.header for c in t.columns] == ["a", "b", "Avg."]


def test_latex_compiles(sweep, tmp_path):
    pdflatex = require_pdflatex()  # a skip here, a failure under CI
    df = collect(sweep)
    per_scene = seed_summary(df)
    summary = dataset_summary(per_scene, {"toy": ["a", "b", "c"]})  # blank cells too
    tables = [T.main_table(df, summary, T.load_reported()), T.ablation_table(summary, T.load_reported())]
    tables += T.per_scene_tables(df, per_scene, summary)
    paths = T.write_tables(tmp_path / "tables", tables)
    tex_files = [p for p in paths if p.suffix == ".tex"]
    body = "\n".join(f"\\input{{{p}}}\n\\clearpage" for p in tex_files)
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n"
                   "\\begin{document}\n" + body + "\n\\end{document}\n")
    out = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_blur_type_groups_average_complete_subsets(tmp_path):
    vals = {"full": {"motion_0": {"psnr": 20.0}, "motion_1": {"psnr": 22.0}, "defocus_0": {"psnr": 30.0}}}
    df = collect(make_sweep(tmp_path, vals))
    expected = {"toy": ["motion_0", "motion_1", "defocus_0", ("defocus_1", "defocus")]}
    summary = dataset_summary(seed_summary(df), expected)
    psnr = summary[summary.metric == "psnr"].set_index("group")
    assert np.isnan(psnr.loc["toy", "value"]) and psnr.loc["toy", "missing"] == "defocus_1"
    assert psnr.loc["toy/motion", "value"] == pytest.approx(21.0) and psnr.loc["toy/motion", "missing"] == ""
    assert psnr.loc["toy/defocus", "missing"] == "defocus_1"
    table = T.main_table(df, summary)
    assert [c.group for c in table.columns][::3] == ["toy", "toy (motion)", "toy (defocus)"]
    per = T.per_scene_tables(df, seed_summary(df), summary)[0]
    assert [c.header for c in per.columns][-3:] == ["Avg.", "Avg. motion", "Avg. defocus"]
    assert per.values[0, -2] == pytest.approx(21.0) and np.isnan(per.values[0, -1])


def test_metric_not_computed_is_na_with_reason(tmp_path):
    vals = {"full": {"a": {"psnr": 20.0, "ssim": 0.5}}, "no_blur": {"a": {"psnr": 19.0, "ssim": 0.4}}}
    df = collect(make_sweep(tmp_path, vals))
    summary = dataset_summary(seed_summary(df), {"toy": ["a"]})
    table = T.main_table(df, summary)
    c = [col.metric for col in table.columns].index("lpips")
    assert np.isnan(table.values[:, c]).all() and table.notes[0][c] == "n/a"
    assert table.footnotes == ["n/a LPIPS: not computed in this fixture",
                               "SSIM: scikit-image SSIM, 7x7 uniform window, data range 1.",
                               f"LPIPS: {METRICS['lpips'].convention}."]
    assert "| full | **20.00** | **0.500** | n/a |" in T.to_markdown(table)


def test_collect_keeps_only_runs_of_the_current_manifest(sweep):
    import json

    run_ids = sorted(p.name for p in (sweep / "runs").iterdir())
    kept = [r for r in run_ids if "-a-" in r]
    assert 0 < len(kept) < len(run_ids)
    (sweep / "manifest.json").write_text(json.dumps({"runs": {r: {} for r in kept}}))
    df = collect(sweep)
    assert set(df.run_id) == set(kept)


def _add_metric(sweep, metric, value):
    """Give every run of a hand-made sweep one more aggregate metric (as a newer evaluation would)."""
    import json

    for path in (sweep / "runs").glob("*/results.json"):
        doc = json.loads(path.read_text())
        doc["metrics"]["aggregate"][metric] = value
        path.write_text(json.dumps(doc))


def test_peer_ssim_column_names_its_convention_and_daggers_other_reported_variants(tmp_path):
    sweep = make_sweep(tmp_path, {"full": {"seesaw": {"psnr": 25.0, "ssim": 0.70, "lpips": 0.1}}},
                       dataset="stereo_blur_d4dgs", protocol="deblur4dgs")
    _add_metric(sweep, "ssim_r2", 0.76)
    df = collect(sweep)
    summary = dataset_summary(seed_summary(df), {"stereo_blur_d4dgs": ["seesaw"]})
    table = T.main_table(df, summary, T.load_reported())
    c = [col.metric for col in table.columns].index("ssim_r2")
    assert table.values[0, c] == pytest.approx(0.76) and table.columns[c].header.startswith("SSIM (range 2)")
    paper = table.rows.index("DyDeblur (paper) (reported)")
    assert table.values[paper, c] == pytest.approx(0.876) and table.marks[paper][c] == "\u2020"
    notes = " ".join(table.footnotes)
    assert "SSIM (range 2): scikit-image SSIM, 7x7 uniform window, data range 2" in notes
    assert "\u2020 reported in the source's convention, not this column's: " in notes
    # the paper's SSIM is one of two conventions (results/published/README.md): daggered as unsettled
    assert "\u2020 reported as one of ssim, ssim_3dgs; which one is not established" in notes


def test_results_without_the_headline_metric_still_load(tmp_path):
    """Results evaluated before ssim_r2 existed: the table says so instead of inventing a value."""
    sweep = make_sweep(tmp_path, {"full": {"seesaw": {"psnr": 25.0, "ssim": 0.70}}}, dataset="stereo_blur",
                       protocol="dyblurf")
    df = collect(sweep)
    summary = dataset_summary(seed_summary(df), {"stereo_blur": ["seesaw"]})
    table = T.main_table(df, summary)
    c = [col.metric for col in table.columns].index("ssim_r2")
    assert np.isnan(table.values[0, c]) and table.notes[0][c] == T.NOT_RECORDED
    assert table.values[0, 0] == pytest.approx(25.0)


def test_blur_table_averages_views_per_run_then_seeds():
    """Each run's view mean counts once, whatever its view count; the cell shows the seed spread."""
    rows = [("full", 0, "v1", 0.2), ("full", 0, "v2", 0.4), ("full", 1, "v1", 0.9),
            ("defocus_kernel", 0, "v1", 0.7)]
    stats = pd.DataFrame([{"variant": v, "dataset": "synthetic", "scene": "defocus_0", "seed": s, "view": w,
                           "rms_mae_px": 1.0, "rms_corr": r, "mask_iou": 0.5} for v, s, w, r in rows])
    table = T.blur_table(stats)
    c = [col.metric for col in table.columns].index("rms_corr")
    full, dk = table.rows.index("full"), table.rows.index("defocus_kernel")
    assert table.values[full, c] == pytest.approx((0.3 + 0.9) / 2)
    assert table.marks[full][c] == f" \u00b1 {np.std([0.3, 0.9], ddof=1):.3f}"
    assert table.values[dk, c] == pytest.approx(0.7) and table.marks[dk][c] == ""
    assert any("2 seeds" in note for note in table.footnotes)


def _with_speed(sweep, run_id: str, fps: float, device: str = "AMD EPYC 7B13", state: str = "last",
                backend: str = "compiled CPU kernels (avx512)"):
    """Give a run of a hand-made sweep results.json's speed block (bench.method.speed)."""
    import json

    path = sweep / "runs" / run_id / "results.json"
    doc = json.loads(path.read_text())
    doc["speed"] = {"fps": fps, "device": device, "backend": backend, "threads": 2,
                    "repeats": 3, "warmup": 1, "state": state, "views": 5, "resolution": [48, 32],
                    "num_gaussians": 700}
    path.write_text(json.dumps(doc))


def test_fps_column_names_its_device_and_shows_n_a_without_a_speed_record(sweep):
    from bench.report.collect import run_speeds

    before = collect(sweep)
    assert _no_fps(T.main_table(before, _summary(before)))  # no run has a speed record: no column
    for scene, seed, fps in (("a", 0, 10.0), ("a", 1, 14.0), ("b", 0, 20.0), ("b", 1, 30.0)):
        _with_speed(sweep, f"full-toy-{scene}-s{seed}", fps)
    _with_speed(sweep, "no_blur-toy-a-s0", 50.0)
    _with_speed(sweep, "no_shortcut-toy-a-s0", 99.0, state="best_test")  # not the state the `last` rows show
    df = collect(sweep)
    speeds = run_speeds(df)
    assert len(speeds) == 4 * 2 * 2 and speeds.fps.notna().sum() == 5
    table = T.main_table(df, _summary(df))
    c = [col.header for col in table.columns].index("FPS \u2191")
    rows = dict(zip(table.rows, range(len(table.rows))))
    assert table.values[rows["full"], c] == pytest.approx(18.5)  # mean over the 4 runs
    assert table.values[rows["no_blur"], c] == 50.0 and table.marks[rows["no_blur"]][c] == " (1 of 4 runs)"
    assert np.isnan(table.values[rows["no_shortcut"], c]) and table.notes[rows["no_shortcut"]][c] == "n/a"
    assert T.rank_table(table)[rows["no_blur"], c] == 1  # one device: ranked, higher is better
    note = next(n for n in table.footnotes if n.startswith("FPS"))
    assert note.startswith("FPS (CPU: AMD EPYC 7B13, compiled CPU kernels (avx512), 2 threads): test views rendered")
    md = T.to_markdown(table)
    assert "FPS \u2191" in md and "n/a" in md and "FPS (CPU: AMD EPYC 7B13" in md
    assert "FPS" in T.to_latex(table)

    per = [t for t in T.per_scene_tables(df, seed_summary(df), _summary(df)) if t.name == "per_scene_toy_fps"]
    (per,) = per
    assert [col.header for col in per.columns] == ["a", "b", "Avg."]
    r = per.rows.index("full")
    assert list(per.values[r]) == pytest.approx([12.0, 25.0, 18.5])
    assert per.notes[per.rows.index("no_shortcut")][0] == "n/a"

    _with_speed(sweep, "no_blur-toy-b-s0", 5.0, device="NVIDIA H100", backend="gsplat")
    df = collect(sweep)
    table = T.main_table(df, _summary(df))
    assert not T.rank_table(table)[:, c].any()  # two devices: not ranked
    note = next(n for n in table.footnotes if n.startswith("FPS"))
    assert "measured on 2 devices" in note and "; GPU: NVIDIA H100, gsplat." in note and "AMD EPYC 7B13" in note


def _no_fps(table) -> bool:
    """No FPS column and no FPS footnote."""
    return all(col.metric != "fps" for col in table.columns) and not any(n.startswith("FPS") for n in table.footnotes)
