"""Planning: finished, failed, interrupted, in-flight and stale runs; skip, retry, force."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.harness import plan as P
from bench.harness.runs import RunLock, expand
from bench.harness.spec import load_sweep

from harness_fakes import finish_run, prepare_run


# ---------------------------------------------------------------- planning


def test_plan_skip_retry_force(write_sweep, tmp_path):
    spec = load_sweep(write_sweep(seeds=[0, 1, 2]))
    sweep_dir = spec.output_dir()
    runs = expand(spec)
    finished, failed, interrupted, active, new = runs[0], runs[1], runs[2], runs[3], runs[4]
    finish_run(prepare_run(sweep_dir, finished, state="done"), finished)
    prepare_run(sweep_dir, failed, state="failed", error="boom")
    prepare_run(sweep_dir, interrupted, state="running")  # its process is gone: lock free
    lock = RunLock(prepare_run(sweep_dir, active, state="running"))
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
    d = prepare_run(spec.output_dir(), run, state="done")
    finish_run(d, run, chash="0" * 16)
    with pytest.raises(BenchError, match="different configuration.*--force"):
        P.make_plan([run], spec.output_dir())
    plan = P.make_plan([run], spec.output_dir(), force=True)
    assert plan.to_archive == [run]


def test_alive_job_counts_as_in_flight(write_sweep):
    spec = load_sweep(write_sweep())
    run = expand(spec)[0]
    prepare_run(spec.output_dir(), run, state="pending")
    assert P.make_plan([run], spec.output_dir()).states[run.run_id] == P.INTERRUPTED
    plan = P.make_plan([run], spec.output_dir(), alive=lambda rid, st: rid == run.run_id)
    assert plan.states[run.run_id] == P.ACTIVE and not plan.to_submit
