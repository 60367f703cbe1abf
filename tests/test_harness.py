"""Harness unit tests: sweep validation, expansion and hashing, planning, the debug executor with an
injected fake training pipeline, SLURM array splitting, and the manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import rundir
from bench.cli import main
from bench.errors import BenchError
from bench.harness import executors as X
from bench.harness import job as J
from bench.harness import plan as P
from bench.harness.manifest import read_manifest
from bench.harness.runs import (RunLock, expand, parse_only, read_status, runs_dir, select, write_job,
                                write_status)
from bench.harness.spec import load_sweep
from bench.harness.sweep import resolve_sweep_dir, run_sweep


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("text, expected", [
    ("name: t\nvarients: all\n", [":2:", "varients", "unknown key", "variants", "datasets"]),
    ("name: t\nvariants: [full, nope]\ndatasets: [synthetic]\n", [":2:", "'nope'", "no_blur", "full"]),
    ("name: t\nvariants: all\ndatasets: [nope]\n", [":3:", "'nope'", "synthetic", "d2rf"]),
    ("name: t\nvariants: all\ndatasets:\n  - name: synthetic\n    scenes: [motion_0, bad]\n",
     [":5:", "'bad'", "motion_0", "defocus_1"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\noverrides:\n  train.steps: 5\n  train.stepz: 3\n",
     [":6:", "train.stepz", "train.steps"]),
    ("name: t\nvariants: all\ndatasets:\n  - name: synthetic\n    overrides: {train.steps: -1}\n",
     [":5:", "train.steps", "greater than or equal to 1"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\nexecutor:\n  resources:\n    gpus: 2\n",
     [":6:", "gpus", "gpus_per_node"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\nexecutor: {kind: sge}\n", [":4:", "slurm", "local"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\nprofile: gpu\n", [":4:", "'gpu'", "cpu", "release"]),
    ("name: t\nvariants: alll\ndatasets: [synthetic]\n", [":2:", "'all'"]),
    ("name: t\nvariants: [full, full]\ndatasets: [synthetic]\n", [":2:", "listed twice: full"]),
    ("name: [t\n", [":2:", "not valid YAML"]),
])
def test_invalid_sweep_is_one_error_with_file_line_and_allowed_values(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BenchError) as err:
        load_sweep(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for part in expected:
        assert part in msg
    # The CLI turns it into one line on stderr and exit code 2, and writes nothing.
    assert main(["sweep", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_shipped_sweeps_validate():
    root = Path(__file__).resolve().parents[1] / "sweeps"
    sizes = {}
    for name in ("demo", "ablation", "main", "smoke"):
        sizes[name] = len(expand(load_sweep(root / f"{name}.yaml")))
    assert sizes["demo"] == 32
    assert sizes["smoke"] <= 4


# ---------------------------------------------------------------- expansion and identity


def _ids(path) -> dict:
    return {(r.variant, r.scene, r.seed): r.run_id for r in expand(load_sweep(path))}


def test_expansion_is_variant_by_scene_by_seed(write_sweep):
    runs = expand(load_sweep(write_sweep(seeds=[0, 1])))
    assert len(runs) == 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert runs[0].run_id.startswith("full.synthetic.motion_0.s0.")
    assert {r.blur_type for r in runs} == {"motion", "defocus"}


def test_run_id_ignores_resources_but_not_results_affecting_config(write_sweep):
    base = _ids(write_sweep())
    resources = {"kind": "slurm", "device": "cpu", "resources": {"partition": "gpu", "cpus_per_task": 4,
                                                                  "time_min": 5, "mem_gb": 64}}
    assert _ids(write_sweep(executor=resources)) == base
    changed = _ids(write_sweep(overrides={"train.steps": 21}))
    assert all(changed[k] != base[k] for k in base)
    per_dataset = _ids(write_sweep(datasets=[{"name": "synthetic", "scenes": ["motion_0", "defocus_0"],
                                              "overrides": {"loss.depth": 0.5}}]))
    assert all(per_dataset[k] != base[k] for k in base)


def test_only_filters_and_unknown_filter_values(write_sweep):
    runs = expand(load_sweep(write_sweep()))
    picked = select(runs, parse_only(["variant=full", "scene=motion_0,defocus_0"]))
    assert {(r.variant, r.scene) for r in picked} == {("full", "motion_0"), ("full", "defocus_0")}
    with pytest.raises(BenchError, match="allowed: defocus_0, motion_0"):
        select(runs, parse_only(["scene=motion_9"]))
    with pytest.raises(BenchError, match="KEY one of variant, dataset, scene, seed"):
        parse_only(["colour=red"])


def test_resolve_sweep_dir(write_sweep, tmp_path):
    path = write_sweep(name="abc")
    assert resolve_sweep_dir(str(path)) == tmp_path / "out" / "abc"
    (tmp_path / "out" / "abc").mkdir(parents=True)
    assert resolve_sweep_dir(str(tmp_path / "out" / "abc")) == tmp_path / "out" / "abc"
    with pytest.raises(BenchError):
        resolve_sweep_dir(str(tmp_path / "nothing"))


# ---------------------------------------------------------------- planning


def _prepare(sweep_dir, run, **status):
    d = runs_dir(sweep_dir) / run.run_id
    d.mkdir(parents=True, exist_ok=True)
    write_job(d, run)
    if status:
        write_status(d, **status)
    return d


def _finish(d, run, chash=None):
    (d / rundir.RESULTS).write_text(json.dumps({"config_hash": chash or run.config_hash}))


def test_plan_skip_retry_force(write_sweep, tmp_path):
    spec = load_sweep(write_sweep(seeds=[0, 1, 2]))
    sweep_dir = spec.output_dir()
    runs = expand(spec)
    finished, failed, interrupted, active, new = runs[0], runs[1], runs[2], runs[3], runs[4]
    _finish(_prepare(sweep_dir, finished, state="done"), finished)
    _prepare(sweep_dir, failed, state="failed", error="boom")
    _prepare(sweep_dir, interrupted, state="running")  # its process is gone: lock free
    lock = RunLock(_prepare(sweep_dir, active, state="running"))
    assert lock.acquire()
    try:
        plan = P.make_plan(runs, sweep_dir)
        assert plan.states[finished.run_id] == P.FINISHED
        assert plan.states[failed.run_id] == P.FAILED
        assert plan.states[interrupted.run_id] == P.INTERRUPTED
        assert plan.states[active.run_id] == P.ACTIVE
        assert plan.states[new.run_id] == P.NEW
        submit = {r.run_id for r in plan.to_submit}
        assert finished.run_id not in submit and failed.run_id not in submit
        assert active.run_id not in submit
        assert {interrupted.run_id, new.run_id} <= submit
        assert "1 failed, skipped (use --retry-failed)" in plan.summary()

        retry = {r.run_id for r in P.make_plan(runs, sweep_dir, retry_failed=True).to_submit}
        assert failed.run_id in retry and finished.run_id not in retry

        forced = P.make_plan(runs, sweep_dir, force=True)
        assert finished.run_id in {r.run_id for r in forced.to_submit}
        assert [r.run_id for r in forced.to_archive] == [finished.run_id]
        assert active.run_id not in {r.run_id for r in forced.to_submit}
    finally:
        lock.release()


def test_stale_run_directory_is_never_overwritten_silently(write_sweep):
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    d = _prepare(spec.output_dir(), run, state="done")
    _finish(d, run, chash="0" * 16)
    with pytest.raises(BenchError, match="different configuration.*--force"):
        P.make_plan([run], spec.output_dir())
    plan = P.make_plan([run], spec.output_dir(), force=True)
    assert plan.to_archive == [run]


def test_alive_job_counts_as_in_flight(write_sweep):
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    _prepare(spec.output_dir(), run, state="pending")
    assert P.make_plan([run], spec.output_dir()).states[run.run_id] == P.INTERRUPTED
    plan = P.make_plan([run], spec.output_dir(), alive=lambda rid, st: rid == run.run_id)
    assert plan.states[run.run_id] == P.ACTIVE and not plan.to_submit


# ---------------------------------------------------------------- debug executor with a fake pipeline


def _fake_pipeline(fail_scenes=(), calls=None):
    """A training stand-in: checkpoints every 10 steps from the latest one; fails on some scenes."""
    from bench.metrics.results import write_results

    def train(run_dir, *, method, dataset, scene, seed, profile, overrides, data_root, device, progress):
        run_dir = Path(run_dir)
        if calls is not None:
            calls.append(run_dir.name)
        if scene in fail_scenes:
            raise FileNotFoundError(f"{data_root}/{scene}: no such scene directory")
        latest = rundir.latest_checkpoint(run_dir)
        start = int(latest.stem.split("_")[1]) if latest else 0
        for step in range(start + 10, overrides["train.steps"] + 1, 10):
            rundir.checkpoint_path(run_dir, step).parent.mkdir(parents=True, exist_ok=True)
            rundir.checkpoint_path(run_dir, step).write_bytes(b"x")
        return {"steps": overrides["train.steps"], "start_step": start}

    def evaluate_run(run_dir):
        return {"protocol": {"name": "fake"}, "aggregate": {"psnr": 20.0}, "per_image": {}, "missing": {}}

    return lambda: (train, evaluate_run, write_results)


def test_debug_sweep_runs_records_and_skips(write_sweep, monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline(calls=calls))
    path = write_sweep()
    assert run_sweep(str(path), report=False) == 0
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
    assert run_sweep(str(path), report=False) == 0
    assert len(calls) == 4
    assert "4 finished, 0 to run" in capsys.readouterr().out
    assert before == {r.run_id: (runs_dir(sweep_dir) / r.run_id / rundir.RESULTS).read_bytes() for r in runs}
    # --force archives the old run directories (never deletes results) and trains again.
    assert run_sweep(str(path), report=False, force=True, only=["scene=motion_0"]) == 0
    assert len(calls) == 6
    archived = list((sweep_dir / "archive").iterdir())
    assert len(archived) == 2 and all((a / rundir.RESULTS).is_file() for a in archived)


def test_failing_run_is_isolated_and_retried_only_on_request(write_sweep, monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline(fail_scenes={"defocus_0"}, calls=calls))
    path = write_sweep()
    assert run_sweep(str(path), report=False) == 1
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
    assert run_sweep(str(path), report=False) == 1
    assert len(calls) == 4
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline(calls=calls))
    assert run_sweep(str(path), report=False, retry_failed=True) == 0
    assert sorted(calls[4:]) == sorted(r.run_id for r in bad)
    assert read_status(runs_dir(sweep_dir) / bad[0].run_id)["previous_error"].startswith("FileNotFound")


def test_interrupted_run_resumes_from_its_checkpoint(write_sweep, monkeypatch):
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline())
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    d = _prepare(spec.output_dir(), run, state="running")
    rundir.checkpoint_path(d, 10).parent.mkdir(parents=True)
    rundir.checkpoint_path(d, 10).write_bytes(b"x")
    assert run_sweep(str(spec.path), report=False, only=[f"scene={run.scene}", f"variant={run.variant}"]) == 0
    status = read_status(d)
    assert status["state"] == "done" and status["resumed_from_step"] == 10
    assert json.loads((d / rundir.RESULTS).read_text())["train"]["start_step"] == 10


def test_job_does_not_train_a_run_locked_by_another_process(write_sweep, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline(calls=calls))
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    d = _prepare(spec.output_dir(), run, state="pending")
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


# ---------------------------------------------------------------- SLURM submission logic (no cluster)


def test_slurm_arrays_per_resource_setting_split_at_max_array_size(write_sweep):
    spec = load_sweep(write_sweep(
        seeds=[0, 1, 2, 3],
        datasets=[{"name": "synthetic", "scenes": ["motion_0"]}],
        executor={"kind": "slurm", "resources": {"partition": "p1", "array_parallelism": 3}}))
    runs = expand(spec)  # 2 variants x 1 scene x 4 seeds = 8
    big = runs[0].resources.model_copy(update={"mem_gb": 64})
    for r in runs[:3]:
        r.resources = big
    submitted = []

    def fake_submit(folder, params, run_dirs):
        submitted.append((params, run_dirs))
        base = 100 + len(submitted)
        return [f"{base}_{i}" for i in range(len(run_dirs))] if len(run_dirs) > 1 else [str(base)]

    records = X.submit_slurm(spec.output_dir(), spec.name, runs, array_limit=2, submit_array=fake_submit)
    sizes = [len(d) for _, d in submitted]
    assert sizes == [2, 1, 2, 2, 1]  # 3 runs with 64 GB -> 2+1, 5 others -> 2+2+1
    assert submitted[0][0]["mem_gb"] == 64 and "mem_gb" not in submitted[2][0]
    assert all(p["slurm_partition"] == "p1" and p["slurm_array_parallelism"] == 3 for p, _ in submitted)
    assert sorted(rid for rec in records for rid in rec["run_ids"]) == sorted(r.run_id for r in runs)
    assert records[0]["task_ids"][runs[0].run_id] == "101_0"
    assert records[1]["job_id"] == "102"


def test_max_array_size_is_read_from_the_cluster(monkeypatch):
    class Out:
        stdout = "Foo = 1\nMaxArraySize            = 77\nMaxJobCount = 3\n"

    monkeypatch.setattr(X.subprocess, "run", lambda *a, **k: Out())
    assert X.max_array_size() == 77


def test_auto_executor_choice(monkeypatch):
    monkeypatch.setattr(X.shutil, "which", lambda name: None)
    assert X.pick_executor("auto") == "local"
    with pytest.raises(BenchError, match="sbatch not found"):
        X.pick_executor("slurm")
    monkeypatch.setattr(X.shutil, "which", lambda name: "/usr/bin/sbatch")
    assert X.pick_executor("auto") == "slurm"
    assert X.pick_executor("debug") == "debug"


def test_slurm_parameters_map_every_resource():
    from bench.harness.spec import Resources

    res = Resources(partition="gpu", account="acc", qos="high", constraint="a100", gpus_per_node=1,
                    cpus_per_task=8, mem_gb=32, time_min=120, array_parallelism=5, setup=["module load x"],
                    additional={"mail-type": "END"})
    params = X.slurm_parameters(res, "demo")
    import submitit

    ex = submitit.AutoExecutor(folder="/tmp/unused-submitit", cluster="debug")
    ex.update_parameters(**{k: v for k, v in params.items() if not k.startswith("slurm_")})
    assert params["slurm_partition"] == "gpu" and params["slurm_account"] == "acc"
    assert params["slurm_qos"] == "high" and params["slurm_constraint"] == "a100"
    assert params["gpus_per_node"] == 1 and params["timeout_min"] == 120 and params["mem_gb"] == 32
    assert params["slurm_setup"][0].startswith("export PYTHONPATH=")
    assert params["slurm_setup"][1:] == ["module load x"]
    assert params["slurm_additional_parameters"] == {"mail-type": "END"}


def test_dry_run_writes_nothing(write_sweep, tmp_path, capsys):
    path = write_sweep()
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "plan: 4 runs, 0 finished, 4 to run" in out and out.count("would run") == 4
    assert not (tmp_path / "out").exists()


def test_dataset_may_repeat_only_with_disjoint_scenes(write_sweep, tmp_path):
    ok = write_sweep(datasets=[{"name": "synthetic", "scenes": ["motion_0"]},
                               {"name": "synthetic", "scenes": ["defocus_0"], "data_root": str(tmp_path)}])
    runs = expand(load_sweep(ok))
    assert {(r.scene, r.data_root) for r in runs} == {("motion_0", None), ("defocus_0", str(tmp_path))}
    bad = write_sweep(datasets=[{"name": "synthetic"}, {"name": "synthetic", "scenes": ["defocus_0"]}])
    with pytest.raises(BenchError, match="listed twice with overlapping scenes"):
        load_sweep(bad)


def test_job_refuses_a_config_that_changed_since_planning(write_sweep, monkeypatch):
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline())
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    run.overrides = {**run.overrides, "train.steps": 30}  # as if the code resolved differently now
    d = _prepare(spec.output_dir(), run, state="pending")
    with pytest.raises(BenchError, match="changed since"):
        J.run_job(d, executor="debug")
    status = read_status(d)
    assert status["state"] == "failed" and "submit the sweep again" in status["error"]
    assert not (d / rundir.RESULTS).exists()


# ---------------------------------------------------------------- local queue


def test_local_queue_caps_concurrency_assigns_gpus_and_isolates_crashes(tmp_path):
    from bench.harness.localq import LocalQueue

    script = ("import json, os, sys, time; t0 = time.time(); time.sleep(0.4); "
              "json.dump({'start': t0, 'end': time.time(), 'gpu': os.environ.get('CUDA_VISIBLE_DEVICES'), "
              "'pgid': os.getpgid(0), 'pid': os.getpid()}, open(sys.argv[1], 'w')); "
              "sys.exit(3 if sys.argv[1].endswith('item2.json') else 0)")
    items = [str(tmp_path / f"item{i}.json") for i in range(6)]
    queue = LocalQueue(items, cap=2, command=lambda item: [sys.executable, "-c", script, item],
                       log_for=lambda item: Path(item + ".log"), gpus=["0", "1"],
                       state_path=tmp_path / "state.json")
    codes = queue.run(poll_s=0.05)
    assert codes == {item: (3 if item.endswith("item2.json") else 0) for item in items}
    rec = [json.loads(Path(i).read_text()) for i in items]
    assert all(r["pgid"] == r["pid"] for r in rec)  # each run in its own process group
    for r in rec:
        overlapping = [o for o in rec if o["start"] < r["end"] and r["start"] < o["end"]]
        # Never more than the cap at once, and never two runs on one GPU at once.
        assert len(overlapping) <= 2
        assert len({o["gpu"] for o in overlapping}) == len(overlapping)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["done"] and not state["running"] and not state["pending"]


def test_default_local_concurrency(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert X.default_concurrency("auto") == 3
    # CPU: one run per usable core at one thread each, fewer when runs ask for more cores
    monkeypatch.setattr(X, "usable_cpus", lambda: 16)
    assert X.default_concurrency("cpu") == 16
    assert X.default_concurrency("cpu", cpus_per_task=4) == 4
    assert X.default_concurrency("cpu", cpus_per_task=32) == 1
    monkeypatch.setattr(X, "usable_cpus", lambda: 2)
    assert X.default_concurrency("cpu") == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert X.default_concurrency("auto") == 1


def test_usable_cpus_follows_the_affinity_mask():
    import os

    if hasattr(os, "sched_getaffinity"):
        assert X.usable_cpus() == len(os.sched_getaffinity(0))
    assert X.usable_cpus() >= 1


def test_edited_sweep_gets_new_runs_and_keeps_old_directories(write_sweep, monkeypatch):
    monkeypatch.setattr(J, "_pipeline", _fake_pipeline())
    first = write_sweep(variants=["full"])
    assert run_sweep(str(first), report=False, only=["scene=motion_0"]) == 0
    old_ids = set(read_manifest(load_sweep(first).output_dir())["runs"])
    edited = write_sweep(variants=["full"], overrides={"train.steps": 30})
    assert run_sweep(str(edited), report=False, only=["scene=motion_0"]) == 0
    sweep_dir = load_sweep(edited).output_dir()
    manifest = read_manifest(sweep_dir)
    assert not old_ids & set(manifest["runs"]) and len(manifest["runs"]) == 2
    assert all((runs_dir(sweep_dir) / rid / rundir.RESULTS).is_file() for rid in old_ids if "motion_0" in rid)
    assert [len(s["run_ids"]) for s in manifest["submissions"]] == [1, 1]


def test_local_liveness_follows_the_supervisor_state(tmp_path):
    import os

    from bench.harness.localq import proc_start_ticks
    from bench.harness.monitor import Liveness

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = tmp_path / "state.json"
    me = {"pid": os.getpid(), "start": proc_start_ticks(os.getpid())}
    manifest = {"runs": {"a": {"submission": 1}, "b": {"submission": 1}, "c": {"submission": 1}},
                "submissions": [{"id": 1, "executor": "local", "local": {"supervisor": me, "state": str(state)}}]}
    # Before the supervisor's first state file every run counts as queued.
    assert all(Liveness(manifest).alive(r, {}) for r in "abc")
    state.write_text(json.dumps({"pending": [str(tmp_path / "b")], "running": {
        str(tmp_path / "a"): {"pid": dead.pid, "start": 1}, str(tmp_path / "c"): me}}))
    live = Liveness(manifest)
    assert not live.alive("a", {}) and live.alive("b", {}) and live.alive("c", {})
    manifest["submissions"][0]["local"]["supervisor"] = {"pid": dead.pid, "start": 1}
    assert not any(Liveness(manifest).alive(r, {}) for r in "abc")
