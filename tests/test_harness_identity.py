"""One hash function: the harness's fast path is config.run_hash itself, eval defaults dropped."""

from __future__ import annotations

from bench.method.config import EvalConfig, config_hash, resolve_config, run_hash, run_hasher


def _by_definition(variant, config, dataset, scene, seed):
    return config_hash({"method": variant, "dataset": dataset, "scene": scene, "seed": int(seed),
                        "config": config})


def test_run_hasher_is_run_hash_and_drops_default_eval():
    cfg = resolve_config("full", "cpu", {}).to_dict()
    assert cfg["eval"] == EvalConfig().model_dump(mode="json")
    without_eval = {k: v for k, v in cfg.items() if k != "eval"}
    hasher = run_hasher("full", cfg)
    for dataset, scene, seed in (("synthetic", "motion_0", 0), ("dyblurf", 'ü"x', 12)):
        h = hasher(dataset, scene, seed)
        assert h == run_hash("full", cfg, dataset, scene, seed)
        assert h == _by_definition("full", without_eval, dataset, scene, seed)
    changed = {**cfg, "eval": {**cfg["eval"], "select": "best_test"}}
    assert run_hasher("full", changed)("synthetic", "motion_0", 0) == _by_definition(
        "full", changed, "synthetic", "motion_0", 0) != hasher("synthetic", "motion_0", 0)


def test_one_identity_written_into_job_config_and_results(tmp_path, write_sweep, monkeypatch, tiny_data):
    """The identity the sweep planned is the first keys of job.json, config.yaml and results.json,
    under the same names, and reads back equal from each; a run trained alone takes its id and sweep
    from its directory."""
    import json

    import yaml

    import bench.method.train as T
    from bench import rundir
    from bench.harness import job as J
    from bench.harness.runs import expand, write_job
    from bench.harness.spec import load_sweep
    from bench.metrics.results import write_results

    run = expand(load_sweep(write_sweep()))[0]
    planned = run.identity
    run_dir = tmp_path / "out" / run.sweep / "runs" / run.run_id
    run_dir.mkdir(parents=True)
    write_job(run_dir, run)
    monkeypatch.setattr(T, "base_implementation", lambda base: lambda run_dir, cfg, record, **kw: {})
    T.train_run(run_dir, planned, J._check_identity(planned, run.job_dict()), profile=run.profile,
                overrides=run.overrides, progress=False)
    metrics = {"aggregate": {}, "per_image": {}, "protocol": {}, "missing": {}}
    write_results(run_dir, planned, metrics, {"train": {}})
    docs = {rundir.JOB: json.loads((run_dir / rundir.JOB).read_text()),
            rundir.CONFIG: yaml.safe_load((run_dir / rundir.CONFIG).read_text()),
            rundir.RESULTS: json.loads((run_dir / rundir.RESULTS).read_text())}
    for name, doc in docs.items():
        assert tuple(doc)[:len(rundir.IDENTITY_KEYS)] == rundir.IDENTITY_KEYS, name
        assert rundir.RunIdentity.read(doc, run_dir / name) == planned, name
    assert rundir.results_config_hash(run_dir) == planned.config_hash

    alone = tmp_path / "alone"
    T.train(alone, method=run.variant, dataset=run.dataset, scene=run.scene, seed=run.seed, profile=run.profile,
            overrides=run.overrides)
    trained = rundir.RunIdentity.read(yaml.safe_load((alone / rundir.CONFIG).read_text()), alone)
    rest = {k: v for k, v in planned.to_dict().items() if k not in ("run_id", "sweep")}
    assert trained == rundir.RunIdentity.of_directory(alone, **rest)
    assert (trained.run_id, trained.sweep) == ("alone", None)


def test_an_identity_missing_keys_names_the_file(tmp_path):
    import pytest

    from bench import rundir
    from bench.errors import BenchError

    with pytest.raises(BenchError, match=r"job\.json: no run identity \(missing seed, config_hash\)"):
        rundir.RunIdentity.read({k: 1 for k in rundir.IDENTITY_KEYS[:-2]}, tmp_path / "job.json")
    with pytest.raises(ValueError, match="outside the run's identity"):
        rundir.identified(rundir.RunIdentity(*range(len(rundir.IDENTITY_KEYS))), {"seed": 2})
