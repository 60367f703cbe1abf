"""Two submissions of one sweep at once: a run held by another live submission is running (not
interrupted), is followed to its end and counted by its outcome; the holder is named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from bench import rundir
from bench.cli import main
from bench.harness import monitor as M
from bench.harness.procs import proc_start_ticks
from bench.harness.manifest import SUBMIT_LOCK, read_manifest, submission_in_progress, submitting
from bench.harness.runs import RunLock, expand, holder_alive, lock_holder, write_job
from bench.rundir import read_status, write_status
from bench.sweepdir import runs_dir
from bench.harness.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "sweeps" / "smoke.yaml"


def _squeue(states):
    """A SLURM executor whose last squeue answer was ``states`` (None: no answer yet), as its holds."""
    from bench.harness.executors.slurm import SlurmExecutor

    executor = SlurmExecutor("slurm")
    executor.squeue, executor.known = states or {}, states is not None
    return executor.holds


def _dead_process() -> dict:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {"pid": proc.pid, "start": 1}


def _me() -> dict:
    return {"pid": os.getpid(), "start": proc_start_ticks(os.getpid())}


# ---------------------------------------------------------------- lock holder records


def test_lock_records_its_holder_and_clears_it_on_release(tmp_path):
    lock = RunLock(tmp_path)
    assert lock.acquire()
    holder = lock_holder(tmp_path)
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["start"] == proc_start_ticks(os.getpid()) and holder_alive(holder)
    lock.release()
    assert lock_holder(tmp_path) is None
    # A holder that died without releasing: its record stays, but names no live process.
    assert not holder_alive({**holder, **_dead_process()})
    # Elsewhere: alive while squeue lists its SLURM task.
    remote = {"pid": 7, "host": "node-elsewhere", "start": 1, "slurm_job": "123_4"}
    assert holder_alive(remote, _squeue({"123_4": "RUNNING"})) and not holder_alive(remote, _squeue({"99": "RUNNING"}))
    assert not holder_alive(remote, _squeue(None))
    (tmp_path / ".lock").write_text(f"{os.getpid()} {socket.gethostname()}\n")  # the record of older versions
    assert lock_holder(tmp_path)["pid"] == os.getpid() and holder_alive(lock_holder(tmp_path))


# ---------------------------------------------------------------- liveness over several submissions


def _manifest(tmp_path, subs, latest=2):
    return {"runs": {r: {"submission": latest, "config_hash": "x"} for r in "ab"}, "submissions": subs}


def test_a_run_held_by_an_older_live_submission_is_alive(tmp_path):
    state = tmp_path / "state1.json"
    state.write_text(json.dumps({"pending": [str(tmp_path / "a")], "running": {}}))
    older = {"id": 1, "executor": "local", "run_ids": ["a", "b"], "host": socket.gethostname(),
             "local": {"supervisor": _me(), "state": str(state)}}
    newer = {"id": 2, "executor": "local", "run_ids": ["a", "b"], "host": socket.gethostname(),
             "local": {"supervisor": _dead_process(), "state": str(tmp_path / "none.json")}}
    live = M.Liveness(_manifest(tmp_path, [older, newer]))
    # The run's latest submission (2) is gone, but submission 1 still has "a" queued.
    assert live.alive("a", {}) and live.holding_submission("a")["id"] == 1
    assert not live.alive("b", {}) and live.holding_submission("b") is None


def test_a_submission_being_made_holds_its_runs(tmp_path):
    """The race of the issue: a follower reads the manifest while another ``bench sweep`` has
    recorded its submission but not yet started its queue (no "local" record yet)."""
    sub = {"id": 2, "executor": "local", "run_ids": ["a", "b"], "host": socket.gethostname(),
           "state": "submitting", "submitter": {**_me(), "host": socket.gethostname()}}
    assert M.Liveness(_manifest(tmp_path, [sub])).job_state("a") == "SUBMITTING"
    sub["submitter"].update(_dead_process())  # its submitter died before finishing
    assert not M.Liveness(_manifest(tmp_path, [sub])).alive("a", {})
    sub["submitter"]["host"] = "login-elsewhere"  # elsewhere: alive while it holds the submission lock
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(_manifest(tmp_path, [sub])))
    assert not M.Liveness(None, tmp_path / "m").alive("a", {})
    with submitting(tmp_path / "m"):
        assert submission_in_progress(tmp_path / "m")
        assert M.Liveness(None, tmp_path / "m").alive("a", {})
    assert not submission_in_progress(tmp_path / "m") and (tmp_path / "m" / SUBMIT_LOCK).read_text() == ""


def test_liveness_rereads_the_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"runs": {"a": {"submission": 1}}, "submissions": []}))
    live = M.Liveness(None, tmp_path)
    assert not live.alive("a", {})
    state = tmp_path / "state.json"
    (tmp_path / "manifest.json").write_text(json.dumps({"runs": {"a": {"submission": 1}}, "submissions": [
        {"id": 1, "executor": "local", "run_ids": ["a"], "local": {"supervisor": _me(), "state": str(state)}}]}))
    live.refresh()
    assert live.alive("a", {})


# ---------------------------------------------------------------- a run held by a live process


HOLDER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from bench.harness.runs import RunLock
    from bench.rundir import write_status
    run_dir, chash, hold_s = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    lock = RunLock(run_dir)
    assert lock.acquire()
    write_status(run_dir, state="running")
    print("holding", flush=True)
    time.sleep(hold_s)
    (run_dir / "results.json").write_text(json.dumps({"config_hash": chash}))
    write_status(run_dir, state="done")
    lock.release()
""")


