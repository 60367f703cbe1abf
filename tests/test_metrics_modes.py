"""Evaluation modes: one metrics block per mode, found from the renders on disk, collected as rows
of their own (``variant@mode``) and footnoted in tables."""

from __future__ import annotations

import json

import pytest
import yaml

import bench.metrics.modes as M
from bench import rundir
from bench.report import labels
from bench.report.collect import per_image_rows, rows_of, variant_label


def _block(psnr: float, mode: str | None = None) -> dict:
    block = {"protocol": {"name": "synthetic"}, "aggregate": {"psnr": psnr}, "missing": {},
             "per_image": {"v0": {"psnr": psnr}, "v1": {"psnr": psnr + 1}}}
    if mode:
        block["eval"] = {"mode": mode}
    return block


def _run(tmp_path, select="best_test", refine=0):
    run = tmp_path / "run"
    (run / rundir.TEST_RENDERS).mkdir(parents=True)
    config = {"method": "full", "dataset": "synthetic", "scene": "motion_0", "seed": 0,
              "config": {"eval": {"select": select, "refine_test_poses": refine}}}
    (run / rundir.CONFIG).write_text(yaml.safe_dump(config))
    (run / rundir.TRAIN_SUMMARY).write_text(json.dumps({"test_selection": {"selected_step": 300, "evaluations": 38}}))
    return run


def _fake_scoring(monkeypatch, score):
    """Scoring replaced by ``score(renders)``; the run's config read as evaluation reads it."""
    from types import SimpleNamespace

    from bench.rundir import read_config

    monkeypatch.setattr(M, "prepare_evaluation", lambda run_dir, **kw: SimpleNamespace(config=read_config(run_dir)))
    monkeypatch.setattr(M, "score_renders", lambda evaluation, renders, progress: score(renders))


def test_modes_on_disk_and_their_blocks(tmp_path, monkeypatch):
    run = _run(tmp_path)
    (run / rundir.eval_renders("best_test")).mkdir(parents=True)
    (run / rundir.eval_renders("last+refine500")).mkdir(parents=True)
    (run / "renders" / "test_unrelated").mkdir()
    assert rundir.eval_modes_on_disk(run) == ["last", "best_test", "last+refine500"]
    seen = []
    _fake_scoring(monkeypatch, lambda renders: seen.append(renders) or _block(20.0))
    reported, others = M.evaluate_modes(run)
    assert reported["eval"]["mode"] == "best_test" and reported["eval"]["selected_on_test_set"]
    assert reported["eval"]["selected_step"] == 300 and reported["eval"]["test_evaluations"] == 38
    assert set(others) == {"last", "last+refine500"}
    assert others["last+refine500"]["eval"]["refine_test_poses"] == 500
    assert sorted(seen) == sorted(rundir.eval_renders(m) for m in ("last", "best_test", "last+refine500"))


def test_a_missing_mode_is_a_clear_error(tmp_path, monkeypatch):
    run = _run(tmp_path)  # asks for best_test, but only the last renders exist
    _fake_scoring(monkeypatch, lambda renders: _block(20.0))
    with pytest.raises(Exception, match="no test renders of evaluation mode 'best_test'"):
        M.evaluate_modes(run)


def test_runs_from_before_evaluation_modes_are_last():
    assert M.configured_mode({"config": {"train": {}}}) == "last"
    assert M.configured_mode({"config": {"eval": {"select": "last", "refine_test_poses": 500}}}) == "last+refine500"


def test_each_mode_is_collected_under_its_own_label():
    doc = {"method": "full", "dataset": "synthetic", "scene": "motion_0", "seed": 1, "run_id": "r",
           "metrics": _block(21.0, "best_test"), "evaluations": {"last": _block(20.0, "last")}}
    rows = {(r["variant"], r["eval_mode"]): r["value"] for r in rows_of(doc, "s")}
    assert rows == {("full@best_test", "best_test"): 21.0, ("full", "last"): 20.0}
    views = {(r["variant"], r["view"]): r["value"] for r in per_image_rows(doc)}
    assert views[("full@best_test", "v1")] == 22.0 and views[("full", "v0")] == 20.0
    old = {"method": "full", "metrics": _block(19.0)}  # results.json from before the modes
    assert [(r["variant"], r["eval_mode"]) for r in rows_of(old, "s")] == [("full", "last")]
    assert variant_label("no_blur", "last+refine500") == "no_blur@last+refine500"


def test_tables_order_and_footnote_the_modes():
    order = labels.order_variants(["no_blur", "full@last+refine500", "full", "full@best_test"])
    assert order == ["full", "full@best_test", "full@last+refine500", "no_blur"]
    notes = labels.eval_mode_notes(order)
    assert len(notes) == 2 and notes[0].startswith("@best_test: ") and "selected on the test set" in notes[0]
    assert "500 steps" in notes[1] and "Deblur4DGS" in notes[1]
    assert labels.eval_mode_notes(["full", "no_blur"]) == []
    assert labels.ablation_label("full@best_test") == "Full @best_test"


def test_bench_eval_refinement_needs_a_finished_run_and_keeps_computed_modes(tmp_path, capsys):
    from bench.cli import main

    run = _run(tmp_path, select="last")
    assert main(["eval", str(run), "--refine-test-poses", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json: missing" in err[0]
    identity = rundir.RunIdentity.of_directory(run, method="full", base_method="dydeblur", dataset="synthetic",
                                               scene="motion_0", blur_type="motion", seed=0, config_hash="x")
    doc = rundir.identified(identity, {"schema": rundir.RESULTS_SCHEMA, "metrics": _block(20.0, "last"),
                                       "evaluations": {"last+refine5": _block(21.0)}})
    (run / rundir.RESULTS).write_text(json.dumps(doc))
    assert main(["eval", str(run), "--refine-test-poses", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'last+refine5' is there already; --force" in err[0]
    assert json.loads((run / rundir.RESULTS).read_text()) == doc  # nothing overwritten
    assert main(["eval", str(run), "--select", "best_test"]) == 2
    assert "--refine-test-poses" in capsys.readouterr().err


def test_the_sweeps_protocol_travels_in_job_json(write_sweep):
    from bench.harness.runs import expand
    from bench.harness.spec import load_sweep

    runs = expand(load_sweep(write_sweep(protocol="dydeblur")))
    assert {r.protocol for r in runs} == {"dydeblur"} and runs[0].job_dict()["protocol"] == "dydeblur"
    plain = expand(load_sweep(write_sweep(name="plain")))
    assert {r.protocol for r in plain} == {None}
    assert [r.config_hash for r in plain] == [r.config_hash for r in runs]  # evaluation only: same identity
