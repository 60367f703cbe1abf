"""The data check before a sweep is submitted: the quick scene check (bench.data.presence) against
the full one, the dry run's per-dataset report, the refusal (one line per dataset, nothing
written), --skip-data-check, synthetic scenes generated on first use, finished runs needing no data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench import rundir
from bench.cli import main
from bench.data import d2rf, d4dgs, dyblurf
from bench.data.presence import GENERATED, MISSING, PRESENT, quick_check_scene, quick_d2rf, quick_d4dgs, quick_dyblurf
from bench.harness import job as J
from bench.harness.manifest import read_manifest
from bench.harness.runs import expand
from bench.sweepdir import runs_dir
from bench.harness.spec import load_sweep
from bench.harness.sweep import run_sweep
from data_layouts import write_d2rf, write_d4dgs, write_dyblurf
from harness_fakes import fake_pipeline

N = 3  # frames of the hand-made scenes


def _eyes(n: int) -> np.ndarray:
    c2w = np.repeat(np.eye(4)[None], n, 0)
    c2w[:, 0, 3] = np.arange(n) * 0.1
    return c2w


def _dyblurf(root: Path, name: str = "s") -> Path:
    return write_dyblurf(root, name, _eyes(N), _eyes(N) + 0.01, full_hw=(16, 32), train_hw=(8, 16),
                         focal_full=20.0, bounds=np.tile([1.0, 10.0], (2 * N, 1)))


def _d2rf(root: Path, name: str = "s") -> Path:
    return write_d2rf(root, name, _eyes(N), _eyes(N) + 0.01, full_hw=(16, 32), focal_full=20.0,
                      bounds=np.tile([1.0, 10.0], (2 * N, 1)))


def _d4dgs(root: Path, name: str = "s") -> Path:
    w2cs = [np.linalg.inv(c) for c in _eyes(2 * N)]
    K = np.array([[40.0, 0, 20], [0, 40.0, 10], [0, 0, 1]])
    return write_d4dgs(root, name, w2cs, colmap_wh=(40, 20), K_full=K, img_wh=(16, 8), tracks=False)


# ---------------------------------------------------------------- quick check vs full check


LAYOUTS = {
    "dyblurf": (_dyblurf, lambda r, s: quick_dyblurf(r, s, height=8), lambda r, s: dyblurf.check(r, s, height=8),
                ["dense/poses_bounds.npy", "dense/images", "dense/images_16x8/00001.png", "dense/inference_images",
                 "dense/disp/00002.npy", "dense/motion_masks/00000.png", "dense/flow_i1/00001_bwd.npz", "dense"],
                "dense/images_16x8/00002.png"),
    "d2rf": (_d2rf, lambda r, s: quick_d2rf(r, s, factor=2), lambda r, s: d2rf.check(r, s, factor=2),
             ["poses_bounds.npy", "images_2/000001_left.png", "images/000002_right.jpg", "dpt/000000_left.npy",
              "motion_masks/000001_right.png", "images_2"], "images_2/000002_right.png"),
    "d4dgs": (_d4dgs, quick_d4dgs, d4dgs.check,
              ["x1/images_test/00003.png", "x1/flow3d_preprocessed/colmap/sparse/images.bin",
               "x1/flow3d_preprocessed/aligned_depth_anything_colmap/00002.npy",
               "x1/flow3d_preprocessed/masks", "x1/images/00005.png"], "x1/images/00004.png"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_quick_check_finds_what_the_full_check_finds_without_reading_files(tmp_path, layout):
    write, quick, full = LAYOUTS[layout][:3]
    write(tmp_path)
    assert quick(tmp_path, "s") == [] and full(tmp_path, "s") == []
    for i, part in enumerate(LAYOUTS[layout][3]):
        root = tmp_path / f"case{i}"
        write(root)
        target = root / "s" / part
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        if layout == "d4dgs" and part.endswith("/masks"):
            shutil.rmtree(root / "s" / "x1" / "masks")  # the fallback folder too
        found = quick(root, "s")
        assert found, f"{layout}: quick check missed the removal of {part}"
        assert full(root, "s"), f"{layout}: full check missed the removal of {part}"
        assert all("\n" not in line and str(root) in line for line in found)
    # What only the full check sees: a file that is there but unreadable.
    bad = tmp_path / "corrupt"
    write(bad)
    (bad / "s" / LAYOUTS[layout][4]).write_bytes(b"not a png")
    assert full(bad, "s") and not quick(bad, "s")


def test_quick_check_of_registry_scenes(tmp_path):
    _d2rf(tmp_path / "d2rf", "Camp")
    assert quick_check_scene("d2rf", "Camp", tmp_path / "d2rf").state == PRESENT
    missing = quick_check_scene("d2rf", "Car", tmp_path / "d2rf")
    assert missing.state == MISSING and str(tmp_path / "d2rf" / "Car") in missing.problems[0]
    # A synthetic scene not generated yet is generated on first use: present.
    assert quick_check_scene("synthetic", "motion_0", tmp_path / "syn").state == GENERATED
    assert not (tmp_path / "syn").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_synthetic_scene_that_cannot_be_generated_is_broken(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        check = quick_check_scene("synthetic", "motion_0", ro / "synthetic")
        assert not check.ok and "cannot be written" in check.problems[0]
    finally:
        ro.chmod(0o700)


def test_bench_data_check_quick(tmp_path, capsys):
    _d2rf(tmp_path, "Camp")
    assert main(["data", "check", "d2rf", "Camp", "--data-root", str(tmp_path), "--quick"]) == 0
    assert "d2rf/Camp: ok" in capsys.readouterr().out
    assert main(["data", "check", "d2rf", "Car", "--data-root", str(tmp_path), "--quick"]) == 1
    assert "scene folder not found" in capsys.readouterr().out


# ---------------------------------------------------------------- bench sweep


@pytest.fixture
def mixed_sweep(write_sweep, tmp_path):
    """no_blur on d2rf {Camp present, Car missing}, stereo_blur {seesaw missing} and synthetic
    {motion_0 not generated yet}, each under its own data root in tmp_path."""
    _d2rf(tmp_path / "d2rf", "Camp")
    return write_sweep(variants=["no_blur"], datasets=[
        {"name": "d2rf", "scenes": ["Camp", "Car"], "data_root": str(tmp_path / "d2rf")},
        {"name": "stereo_blur", "scenes": ["seesaw"], "data_root": str(tmp_path / "sb")},
        {"name": "synthetic", "scenes": ["motion_0"], "data_root": str(tmp_path / "syn")}])


def test_dry_run_shows_present_and_missing_scenes_per_dataset(mixed_sweep, tmp_path, capsys):
    assert main(["sweep", str(mixed_sweep), "--dry-run"]) == 2  # as the submission would be refused
    captured = capsys.readouterr()
    out = captured.out
    assert "data (quick check of the 4 scene(s) the runs to submit need):" in out
    assert (f"  d2rf: 1 of 2 scene(s) present under {tmp_path / 'd2rf'} (from the sweep file's data_root); "
            "missing: Car") in out
    assert f"  stereo_blur: 0 of 1 scene(s) present under {tmp_path / 'sb'}" in out and "missing: seesaw" in out
    assert "  synthetic: 1 of 1 scene(s) present" in out and "1 generated on first use: motion_0" in out
    assert out.count("would run") == 4 and out.count("(its data is missing)") == 2
    assert "bench sweep: error: a submission would be refused: 2 of 4 runs" in captured.err
    assert not (tmp_path / "out").exists()
    assert main(["sweep", str(mixed_sweep), "--dry-run", "--skip-data-check"]) == 0
    assert "data: not checked (--skip-data-check)" in capsys.readouterr().out


def test_submission_over_missing_data_is_refused_and_writes_nothing(mixed_sweep, tmp_path, capsys, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", fake_pipeline(calls=calls))
    assert main(["sweep", str(mixed_sweep)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert err[0].startswith("bench sweep: error: d2rf: 1 of 2 scene(s) missing: Car; data root "
                             f"{tmp_path / 'd2rf'} (from the sweep file's data_root); needed by 1 run(s)")
    assert err[1].startswith("bench sweep: error: stereo_blur: 1 of 1 scene(s) missing: seesaw; data root "
                             f"{tmp_path / 'sb'}")
    assert "--skip-data-check" in err[2]
    assert not (tmp_path / "out").exists() and calls == []
    # A sweep directory already there is not touched either.
    assert run_sweep(str(mixed_sweep), report=None, only=["scene=Camp"]) == 0
    sweep_dir = load_sweep(mixed_sweep).output_dir()
    before = (sweep_dir / "manifest.json").read_bytes()
    assert main(["sweep", str(mixed_sweep), "--no-report"]) == 2
    assert (sweep_dir / "manifest.json").read_bytes() == before
    assert sorted(os.listdir(runs_dir(sweep_dir))) == [r.run_id for r in expand(load_sweep(mixed_sweep))
                                                       if r.scene == "Camp"]
    # --skip-data-check submits anyway (the fake pipeline trains anything).
    assert run_sweep(str(mixed_sweep), report=None, skip_data_check=True) == 0
    assert len(calls) == 4


def test_broken_scene_is_refused_with_its_first_problem(write_sweep, tmp_path, capsys):
    base = _d2rf(tmp_path / "d2rf", "Camp")
    (base / "dpt" / "000001_right.npy").unlink()
    path = write_sweep(variants=["no_blur"], datasets=[
        {"name": "d2rf", "scenes": ["Camp"], "data_root": str(tmp_path / "d2rf")}])
    assert main(["sweep", str(path), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "d2rf: 0 of 1 scene(s) present" in out and "broken: Camp" in out
    assert f"    d2rf/Camp: {base / 'dpt'}: expected one disparity .npy per image, missing 000001_right.npy" in out
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert "d2rf: 1 broken: Camp (first problem: " in err and "000001_right.npy" in err


def test_only_runs_that_would_run_need_their_data(mixed_sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    spec = load_sweep(mixed_sweep)
    for run in expand(spec):
        if run.scene in ("Car", "seesaw"):  # finished elsewhere: their data is not needed here
            d = runs_dir(spec.output_dir()) / run.run_id
            d.mkdir(parents=True)
            (d / rundir.RESULTS).write_text(json.dumps({"config_hash": run.config_hash}))
    assert main(["sweep", str(mixed_sweep), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "plan: 4 runs, 2 finished, 2 to run" in out and "summary: 4 done, 0 failed" in out
    assert set(read_manifest(spec.output_dir())["submissions"][0]["run_ids"]) == {
        r.run_id for r in expand(spec) if r.scene in ("Camp", "motion_0")}


def test_sweep_help_names_the_skip_flag(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "--skip-data-check" in capsys.readouterr().out
