"""Running runs through the debug executor with an injected fake training pipeline: records,
skipping, isolation of failures, resume, locks."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import rundir
from bench.harness import job as J
from bench.harness.manifest import read_manifest
from bench.harness.runs import expand
from bench.rundir import read_status
from bench.sweepdir import runs_dir
from bench.harness.spec import load_sweep
from bench.harness.sweep import run_sweep

from harness_fakes import fake_pipeline, prepare_run


# ---------------------------------------------------------------- debug executor with a fake pipeline


def test_debug_sweep_runs_records_and_skips(write_sweep, monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", fake_pipeline(calls=calls))
    path = write_sweep()
    assert run_sweep(str(path), report=None) == 0
    sweep_dir = load_sweep(path).output_dir()
    runs = expand(load_sweep(path))
    assert len(calls) == 4
    for run in runs:
        d = runs_dir(sweep_dir) / run.run_id
        res = json.loads((d / rundir.RESULTS).read_text())
        assert res["config_hash"] == run.config_hash and res["run_id"] == run.run_id
        assert res["method"] == run.variant and res["blur_type"] == run.blur_type
        prov = res["provenance"]
        for key in ("git_commit", "git_dirty", "packages", "device", "hostname", "slurm", "start_time",
                    "end_time", "wall_time_s", "peak_memory"):
            assert key in prov
        assert read_status(d)["state"] == "done"
    manifest = read_manifest(sweep_dir)
    assert set(manifest["runs"]) == {r.run_id for r in runs}
    assert manifest["submissions"][0]["executor"] == "debug"
    # Second call: nothing to run, finished results untouched.
    before = {r.run_id: (runs_dir(sweep_dir) / r.run_id / rundir.RESULTS).read_bytes() for r in runs}
    assert run_sweep(str(path), report=None) == 0
    assert len(calls) == 4
    assert "4 finished, 0 to run" in capsys.readouterr().out
    assert before == {r.run_id: (runs_dir(sweep_dir) / r.run_id / rundir.RESULTS).read_bytes() for r in runs}
    # --force archives the old run directories (never deletes results) and trains again.
    assert run_sweep(str(path), report=None, force=True, only=["scene=motion_0"]) == 0
    assert len(calls) == 6
    archived = list((sweep_dir / "archive").iterdir())
    assert len(archived) == 2 and all((a / rundir.RESULTS).is_file() for a in archived)


def test_failing_run_is_isolated_and_retried_only_on_request(write_sweep, monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", fake_pipeline(fail_scenes={"defocus_0"}, calls=calls))
    path = write_sweep()
    assert run_sweep(str(path), report=None) == 1
    out = capsys.readouterr().out
    sweep_dir = load_sweep(path).output_dir()
    runs = expand(load_sweep(path))
    bad = [r for r in runs if r.scene == "defocus_0"]
    good = [r for r in runs if r.scene != "defocus_0"]
    for run in bad:
        status = read_status(runs_dir(sweep_dir) / run.run_id)
        assert status["state"] == "failed"
        assert "no such scene directory" in status["error"] and status["log"]
        assert f"failed: {run.run_id}: FileNotFoundError" in out
        assert not (runs_dir(sweep_dir) / run.run_id / rundir.RESULTS).exists()
    for run in good:
        assert (runs_dir(sweep_dir) / run.run_id / rundir.RESULTS).is_file()
    assert "2 done, 2 failed" in out
    # A failed run is never finished: re-running skips it (exit 1 again), --retry-failed retries it.
    assert run_sweep(str(path), report=None) == 1
    assert len(calls) == 4
    monkeypatch.setattr(J, "_pipeline", fake_pipeline(calls=calls))
    assert run_sweep(str(path), report=None, retry_failed=True) == 0
    assert sorted(calls[4:]) == sorted(r.run_id for r in bad)
    assert read_status(runs_dir(sweep_dir) / bad[0].run_id)["previous_error"].startswith("FileNotFound")


def test_interrupted_run_resumes_from_its_checkpoint(write_sweep, monkeypatch):
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    d = prepare_run(spec.output_dir(), run, state="running")
    rundir.checkpoint_path(d, 10).parent.mkdir(parents=True)
    rundir.checkpoint_path(d, 10).write_bytes(b"x")
    assert run_sweep(str(spec.path), report=None, only=[f"scene={run.scene}", f"variant={run.variant}"]) == 0
    status = read_status(d)
    assert status["state"] == "done" and status["resumed_from_step"] == 10
    assert json.loads((d / rundir.RESULTS).read_text())["train"]["start_step"] == 10


def test_job_does_not_train_a_run_locked_by_another_process(write_sweep, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", fake_pipeline(calls=calls))
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    d = prepare_run(spec.output_dir(), run, state="pending")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); time.sleep(60)"), str(d / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(J, "LOCK_WAIT_S", 0.5)
        assert J.run_job(d, executor="debug") == J.BUSY
        assert calls == [] and read_status(d)["state"] == "pending"
    finally:
        holder.kill()
        holder.wait()
    assert J.run_job(d, executor="debug") == "done"


def test_the_job_resolves_the_configuration_once_and_hands_it_to_training(write_sweep, monkeypatch, tmp_path,
                                                                          tiny_data):
    """Training gets the identity the sweep planned and the configuration the job resolved to check
    it, and then resolves nothing itself: the variant's methods/*.yaml are not read again."""
    import yaml

    import bench.method.train as T
    from bench.method.config import MethodConfig

    handed = []
    train, evaluate_modes, write_results = fake_pipeline()()

    def recording(run_dir, identity, config, **kw):
        handed.append((identity, config))
        return train(run_dir, identity, config, **kw)

    monkeypatch.setattr(J, "_pipeline", lambda: (recording, evaluate_modes, write_results))
    path = write_sweep(variants=["full"], datasets=[{"name": "synthetic", "scenes": ["motion_0"]}])
    assert run_sweep(str(path), report=None) == 0
    (run,) = expand(load_sweep(path))
    (identity, cfg), = handed
    assert identity == run.identity and isinstance(cfg, MethodConfig)
    assert cfg.train.steps == 20  # the sweep's override, resolved by the job

    def unexpected(*args, **kwargs):
        raise AssertionError("train_run() resolved the configuration again")

    monkeypatch.setattr(T, "resolve_config", unexpected)
    monkeypatch.setattr(T, "get_method", unexpected)
    monkeypatch.setattr(T, "base_implementation", lambda base: lambda run_dir, cfg, record, **kw: {"base": base})
    out = T.train_run(tmp_path / "run", identity, cfg, profile=run.profile, overrides=run.overrides, progress=False)
    assert out == {"base": "dydeblur"}
    written = yaml.safe_load((tmp_path / "run" / rundir.CONFIG).read_text())
    assert written["config"] == cfg.to_dict() and rundir.RunIdentity.read(written, tmp_path) == identity


