"""The local executor with real (tiny) training: a detached queue that outlives the submitting
shell, ``bench status`` reattaching to it, and ``bench cancel`` stopping its process groups."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench import rundir
from bench.harness.procs import same_process
from bench.harness.manifest import read_manifest
from bench.rundir import read_status
from bench.sweepdir import runs_dir

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "sweeps" / "smoke.yaml"

pytestmark = pytest.mark.slow


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_no_wait_then_status_reattaches_and_collects(tmp_path):
    out_root = tmp_path / "out"
    sub = _bench("sweep", str(SMOKE), "--executor", "local", "--only", "variant=no_blur", "--no-wait",
                 "--output-root", str(out_root), cwd=tmp_path)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert "at most 2 at once" in sub.stdout and "bench status" in sub.stdout
    sweep_dir = out_root / "smoke"
    # The submitting process is gone; a new one follows the detached queue to the end.
    watch = _bench("status", str(sweep_dir), "--watch", cwd=tmp_path)
    assert watch.returncode == 0, watch.stdout + watch.stderr
    assert "summary: 2 done, 0 failed, 2 not submitted" in watch.stdout
    manifest = read_manifest(sweep_dir)
    local = manifest["submissions"][0]["local"]
    assert local["max_concurrent"] == 2 and not same_process(local["supervisor"])
    for run_id in manifest["submissions"][0]["run_ids"]:
        run_dir = runs_dir(sweep_dir) / run_id
        assert json.loads((run_dir / rundir.RESULTS).read_text())["provenance"]["executor"] == "local"
        status = read_status(run_dir)
        assert status["state"] == "done" and Path(status["job_log"]).is_file()
    assert (sweep_dir / "report.html").is_file()


def test_cancel_stops_local_runs_and_they_resume_later(tmp_path):
    doc = yaml.safe_load(SMOKE.read_text())
    doc.update(output_root=str(tmp_path / "out"), variants=["no_blur"])
    doc["datasets"][0]["scenes"] = ["motion_0"]
    doc["overrides"]["train.steps"] = 2000
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert _bench("sweep", str(path), "--executor", "local", "--no-wait", cwd=tmp_path).returncode == 0
    sweep_dir = tmp_path / "out" / "smoke"
    (run_id,) = read_manifest(sweep_dir)["runs"]
    run_dir = runs_dir(sweep_dir) / run_id
    deadline = time.monotonic() + 120
    while read_status(run_dir).get("state") != "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    running = _bench("status", str(sweep_dir), cwd=tmp_path)
    assert f"running       {run_id}" in running.stdout, running.stdout
    local = read_manifest(sweep_dir)["submissions"][0]["local"]
    child = json.loads(Path(local["state"]).read_text())["running"][str(run_dir)]
    assert same_process(local["supervisor"]) and same_process(child)

    cancel = _bench("cancel", str(sweep_dir), cwd=tmp_path)
    assert cancel.returncode == 0 and "stopped 1 local queue" in cancel.stdout, cancel.stdout + cancel.stderr
    assert not same_process(local["supervisor"]) and not same_process(child)
    assert read_status(run_dir)["state"] == "cancelled"
    assert not (run_dir / rundir.RESULTS).exists()
    after = _bench("status", str(sweep_dir), cwd=tmp_path)
    assert after.returncode == 1 and f"interrupted: {run_id}: cancelled" in after.stdout
    plan = _bench("sweep", str(path), "--dry-run", cwd=tmp_path)
    assert "1 to run (1 resume)" in plan.stdout and f"would run {run_id} [interrupted]" in plan.stdout
