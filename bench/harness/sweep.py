"""``bench sweep``, ``bench status``, ``bench cancel``: plan, submit, follow, collect.

The sweep's output directory is laid out by :mod:`bench.sweepdir`; the report at the end is built
by the builder the CLI floor passes in (``report``), so the harness never imports the report.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from bench import rundir, sweepdir
from bench.errors import BenchError
from bench.harness import estimate, monitor
from bench.harness.executors import Executor, Submission, pick_executor
from bench.harness import sweep_index
from bench.harness.manifest import SUBMITTED, SUBMITTING, submitting, updating
from bench.harness.plan import archive_run, make_plan
from bench.harness.preflight import check_data
from bench.harness.procs import this_process
from bench.harness.progress import SweepProgress
from bench.harness.states import IN_FLIGHT, SubmissionState
from bench.harness.runs import CANCELLED, FAILED, PENDING, RunSpec, expand, parse_only, select, write_job
from bench.harness.spec import load_sweep, parse_sweep, variant_names
from bench.rundir import read_status, write_status
from bench.sweepdir import MANIFEST, manifest_path, not_a_sweep, plan_fields, runs_dir


def resolve_sweep_dir(arg: str, output_root: str | None = None) -> Path:
    """A sweep YAML -> its output directory; a directory -> itself.

    A file's output is ``<output_root>/<name>`` from the current folder (``output_root``: the
    argument, else the file's). When no sweep lies there and no root was given, the newest output
    ``bench sweep`` recorded for the file (:mod:`bench.harness.sweep_index`) is used, with a note."""
    path = Path(arg)
    if path.is_dir():
        return path.absolute()
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        raise BenchError(f"{arg}: neither a sweep file (.yaml) nor a sweep output directory")
    here = parse_sweep(path).output_dir(output_root)
    if output_root is not None or manifest_path(here).is_file():
        return here
    recorded = sweep_index.outputs_of(path)
    if recorded:
        print(f"note: {arg}: output at {recorded[0]}, where `bench sweep` put it (none at {here}: a relative "
              "output_root is resolved against the folder bench runs in)", file=sys.stderr)
        return recorded[0]
    return here


def sweep_with_manifest(arg: str, output_root: str | None = None) -> tuple[Path, dict]:
    """The output directory of a sweep file or directory and its manifest; BenchError naming the
    folder searched (and, for a file, how it was found) when no sweep is there."""
    sweep_dir = resolve_sweep_dir(arg, output_root)
    manifest = sweepdir.read_manifest(sweep_dir)  # an unreadable manifest is an error of its own
    if manifest is None:
        raise BenchError(no_sweep_message(arg, sweep_dir, output_root))
    return sweep_dir, manifest


def no_sweep_message(arg: str, sweep_dir: Path, output_root: str | None) -> str:
    """Why ``arg`` names no sweep output: the folder searched and where else to look; it never
    suggests submitting, since the runs may exist where this shell cannot see them."""
    if Path(arg).is_dir():
        return not_a_sweep(sweep_dir)
    how = (f"--output-root {output_root}" if output_root is not None
           else f"the file's output_root resolved against the current folder {Path.cwd()}")
    return (f"{sweep_dir}: no sweep there (no {MANIFEST}); searched {how}, and this machine has no record "
            f"of {arg} submitted elsewhere: give the sweep's output directory, or --output-root as it was "
            "submitted")


# Builds a sweep's report and returns an exit code. The CLI layer passes bench.report's builder
# (bench.cli.sweep), so that the harness itself never imports the report.
ReportBuilder = Callable[[Path], int]


def _print(msg: str) -> None:
    print(msg, flush=True)


def run_sweep(path: str, *, executor: str | None = None, dry_run: bool = False,
              retry_failed: bool = False, force: bool = False, only: list[str] | None = None,
              no_wait: bool = False, output_root: str | None = None,
              max_concurrent: int | None = None, report: ReportBuilder | None = None, poll_s: float = 3.0,
              skip_data_check: bool = False) -> int:
    """Validate, plan, check the data, submit and (unless ``no_wait``) follow a sweep; returns the
    exit code.

    The data of every run to submit is checked first (:mod:`bench.harness.preflight`; skipped with
    ``skip_data_check``): missing or broken scenes refuse the submission (exit 2, nothing written).
    Planning and submitting happen under the sweep's submission lock, so a second ``bench sweep``
    of the same sweep waits for the first to record its submission and then follows its runs.
    """
    spec = load_sweep(path)
    chosen = pick_executor(executor or spec.executor.kind)
    kind = chosen.kind
    sweep_dir = spec.output_dir(output_root)
    runs = expand(spec)
    selected = select(runs, parse_only(only))
    plan = _plan(selected, sweep_dir, retry_failed, force)
    _print(f"sweep {spec.name} -> {sweep_dir}")
    _print(f"plan: {plan.summary()}; executor {kind}")
    data = None if skip_data_check else check_data(plan.to_submit)
    if dry_run:
        return _dry_run(plan, data, sweep_dir, chosen, max_concurrent or spec.executor.max_concurrent,
                        spec.executor.device)
    if data is not None and not data.ok:
        return _refuse(data)
    with submitting(sweep_dir, say=_print):
        # Again under the lock: another submission of this sweep may have been recorded meanwhile.
        again = _plan(selected, sweep_dir, retry_failed, force)
        if again.summary() != plan.summary():
            _print(f"plan now: {again.summary()}")
        plan = again
        if data is not None:
            data.add(plan.to_submit)
            if not data.ok:
                return _refuse(data)
        with updating(sweep_dir, spec.name, str(Path(path).absolute())) as manifest:
            # The current expansion of the file; runs of an edited file's older configs drop out
            # here (their directories and the submission history stay).
            old = manifest["runs"]
            manifest["runs"] = {run.run_id: {**old.get(run.run_id, {}), "variant": run.variant,
                                             "dataset": run.dataset, "scene": run.scene, "seed": run.seed,
                                             "config_hash": run.config_hash} for run in runs}
            manifest.update(plan_fields(spec.reference, variant_names(spec), runs))
        _record_output(path, sweep_dir)
        if plan.to_submit:
            for run in plan.to_archive:
                _print(f"  archived {run.run_id} -> {archive_run(sweep_dir, run.run_id)}")
            submission = _submit(sweep_dir, spec.name, path, chosen, plan.to_submit,
                                 max_concurrent or spec.executor.max_concurrent, spec.executor.device)
    if not plan.to_submit:
        # Runs still in flight from an earlier (or a concurrent) submission are followed like new
        # ones, and counted by their outcome.
        _print("nothing to submit")
        live = monitor.Liveness(None, sweep_dir)
        for line in monitor.in_flight_lines(sweep_dir, live, [r.run_id for r in selected]):
            _print(line)
        return _finish(sweep_dir, [r.run_id for r in selected], None if no_wait else report, poll_s,
                       follow=not no_wait)
    # An in-process executor runs the jobs now, outside the submission lock; nothing to follow then.
    chosen.run_now(submission, lambda run, state: _print(f"{run.run_id}: {state}"))
    if no_wait and not chosen.in_process:
        _print(f"submitted {len(plan.to_submit)} runs; follow with: bench status {sweep_dir} --watch")
        return 0
    code = _finish(sweep_dir, [r.run_id for r in selected], report, poll_s, follow=not chosen.in_process)
    chosen.finish()
    return code


def _dry_run(plan, data, sweep_dir: Path, chosen: Executor, max_concurrent: int | None, device: str) -> int:
    """Print the data check, the runs to submit, and how long and how much disk they would take;
    exit 2 when the submission would be refused (as it would be), else 0."""
    for line in (data.summary_lines() if data else ["data: not checked (--skip-data-check)"]):
        _print(line)
    lacking = data.runs_without_data() if data else set()
    for run in plan.to_submit:
        _print(f"  would run {run.run_id} [{plan.states[run.run_id]}]"
               + (" (its data is missing)" if run.run_id in lacking else ""))
    _print(f"runs to submit: {len(plan.to_submit)}")
    if plan.to_submit:
        measured = estimate.measured_runs([sweep_dir])
        costs = [estimate.run_cost(run.variant, run.dataset, estimate.planned_steps(run.job_dict()) or 0,
                                   estimate.resource_class(run.resources.model_dump(), run.device), measured)
                 for run in plan.to_submit]
        for line in estimate.estimate(costs, chosen.concurrency(plan.to_submit, max_concurrent, device)).lines():
            _print(line)
    if lacking:
        print(f"bench sweep: error: a submission would be refused: {len(lacking)} of {len(plan.to_submit)} "
              "runs to submit lack their data (see above; --skip-data-check submits anyway)",
              file=sys.stderr, flush=True)
        return 2
    return 0


def _record_output(path: str, sweep_dir: Path) -> None:
    """Remember where this sweep file's output went (bench.harness.sweep_index); a machine where
    that cannot be written loses only the lookup from other folders, not the sweep."""
    try:
        sweep_index.record(path, sweep_dir)
    except OSError as err:
        _print(f"note: {sweep_index.index_path()}: not recorded ({err}); from other folders, name the "
               f"output directory {sweep_dir}")


def _plan(selected: list[RunSpec], sweep_dir: Path, retry_failed: bool, force: bool):
    live = monitor.Liveness(None, sweep_dir)  # reads the manifest
    return make_plan(selected, sweep_dir, retry_failed=retry_failed, force=force, alive=live.alive)


def _refuse(data) -> int:
    """One line per dataset lacking data, a hint, exit code 2 (nothing was written)."""
    for line in data.refusal_lines():
        print(f"bench sweep: error: {line}", file=sys.stderr)
    print("bench sweep: nothing submitted; details: bench data check DATASET --quick; if only the compute "
          "nodes see the data, submit with --skip-data-check", file=sys.stderr, flush=True)
    return 2


def _prepare(sweep_dir: Path, runs: list[RunSpec], submission: int, kind: str) -> None:
    """job.json and a pending status.json for every run, before anything is submitted."""
    root = runs_dir(sweep_dir)
    for run in runs:
        run_dir = root / run.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        write_job(run_dir, run)
        old = read_status(run_dir)
        fields = {"state": PENDING, "run_id": run.run_id, "submission": submission, "executor": kind}
        if old.get("state") == FAILED:
            fields["previous_error"] = old.get("error")
        write_status(run_dir, **fields)


def _submit(sweep_dir: Path, sweep: str, path: str, executor: Executor, runs: list[RunSpec],
            max_concurrent: int | None, device: str) -> Submission:
    """Prepare, submit with ``executor`` and record the submission in the manifest."""
    kind = executor.kind
    with updating(sweep_dir, sweep, str(Path(path).absolute())) as manifest:
        sid = 1 + max((s["id"] for s in manifest["submissions"]), default=0)
        record = {"id": sid, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "executor": kind,
                  "host": socket.gethostname(), "argv": sys.argv, "run_ids": [r.run_id for r in runs],
                  "state": SUBMITTING, "submitter": {**this_process(), "host": socket.gethostname()}}
        manifest["submissions"].append(record)
        for run in runs:
            manifest["runs"][run.run_id].update(submission=sid, executor=kind, job_id=None)
    _prepare(sweep_dir, runs, sid, kind)
    sub = Submission(sweep_dir, sweep, runs, record, lambda: _save(sweep_dir, sweep, path, record),
                     max_concurrent, device, _print)
    try:
        executor.submit(sub)
    except BaseException:
        record["state"] = SubmissionState.INCOMPLETE  # what was accepted (SLURM arrays) is recorded already
        _save(sweep_dir, sweep, path, record)
        raise
    record["state"] = SUBMITTED
    _save(sweep_dir, sweep, path, record)
    return sub


def _save(sweep_dir: Path, sweep: str, path: str, record: dict) -> None:
    """Store a submission record and its runs' job ids in the manifest."""
    with updating(sweep_dir, sweep, str(Path(path).absolute())) as manifest:
        subs = manifest["submissions"]
        subs[[s["id"] for s in subs].index(record["id"])] = record
        for job in record.get("jobs", []):
            for rid, jid in job["task_ids"].items():
                manifest["runs"][rid]["job_id"] = jid


