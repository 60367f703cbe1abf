"""A new user's view of a sweep: estimates before submitting, progress with an ETA while it runs,
and a sweep file that finds its output from any folder (bench.harness.estimate, .progress,
.sweep_index)."""

from __future__ import annotations

import json

import pytest

from bench import rundir
from bench.cli import main
from bench.harness import estimate, job as J, sweep_index
from bench.harness.manifest import read_manifest
from bench.harness.progress import SweepProgress
from bench.harness.runs import expand
from bench.harness.spec import load_sweep
from bench.harness.states import Shown
from bench.harness.sweep import run_sweep

from harness_fakes import fake_pipeline, prepare_run


def _measured(variant="full", dataset="synthetic", steps=800, klass="cpu", wall=60.0, size=1000):
    return estimate.Measured(variant, dataset, steps, klass, wall, size)


def test_a_run_is_estimated_from_the_closest_measured_runs_of_its_class():
    measured = [_measured(wall=60.0), _measured(wall=80.0), _measured(variant="no_blur", wall=30.0),
                _measured(steps=200, wall=10.0, size=500), _measured(klass="gpu", wall=5.0)]
    same = estimate.run_cost("full", "synthetic", 800, "cpu", measured)
    assert (same.seconds, same.bytes) == (70.0, 1000) and "2 measured run(s), same variant" in same.basis
    other = estimate.run_cost("smooth", "synthetic", 800, "cpu", measured)
    assert other.seconds == 60.0 and "800 steps, any variant" in other.basis  # median of 60, 80, 30
    longer = estimate.run_cost("full", "synthetic", 3200, "cpu", measured)
    # per step: 60/800, 80/800, 30/800, 10/200 s -> median over 3200 steps of 240, 320, 120, 160 s
    assert longer.seconds == pytest.approx(200.0) and "scaled by steps" in longer.basis
    assert estimate.run_cost("full", "synthetic", 800, "tpu", measured).seconds is None
    total = estimate.estimate([same, other, estimate.run_cost("full", "synthetic", 800, "tpu", measured)], 2)
    assert (total.seconds, total.duration_s, total.estimated, total.unestimated) == (130.0, 65.0, 2, 1)
    assert "1 more run(s) without an estimate" in "\n".join(total.lines())


def _finish_two(write_sweep, monkeypatch, **keys):
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    path = write_sweep(**keys)
    assert run_sweep(str(path), report=None, only=["scene=motion_0"]) == 0
    return path


def test_dry_run_prints_count_duration_and_disk_from_measured_runs(write_sweep, monkeypatch, capsys):
    path = _finish_two(write_sweep, monkeypatch)
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs to submit: 2" in out
    line = next(x for x in out.splitlines() if x.startswith("estimate:"))
    assert "wall clock" in line and "on disk, for 2 runs" in line and "1 at once" in line
    assert "2 measured run(s), same variant, dataset and steps" not in out  # one per variant
    assert "1 measured run(s), same variant, dataset and steps" in out


def test_dry_run_without_measured_runs_says_so(write_sweep, capsys):
    assert main(["sweep", str(write_sweep()), "--dry-run"]) == 0
    assert "estimate: none yet: no run of this resource class has finished" in capsys.readouterr().out


def test_status_shows_done_of_total_elapsed_and_rate(write_sweep, monkeypatch, capsys):
    path = _finish_two(write_sweep, monkeypatch)
    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    progress = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("progress:"))
    assert progress.startswith("progress: 2/4 done, 0 failed · ") and "elapsed" in progress and "runs/h" in progress
    assert progress.endswith("no ETA (none in flight; 2 not submitted or interrupted)")


def test_a_running_run_shows_its_step_of_its_total(write_sweep, monkeypatch):
    path = _finish_two(write_sweep, monkeypatch)
    sweep_dir = load_sweep(path).output_dir()
    manifest = read_manifest(sweep_dir)
    run = next(r for r in expand(load_sweep(path)) if r.scene == "defocus_0")
    running, run_dir = run.run_id, prepare_run(sweep_dir, run)
    (run_dir / rundir.CONFIG).write_text("config:\n  train:\n    steps: 20\n")
    rundir.write_curves(run_dir, [{"step": 5}, {"step": 15}], ["step"])
    progress = SweepProgress(sweep_dir, manifest)
    assert progress.steps(running) == (15, 20)
    snap = {rid: (Shown.DONE, {}) for rid in manifest["runs"] if "motion_0" in rid}
    snap[running] = (Shown.RUNNING, {})
    reading = progress.reading(snap)
    assert (reading.done, reading.total) == (2, 3) and "from 2 measured runs, 1 at once" in reading.line()
    # three quarters of its steps are done: a quarter of the measured run of its variant is left
    (same,) = [m for m in progress._measured_runs() if m.variant == running.split(".")[0]]
    assert reading.eta_s == pytest.approx(0.25 * same.wall_s)


def test_a_sweep_file_finds_its_output_from_another_folder(tmp_path, write_sweep, monkeypatch, capsys):
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    path = write_sweep(output_root="results")
    assert run_sweep(str(path), report=None, only=["scene=motion_0"]) == 0
    sweep_dir = project / "results" / "t"
    assert sweep_index.outputs_of(path) == [sweep_dir]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"output at {sweep_dir}, where `bench sweep` put it" in captured.err
    assert f"sweep t at {sweep_dir}" in captured.out
    # Without the record: the folder searched is named, and nothing suggests submitting again.
    monkeypatch.setenv(sweep_index.STATE_ENV, str(tmp_path / "other_state"))
    assert main(["status", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"bench status: error: {elsewhere / 'results' / 't'}: no sweep there (no manifest.json)")
    assert f"current folder {elsewhere}" in err
    assert "bench sweep" not in err and "submit" not in err.replace("submitted", "")


def test_the_index_keeps_the_newest_output_first_and_drops_removed_ones(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "manifest.json").write_text(json.dumps({"runs": {}}))
    sweep_index.record(tmp_path / "s.yaml", a)
    sweep_index.record(tmp_path / "s.yaml", b)
    assert sweep_index.outputs_of(tmp_path / "s.yaml") == [b, a]
    sweep_index.record(tmp_path / "s.yaml", a)
    assert sweep_index.outputs_of(tmp_path / "s.yaml") == [a, b]
    (b / "manifest.json").unlink()
    assert sweep_index.outputs_of(tmp_path / "s.yaml") == [a] and sweep_index.all_outputs() == [a]


def test_the_eta_keeps_the_most_runs_seen_at_once(write_sweep, monkeypatch):
    """Between one run's end and the next one's start one run runs: the ETA must not double then."""
    path = _finish_two(write_sweep, monkeypatch)
    sweep_dir = load_sweep(path).output_dir()
    manifest = read_manifest(sweep_dir)
    left = [r for r in expand(load_sweep(path)) if r.scene == "defocus_0"]
    for run in left:
        prepare_run(sweep_dir, run)
    progress = SweepProgress(sweep_dir, manifest)
    both = {r.run_id: (Shown.RUNNING, {}) for r in left}
    assert "2 at once" in progress.reading(both).line()
    one = {**both, left[0].run_id: (Shown.PENDING, {})}
    assert "2 at once" in progress.reading(one).line()