def test_second_submission_follows_a_run_another_live_submission_holds(write_sweep, tmp_path, capsys):
    """As if another ``bench sweep`` (submission 1, a local queue here) trains the run: this one
    submits nothing, names the holder, follows it to its end and exits 0 with the run done."""
    path = write_sweep(variants=["no_blur"], datasets=[{"name": "synthetic", "scenes": ["motion_0"]}])
    spec = load_sweep(path)
    (run,) = expand(spec)
    sweep_dir = spec.output_dir()
    run_dir = runs_dir(sweep_dir) / run.run_id
    run_dir.mkdir(parents=True)
    write_job(run_dir, run)
    write_status(run_dir, state="pending", submission=1)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir), run.config_hash, "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        state = sweep_dir / "local" / "sub-0001.state.json"
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"pending": [], "running": {str(run_dir): {
            "pid": holder.pid, "start": proc_start_ticks(holder.pid)}}}))
        (sweep_dir / "manifest.json").write_text(json.dumps({
            "sweep": spec.name, "runs": {run.run_id: {"submission": 1, "config_hash": run.config_hash}},
            "submissions": [{"id": 1, "executor": "local", "host": socket.gethostname(), "time": "earlier",
                             "run_ids": [run.run_id], "state": "submitted", "local": {
                                 "supervisor": {"pid": holder.pid, "start": proc_start_ticks(holder.pid)},
                                 "state": str(state)}}]}))
        assert main(["status", str(sweep_dir)]) == 0
        out = capsys.readouterr().out
        assert f"running       {run.run_id}" in out
        assert f"[pid {holder.pid} on {socket.gethostname()}" in out and "submission 1 (local" in out
        t0 = time.monotonic()
        assert main(["sweep", str(path), "--no-report"]) == 0
        out = capsys.readouterr().out
        assert time.monotonic() - t0 > 1.0  # it followed the holder, not a false "interrupted"
        assert "nothing to submit" in out
        assert f"in flight: 1 run(s) of submission 1 (local, supervisor pid {holder.pid}" in out
        assert "summary: 1 done, 0 failed" in out and "interrupted" not in out.split("summary:")[1]
    finally:
        holder.kill()
        holder.wait()
    assert len(read_manifest(sweep_dir)["submissions"]) == 1


def test_run_locked_by_a_dead_holder_is_interrupted(write_sweep, capsys):
    path = write_sweep(variants=["no_blur"], datasets=[{"name": "synthetic", "scenes": ["motion_0"]}])
    spec = load_sweep(path)
    (run,) = expand(spec)
    run_dir = runs_dir(spec.output_dir()) / run.run_id
    run_dir.mkdir(parents=True)
    write_job(run_dir, run)
    write_status(run_dir, state="running")
    (run_dir / ".lock").write_text(json.dumps({**_dead_process(), "host": socket.gethostname()}))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert f"would run {run.run_id} [interrupted]" in capsys.readouterr().out


# ---------------------------------------------------------------- two real local submissions


SLOW_SUBMIT = textwrap.dedent("""
    import sys, time
    from bench.harness.executors import local as X
    start = X.LocalExecutor.submit
    def slow(*args, **kwargs):  # a slow login node: 2 s between recording the submission and its queue
        time.sleep(2.0)
        return start(*args, **kwargs)
    X.LocalExecutor.submit = slow
    from bench.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_two_local_submissions_of_one_sweep_at_once(tmp_path):
    """``bench sweep FILE --executor local`` twice, a second apart (the first one slow to start its
    queue, which made the second, or the first, report every run "interrupted" within a second):
    both follow the same runs to the end and exit 0; each run trains once."""
    doc = yaml.safe_load(SMOKE.read_text())
    doc.update(output_root=str(tmp_path / "out"), variants=["no_blur"])
    doc["overrides"].update({"train.steps": 10, "train.checkpoint_every": 5})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    argv = [sys.executable, "-c", SLOW_SUBMIT, "sweep", str(path), "--executor", "local", "--no-report"]
    first = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    second = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out1, _ = first.communicate(timeout=900)
    out2, _ = second.communicate(timeout=900)
    assert first.returncode == 0, out1
    assert second.returncode == 0, out2
    for out in (out1, out2):
        assert "summary: 2 done, 0 failed" in out and "interrupted:" not in out, out
    assert "nothing to submit" in out2 and "in flight: 2 run(s) of submission 1" in out2, out2
    sweep_dir = tmp_path / "out" / "smoke"
    manifest = read_manifest(sweep_dir)
    assert [s["state"] for s in manifest["submissions"]] == ["submitted"]
    for run_id in manifest["runs"]:
        run_dir = runs_dir(sweep_dir) / run_id
        assert (run_dir / rundir.RESULTS).is_file() and read_status(run_dir)["state"] == "done"
        assert (run_dir / "job.log").read_text().count("attempt ") == 1  # trained once