def _finish(sweep_dir: Path, run_ids: list[str], report: ReportBuilder | None, poll_s: float,
            follow: bool) -> int:
    """Follow until the runs end, build the report (when given a builder), print the summary; exit code."""
    manifest = sweepdir.require_sweep(sweep_dir)
    if follow:
        try:
            snap = monitor.follow(sweep_dir, manifest, run_ids, poll_s=poll_s)
        except KeyboardInterrupt:
            _print(f"stopped following; the runs go on. Follow again: bench status {sweep_dir} --watch; "
                   f"stop them: bench cancel {sweep_dir}")
            return 130
    else:
        snap = monitor.snapshot(sweep_dir, manifest, monitor.Liveness(manifest, sweep_dir), run_ids)
    code = monitor.print_summary(sweep_dir, manifest, snap)
    if report is not None and any(state == monitor.DONE for state, _ in snap.values()):
        code = max(code, report(sweep_dir))
    return code


def status(arg: str, *, output_root: str | None = None, watch: bool = False, show_all: bool = False,
           report: ReportBuilder | None = None, poll_s: float = 3.0) -> int:
    """Reattach from the manifest: each run's state; ``watch`` follows until the sweep ends."""
    sweep_dir, manifest = sweep_with_manifest(arg, output_root)
    run_ids = list(manifest["runs"])
    if watch:
        return _finish(sweep_dir, run_ids, report, poll_s, follow=True)
    live = monitor.Liveness(manifest, sweep_dir)
    snap = monitor.snapshot(sweep_dir, manifest, live, run_ids)
    progress = SweepProgress(sweep_dir, manifest)
    _print(f"sweep {manifest.get('sweep')} at {sweep_dir}")
    for rid, (state, st) in snap.items():
        if show_all or state not in (monitor.DONE, monitor.NOT_SUBMITTED):
            running = state == monitor.RUNNING
            holder = monitor.held_by(sweep_dir, rid, live) if running else None
            _print(f"  {state:13s} {rid}" + (f"  step {monitor.step_text(progress, rid)}" if running else "")
                   + (f"  resumed from step {st['resumed_from_step']}" if st.get("resumed_from_step")
                      else "") + (f"  [{holder}]" if holder else ""))
    _print(f"progress: {progress.reading(snap).line()}")
    return monitor.print_summary(sweep_dir, manifest, snap)


def cancel(arg: str, *, output_root: str | None = None) -> int:
    """Cancel every job of the sweep that is still queued or running."""
    sweep_dir, manifest = sweep_with_manifest(arg, output_root)
    monitor.Liveness(manifest).cancel(_print)
    marked = 0
    for rid in manifest["runs"]:
        run_dir = runs_dir(sweep_dir) / rid
        if rundir.is_finished(run_dir):
            continue
        if read_status(run_dir).get("state") in IN_FLIGHT:
            write_status(run_dir, state=CANCELLED, cancelled_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         cancelled_by=os.getpid())
            marked += 1
    _print(f"cancelled: {marked} runs marked; re-run the sweep to resume them")
    return 0
