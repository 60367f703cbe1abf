"""The harness against a real SLURM cluster (CI starts one with .ci/start_slurm.sh).

Real training with tiny step counts: the smoke sweep end to end (job array visible in squeue,
results, tables and figures), and a fault scenario (a cancelled job resumes from its checkpoint
when the sweep is re-run, a preempted job requeues itself and resumes, a run with a bad data root
fails while the others finish, finished runs stay byte-identical).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench import rundir
from bench.harness.manifest import read_manifest
from bench.rundir import read_status
from bench.sweepdir import runs_dir

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "sweeps" / "smoke.yaml"


def _slurm_problem() -> str | None:
    """Why SLURM cannot be used here, or None when the node answers and accepts jobs."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "sinfo not found (install slurm-wlm; CI runs .ci/start_slurm.sh)"
    except subprocess.TimeoutExpired:
        return "sinfo timed out (slurmctld not answering; run .ci/start_slurm.sh)"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.startswith(("idle", "mix", "alloc")) for s in states):
        return f"no usable SLURM node (sinfo: {out.stdout.strip() or out.stderr.strip()}); run .ci/start_slurm.sh"
    return None


pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _need_slurm():
    problem = _slurm_problem()
    if problem:
        pytest.skip(f"SLURM cannot be reached: {problem}")


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def _squeue(name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-r", "--me", "-o", "%i|%j|%T"], capture_output=True, text=True,
                         timeout=60).stdout
    return [line for line in out.splitlines() if line.split("|")[1:2] == [name]]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_smoke_sweep_end_to_end_on_slurm(tmp_path):
    out_root = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "sweep", str(SMOKE), "--executor", "slurm",
                             "--output-root", str(out_root)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # While it runs, the job array's tasks are visible in squeue.
    seen: list[str] = []
    while proc.poll() is None and not any("_" in line.split("|")[0] for line in seen):
        seen = _squeue("bench-smoke")
        time.sleep(0.5)
    output = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, output
    array_tasks = [line for line in seen if "_" in line.split("|")[0]]
    assert array_tasks, f"no array task of bench-smoke seen in squeue; output:\n{output}"

    sweep_dir = out_root / "smoke"
    manifest = read_manifest(sweep_dir)
    (submission,) = manifest["submissions"]
    assert submission["executor"] == "slurm"
    (job,) = submission["jobs"]  # one resource setting -> one array
    assert array_tasks[0].split("_")[0] == job["job_id"]
    assert len(manifest["runs"]) == 4
    for run_id, info in manifest["runs"].items():
        run_dir = runs_dir(sweep_dir) / run_id
        results = json.loads((run_dir / rundir.RESULTS).read_text())
        config = yaml.safe_load((run_dir / rundir.CONFIG).read_text())
        assert results["config_hash"] == config["config_hash"] == info["config_hash"]
        assert run_id.endswith(results["config_hash"][:8])
        slurm = results["provenance"]["slurm"]
        assert slurm["array_job_id"] == job["job_id"] and info["job_id"].startswith(job["job_id"] + "_")
        assert results["provenance"]["wall_time_s"] > 0 and results["provenance"]["peak_memory"]["cpu_rss"] > 0
        assert results["metrics"]["aggregate"]["psnr"] > 0
        assert read_status(run_dir)["state"] == "done"
    for name in ("results.csv", "results.parquet", "report.html"):
        assert (sweep_dir / name).is_file(), output
    assert any((sweep_dir / "tables").iterdir()) and any((sweep_dir / "figures").iterdir())
    assert "summary: 4 done, 0 failed" in output

    # Re-running submits nothing and leaves results untouched; status reattaches from the manifest.
    before = {rid: (runs_dir(sweep_dir) / rid / rundir.RESULTS).read_bytes() for rid in manifest["runs"]}
    again = _bench("sweep", str(SMOKE), "--executor", "slurm", "--output-root", str(out_root), "--no-report",
                   cwd=tmp_path)
    assert again.returncode == 0 and "4 finished, 0 to run" in again.stdout, again.stdout + again.stderr
    assert len(read_manifest(sweep_dir)["submissions"]) == 1
    assert before == {rid: (runs_dir(sweep_dir) / rid / rundir.RESULTS).read_bytes() for rid in manifest["runs"]}
    status = _bench("status", str(sweep_dir), "--all", cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("done ") == 4, status.stdout


def _fault_sweep(tmp_path: Path) -> Path:
    """3 no_blur runs on synthetic scenes: a bad data root (defocus_0), a victim long enough to be
    killed mid-run (800 steps: SLURM's KillWait lets it go on for a few seconds after scancel, and
    with the compiled kernels a no_blur step takes about 20 ms), and a 400-step run to preempt."""
    not_a_dir = tmp_path / "not_a_dir"
    not_a_dir.write_text("a file where a data root should be\n")
    doc = {"name": "fault", "output_root": str(tmp_path / "out"), "profile": "cpu", "variants": ["no_blur"],
           "datasets": [{"name": "synthetic", "scenes": ["defocus_0"], "data_root": str(not_a_dir / "data")},
                        {"name": "synthetic", "scenes": ["motion_0"], "overrides": {"train.steps": 800}},
                        {"name": "synthetic", "scenes": ["motion_1"]}],
           "overrides": {"train.steps": 400, "train.checkpoint_every": 10, "train.log_every": 5},
           "executor": {"kind": "slurm", "device": "cpu",
                        "resources": {"cpus_per_task": 1, "time_min": 30, "array_parallelism": 2}}}
    path = tmp_path / "fault.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_cancel_preempt_and_failure_on_slurm(tmp_path):
    path = _fault_sweep(tmp_path)
    sweep_dir = tmp_path / "out" / "fault"
    # --skip-data-check: the bad data root is the point (bench sweep would refuse it otherwise).
    first = subprocess.Popen([sys.executable, "-m", "bench.cli", "sweep", str(path), "--no-report",
                              "--skip-data-check"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    manifest = _wait(lambda: (m := read_manifest(sweep_dir)) and m["submissions"] and
                     m["submissions"][0].get("jobs") and m, 120, "the submission")
    runs = {info["scene"]: (rid, info) for rid, info in manifest["runs"].items()}
    bad, victim, preempted = runs["defocus_0"], runs["motion_0"], runs["motion_1"]
    victim_dir, preempted_dir = runs_dir(sweep_dir) / victim[0], runs_dir(sweep_dir) / preempted[0]

    # Kill the victim's job after its first checkpoint: the sweep then reports it interrupted.
    _wait(lambda: rundir.latest_checkpoint(victim_dir), 300, "a checkpoint of the victim")
    subprocess.run(["scancel", victim[1]["job_id"]], check=True)
    # Preempt the other one (USR2, as SLURM does before a time limit): submitit calls
    # RunJob.checkpoint and requeues the task, which resumes from its checkpoint.
    _wait(lambda: rundir.latest_checkpoint(preempted_dir), 300, "a checkpoint of the preempted run")
    subprocess.run(["scancel", "--signal=USR2", preempted[1]["job_id"]], check=True)
    _wait(lambda: read_status(preempted_dir).get("state") in ("requeued", "done"), 60, "the requeue")
    assert read_status(preempted_dir)["state"] == "requeued", read_status(preempted_dir)
    # SLURM delays a requeued job's start by two minutes; let it start now.
    subprocess.run(["scontrol", "update", f"JobId={preempted[1]['job_id']}", "StartTime=now"], check=True)
    output = first.communicate(timeout=600)[0]
    assert first.returncode == 1, output
    assert f"failed: {bad[0]}" in output and f"interrupted: {victim[0]}" in output, output

    failed = read_status(runs_dir(sweep_dir) / bad[0])
    assert failed["state"] == "failed" and "not_a_dir" in failed["error"] and failed["job_log"], failed
    assert "Traceback" in Path(failed["job_log"]).read_text()
    pre = read_status(preempted_dir)
    assert pre["state"] == "done" and pre["attempt"] == 2 and pre["resumed_from_step"] >= 10, (pre, output)
    assert pre["requeued_from_step"] >= 10
    assert not (victim_dir / rundir.RESULTS).exists()
    interrupted_step = int(rundir.latest_checkpoint(victim_dir).stem.split("_")[1])
    finished_files = _hashes(preempted_dir)

    # Re-run: only the interrupted run is submitted; it resumes; the failed one stays failed.
    second = _bench("sweep", str(path), "--no-report", cwd=tmp_path)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "1 finished, 1 to run (1 resume), 0 to retry" in second.stdout
    assert "1 failed, skipped (use --retry-failed)" in second.stdout
    manifest = read_manifest(sweep_dir)
    assert manifest["submissions"][-1]["run_ids"] == [victim[0]]
    status = read_status(victim_dir)
    assert status["state"] == "done" and status["resumed_from_step"] >= interrupted_step > 0, (
        status, second.stdout, second.stderr)
    log = Path(status["job_log"]).read_text()
    assert f"resuming from checkpoint step {status['resumed_from_step']}" in log
    assert json.loads((victim_dir / rundir.RESULTS).read_text())["provenance"]["resumed_from_step"] > 0
    assert _hashes(preempted_dir) == finished_files


def test_cancel_a_slurm_sweep(tmp_path):
    doc = yaml.safe_load(SMOKE.read_text())
    doc.update(name="cancelme", output_root=str(tmp_path / "out"), variants=["no_blur"])
    doc["overrides"]["train.steps"] = 2000
    doc["executor"]["resources"]["array_parallelism"] = 1
    path = tmp_path / "cancelme.yaml"
    path.write_text(yaml.safe_dump(doc))
    sub = _bench("sweep", str(path), "--executor", "slurm", "--no-wait", cwd=tmp_path)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    sweep_dir = tmp_path / "out" / "cancelme"
    (job,) = read_manifest(sweep_dir)["submissions"][0]["jobs"]
    _wait(lambda: any(line.endswith("RUNNING") for line in _squeue("bench-cancelme")), 120, "a running task")
    cancel = _bench("cancel", str(sweep_dir), cwd=tmp_path)
    assert cancel.returncode == 0 and f"scancel {job['job_id']}" in cancel.stdout, cancel.stdout + cancel.stderr
    assert _squeue("bench-cancelme") == []
    for run_id in job["run_ids"]:
        assert read_status(runs_dir(sweep_dir) / run_id)["state"] == "cancelled"
    status = _bench("status", str(sweep_dir), cwd=tmp_path)
    assert status.returncode == 1 and status.stdout.count("interrupted: ") == 2, status.stdout
