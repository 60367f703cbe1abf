"""Executors without a cluster: SLURM arrays per resource setting, submission parameters,
the local queue, dry runs, edited sweeps."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import rundir
from bench.cli import main
from bench.errors import BenchError
from bench.harness.executors import local as XL
from bench.harness.executors import slurm as X
from bench.harness.executors.registry import pick_executor
from bench.harness import job as J
from bench.harness.manifest import read_manifest
from bench.harness.runs import expand
from bench.rundir import read_status
from bench.sweepdir import runs_dir
from bench.harness.spec import load_sweep
from bench.harness.sweep import run_sweep

from harness_fakes import fake_pipeline, prepare_run


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
    assert pick_executor("auto").kind == "local"
    with pytest.raises(BenchError, match="sbatch not found"):
        pick_executor("slurm")
    monkeypatch.setattr(X.shutil, "which", lambda name: "/usr/bin/sbatch")
    assert pick_executor("auto").kind == "slurm"
    assert pick_executor("debug").kind == "debug"


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
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    run.overrides = {**run.overrides, "train.steps": 30}  # as if the code resolved differently now
    d = prepare_run(spec.output_dir(), run, state="pending")
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
    assert XL.default_concurrency("auto") == 3
    # CPU: one run per usable core at one thread each, fewer when runs ask for more cores
    monkeypatch.setattr(XL, "usable_cpus", lambda: 16)
    assert XL.default_concurrency("cpu") == 16
    assert XL.default_concurrency("cpu", cpus_per_task=4) == 4
    assert XL.default_concurrency("cpu", cpus_per_task=32) == 1
    monkeypatch.setattr(XL, "usable_cpus", lambda: 2)
    assert XL.default_concurrency("cpu") == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert XL.default_concurrency("auto") == 1


def test_usable_cpus_follows_the_affinity_mask():
    import os

    if hasattr(os, "sched_getaffinity"):
        assert XL.usable_cpus() == len(os.sched_getaffinity(0))
    assert XL.usable_cpus() >= 1


def test_edited_sweep_gets_new_runs_and_keeps_old_directories(write_sweep, monkeypatch):
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    first = write_sweep(variants=["full"])
    assert run_sweep(str(first), report=None, only=["scene=motion_0"]) == 0
    old_ids = set(read_manifest(load_sweep(first).output_dir())["runs"])
    edited = write_sweep(variants=["full"], overrides={"train.steps": 30})
    assert run_sweep(str(edited), report=None, only=["scene=motion_0"]) == 0
    sweep_dir = load_sweep(edited).output_dir()
    manifest = read_manifest(sweep_dir)
    assert not old_ids & set(manifest["runs"]) and len(manifest["runs"]) == 2
    assert all((runs_dir(sweep_dir) / rid / rundir.RESULTS).is_file() for rid in old_ids if "motion_0" in rid)
    assert [len(s["run_ids"]) for s in manifest["submissions"]] == [1, 1]


def test_the_manifest_records_the_plan_the_report_reads(write_sweep, monkeypatch):
    """reference, variants and planned scenes (of the whole expansion, not just --only's runs) go
    into the manifest, so the report needs the sweep directory only."""
    from bench.report.collect import planned_scenes, sweep_reference

    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    path = write_sweep(reference="no_blur")
    assert run_sweep(str(path), report=None, only=["scene=motion_0", "variant=full"]) == 0
    sweep_dir = load_sweep(path).output_dir()
    manifest = read_manifest(sweep_dir)
    assert (manifest["reference"], manifest["variants"]) == ("no_blur", ["full", "no_blur"])
    assert manifest["scenes"] == {"synthetic": ["motion_0", "defocus_0"]}
    path.unlink()  # the report never reads the sweep file
    assert sweep_reference(sweep_dir) == "no_blur"
    assert planned_scenes(sweep_dir) == {"synthetic": [("motion_0", "motion"), ("defocus_0", "defocus")]}


def test_local_liveness_follows_the_supervisor_state(tmp_path):
    import os

    from bench.harness.procs import proc_start_ticks
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


def test_a_local_queue_of_cpu_runs_loads_the_compiled_kernels_once_first(write_sweep, monkeypatch, capsys):
    """So that no run's wall time (which the estimates read) holds the one build of the CPU kernels."""
    from bench.harness import gsplat_build

    children = []
    monkeypatch.setattr(gsplat_build.subprocess, "run", lambda cmd, env: children.append(cmd))
    runs = expand(load_sweep(write_sweep()))
    gsplat_build.prebuild_cpu_local(runs, [], {})
    assert len(children) == 1 and "cpu_ext.load()" in children[0][-1]
    assert "compiled CPU kernels: ready" in capsys.readouterr().out
    gsplat_build.prebuild_cpu_local(runs, [], {"BENCH_RENDER_COMPILED": "0"})
    gsplat_build.prebuild_cpu_local([dataclasses.replace(r, device="auto") for r in runs], ["0"], {})
    assert len(children) == 1
