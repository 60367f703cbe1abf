"""Figures, the HTML report and build_all on hand-made sweeps (renders, curves, kernels), plus
``evaluate_run`` / ``bench eval`` on a hand-made scene."""

import json
import re

import numpy as np
import pytest

from bench import rundir
from bench.cli import main
from report_fakes import fake_registry, make_sweep, tiny_scene, write_manifest, write_png

VALUES = {v: {s: {"psnr": p + k, "ssim": 0.8, "ssim_gauss": 0.7, "lpips": 0.2, "psnr_dyn": p - 3 + k}
              for k, s in enumerate(("a", "b"))}
          for v, p in (("full", 25.0), ("no_sparsity", 24.0), ("no_blur", 23.0))}


@pytest.fixture
def scenes():
    return {("toy", "a"): tiny_scene("toy", "a"), ("toy", "b"): tiny_scene("toy", "b")}


@pytest.fixture
def sweep(tmp_path, scenes, monkeypatch):
    fake_registry(monkeypatch, scenes)
    sweep = make_sweep(tmp_path, VALUES, seeds=(0,))
    K = 5
    for run in sorted((sweep / "runs").iterdir()):
        variant, _, scene = run.name.split("-")[:3]
        sc = scenes[("toy", scene)]
        (run / "config.yaml").write_text(f"method: {variant}\ndataset: toy\nscene: {scene}\nseed: 0\n")
        for i, name in enumerate(sc.test.names):
            write_png(run / rundir.TEST_RENDERS / f"{name}.png", sc.test.images[i].numpy() * 0.9)
        steps = np.arange(1, 6) * 10
        lines = ["step,loss,rec,train_psnr,elapsed_s"] + [f"{s},{1 / s},{0.5 / s},{20 + s / 10},{s}" for s in steps]
        (run / rundir.CURVES).write_text("\n".join(lines) + "\n")
        if variant != "no_blur":  # no kernels without a blur module
            kern = np.zeros((16, 24, K, K), np.float32)
            kern[..., 2, :] = 1 / K  # horizontal line of length 5: RMS radius sqrt(2)
            (run / rundir.TRAIN_RENDERS).mkdir(parents=True)
            np.savez(run / rundir.TRAIN_RENDERS / "00001_kernels.npz", kernels=kern,
                     mask=np.full((16, 24), 0.8, np.float32))
    return sweep