def test_the_job_records_the_rendering_speed_and_a_failed_timing_leaves_the_run_done(write_sweep, monkeypatch,
                                                                                       capsys):
    """After evaluation the job measures the trained run's rendering speed (bench.method.speed, on the
    job's device) into results.json's ``speed`` block; where that fails, the run is still done, without
    the block, and one line says how to record it later."""
    import bench.method.speed as speed

    measured = []

    def measure_run(run_dir, device="auto"):
        measured.append((run_dir.name, device))
        if "defocus" in run_dir.name:
            raise RuntimeError("no renderer here")
        return {"fps": 12.5, "device": "a CPU", "backend": "torch (CPU)", "repeats": 3,
                "resolution": [48, 32], "num_gaussians": 700}

    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    monkeypatch.setattr(speed, "measure_run", measure_run)
    path = write_sweep(variants=["full"])
    assert run_sweep(str(path), report=None) == 0
    sweep_dir = load_sweep(path).output_dir()
    for run in expand(load_sweep(path)):
        d = runs_dir(sweep_dir) / run.run_id
        assert read_status(d)["state"] == "done" and (run.run_id, "cpu") in measured
        res = json.loads((d / rundir.RESULTS).read_text())
        if run.scene == "defocus_0":
            assert "speed" not in res
            err = capsys.readouterr().err
            assert f"{run.run_id}: rendering speed not measured (RuntimeError: no renderer here)" in err
            assert f"bench fps {d}" in err
        else:
            assert res["speed"]["fps"] == 12.5 and res["speed"]["resolution"] == [48, 32]


def test_a_job_that_cannot_start_says_why(tmp_path, capsys):
    """A job.json of an older version (no run identity): the job exits 1 with the reason, not silently."""
    (tmp_path / rundir.JOB).write_text(json.dumps({"variant": "full"}))
    assert J.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"bench.harness.job: {tmp_path}: BenchError: {tmp_path / rundir.JOB}: no run identity" in err