def test_build_all_writes_everything_and_html_references_figures(sweep):
    from bench.report import build_all

    paths = build_all(sweep)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    names = {p.name for p in paths}
    for stem in ("bars_toy", "ablation_delta_toy", "curves_toy", "qualitative_toy_a_00001", "blur_toy_a"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names, stem
    assert {"results.parquet", "results.csv", "main.tex", "ablation.md", "blur_accuracy.csv"} <= names
    html = (sweep / "report.html").read_text()
    pngs = [p for p in paths if p.suffix == ".png"]
    for p in pngs:
        assert f'alt="{p.name}"' in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(pngs)
    assert "blur_accuracy" in html and "\\rankfirst" not in html
    assert 'class="r1">25.50<' in html  # full is best on the PSNR average (25 + 26) / 2


@pytest.mark.parametrize("mask", [0o022, 0o007])
def test_report_files_follow_the_umask(sweep, mask):
    """Tables, figures, the report and the results files are readable by the user's group."""
    import os
    import stat

    from bench.report import build_all

    old = os.umask(mask)
    try:
        paths = build_all(sweep)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert modes and all(m == 0o666 & ~mask for m in modes.values()), modes


def test_blur_accuracy_values(sweep):
    from bench.report.collect import collect
    from bench.report.scene_figures import gt_rms_radius, kernel_rms_radius, plot_blur_accuracy

    k = np.zeros((1, 1, 5, 5))
    k[0, 0, 2, :] = 0.2
    assert kernel_rms_radius(k)[0, 0] == pytest.approx(np.sqrt(2.0))
    sc = tiny_scene()
    rms = gt_rms_radius(sc.gt, 0)
    # Outside the motion mask only defocus: sqrt(1^2 / 2); inside also the streak's variance 2.
    assert rms[0, 0] == pytest.approx(np.sqrt(0.5)) and rms[8, 10] == pytest.approx(np.sqrt(0.5 + 2.0))
    figs = plot_blur_accuracy(sweep, collect(sweep), sweep / "figures")
    paths, notes, stats = figs.paths, figs.notes, figs.blur_stats
    assert [p.name for p in paths] == ["blur_toy_a.png", "blur_toy_a.pdf", "blur_toy_b.png", "blur_toy_b.pdf"]
    assert notes == [] and set(stats.variant) == {"full", "no_sparsity"} and set(stats.view) == {"00001"}
    want = np.abs(np.sqrt(2.0) - gt_rms_radius(sc.gt, 1)).mean()
    assert stats.rms_mae_px.to_numpy() == pytest.approx(want, rel=1e-5)
    # the predicted mask (0.8 everywhere) against GT presence (all pixels have RMS > 0.5 px): IoU 1
    assert stats.mask_iou.to_numpy() == pytest.approx(1.0)


def test_build_all_degrades_without_curves_and_with_broken_results(sweep):
    from bench.report import build_all

    import shutil

    for run in (sweep / "runs").iterdir():
        (run / rundir.CURVES).unlink()
        shutil.rmtree(run / "renders", ignore_errors=True)  # fewer figures: keep the test fast
    paths = build_all(sweep)
    html = (sweep / "report.html").read_text()
    assert "curves_toy: no curves.csv in the runs" in html
    assert not any(p.name.startswith("curves_") for p in paths)
    next((sweep / "runs").iterdir()).joinpath("results.json").write_text("{broken")
    paths = build_all(sweep)   # collection fails: a note, still a report
    assert paths[-1].name == "report.html" and "collect failed" in paths[-1].read_text()


def test_empty_sweep_still_reports(tmp_path):
    """A sweep that planned runs of which none finished yet: a report saying so, naming the planned variants."""
    from bench.report import build_all

    (tmp_path / "s" / "runs").mkdir(parents=True)
    write_manifest(tmp_path / "s", variants=("full", "no_blur"))
    paths = build_all(tmp_path / "s")
    html = paths[-1].read_text()
    assert paths[-1].name == "report.html" and "no finished runs" in html
    assert "planned variants with no finished run: full, no_blur" in html


@pytest.mark.parametrize("verb", ["collect", "table", "compare", "plot", "report", "check-paper"])
def test_report_verbs_refuse_a_folder_that_is_no_sweep(tmp_path, capsys, verb):
    """A folder without manifest.json (here: runs with results, copied by hand) is no sweep output
    directory: one line naming it, exit 2, and nothing written into it."""
    folder = make_sweep(tmp_path, VALUES)
    (folder / "manifest.json").unlink()
    before = sorted(p for p in folder.rglob("*"))
    assert main([verb, str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bench {verb}: error: {folder}: not a sweep output directory (no manifest.json); expected the "
                   "folder `bench sweep` writes (<output_root>/<sweep name>), or its sweep YAML"]
    assert sorted(p for p in folder.rglob("*")) == before


def test_build_all_refuses_a_folder_that_is_no_sweep(tmp_path):
    from bench.errors import BenchError
    from bench.report import build_all

    (tmp_path / "s").mkdir()
    with pytest.raises(BenchError, match="not a sweep output directory"):
        build_all(tmp_path / "s")
    assert list((tmp_path / "s").iterdir()) == []


def test_cli_verbs(sweep, capsys):
    for f in sweep.glob("runs/*/renders/train/*_kernels.npz"):
        f.unlink()  # blur figures are covered above; keep this test fast
    assert main(["collect", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "6 runs, 42 rows" and "| full | **25.50**" in out
    assert (sweep / "results.parquet").is_file()
    assert main(["table", str(sweep), "--no-reported"]) == 0
    assert (sweep / "tables" / "main.tex").is_file()
    assert main(["plot", str(sweep), "--frames", "0,2"]) == 0
    assert (sweep / "figures" / "qualitative_toy_a_00000.png").is_file()
    assert (sweep / "figures" / "qualitative_toy_b_00002.pdf").is_file()
    empty = sweep.parent / "empty"
    (empty / "runs").mkdir(parents=True)
    write_manifest(empty)
    assert main(["report", str(empty), "--rank-reported"]) == 0 and (empty / "report.html").is_file()
    assert main(["collect", str(sweep / "nope")]) == 2


def test_evaluate_run_and_bench_eval(tmp_path, monkeypatch, capsys):
    from bench.metrics import image as im
    from bench.metrics.evaluate import evaluate_run

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    sc = tiny_scene()
    fake_registry(monkeypatch, {("toy", "a"): sc})
    run = tmp_path / "sweep" / "runs" / "r1"
    (run).mkdir(parents=True)
    (run / "config.yaml").write_text("method: full\nbase_method: dydeblur\ndataset: toy\nscene: a\nseed: 3\n"
                                     "config_hash: h123\n")
    (run / rundir.TRAIN_SUMMARY).write_text(json.dumps({"steps": 5, "wall_time_s": 1.5}))
    preds = [np.clip(sc.test.images[i].numpy() + 0.05, 0, 1) for i in range(3)]
    for i, p in enumerate(preds):
        write_png(run / rundir.TEST_RENDERS / f"{i:05d}.png", p)
    out = evaluate_run(run)
    quant = [np.round(p * 255) / 255 for p in preds]
    assert out["protocol"]["name"] == "synthetic"
    assert out["per_image"]["00001"]["psnr"] == pytest.approx(im.psnr(quant[1], sc.test.images[1].numpy()), abs=1e-4)
    assert out["aggregate"]["lpips"] is None and "bench weights fetch" in out["missing"]["lpips"]
    mask = sc.test.motion_mask[0].numpy()
    assert out["per_image"]["00000"]["psnr_dyn"] == pytest.approx(
        im.masked_psnr(quant[0], sc.test.images[0].numpy(), mask), abs=1e-4)

    # bench eval creates results.json, then rewrites only the metrics block.
    assert main(["eval", str(run), "--lpips-input", "unscaled"]) == 0
    doc = json.loads((run / "results.json").read_text())
    assert doc["run_id"] == "r1" and doc["sweep"] == "sweep" and doc["seed"] == 3 and doc["config_hash"] == "h123"
    assert doc["metrics"]["protocol"]["lpips_input"] == "unscaled" and doc["train"]["steps"] == 5
    doc["provenance"]["marker"] = "keep me"
    (run / "results.json").write_text(json.dumps(doc))
    assert main(["eval", str(run)]) == 0
    again = json.loads((run / "results.json").read_text())
    assert again["provenance"]["marker"] == "keep me" and again["metrics"]["protocol"]["lpips_input"] == "scaled"
    (run / rundir.TEST_RENDERS / "00002.png").unlink()
    assert main(["eval", str(run)]) == 2
    assert "00002.png: missing render" in capsys.readouterr().err


def test_summarising_reads_each_results_file_once(tmp_path, monkeypatch):
    from bench.report import build, collect

    sweep = make_sweep(tmp_path, VALUES, seeds=(0,))
    reads = []
    original = collect.rundir.read_results
    monkeypatch.setattr(collect.rundir, "read_results", lambda run_dir: reads.append(run_dir) or original(run_dir))
    built = build.summarise(sweep, save=False)
    assert built.stats is not None and len(reads) == len(set(reads)) == 6  # 3 variants x 2 scenes
