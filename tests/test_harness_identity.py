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


def test_one_run_identity_from_the_plan_and_from_the_run_directory(tmp_path, write_sweep):
    """job.json (the plan) and config.yaml (training) give the same RunIdentity, in results.json's
    key order."""
    import yaml

    from bench import rundir
    from bench.harness.runs import expand
    from bench.harness.spec import load_sweep
    from bench.method.config import resolve_config

    run = expand(load_sweep(write_sweep()))[0]
    planned = rundir.RunIdentity.from_job(run.job_dict())
    assert rundir.IDENTITY_KEYS == tuple(planned.to_dict())
    run_dir = tmp_path / "out" / run.sweep / "runs" / run.run_id
    config = {"method": run.variant, "base_method": run.base_method, "dataset": run.dataset, "scene": run.scene,
              "seed": run.seed, "config_hash": run.config_hash,
              "config": resolve_config(run.variant, run.profile, run.overrides).to_dict()}
    run_dir.mkdir(parents=True)
    (run_dir / rundir.CONFIG).write_text(yaml.safe_dump(config))
    assert rundir.RunIdentity.from_config(run_dir, config, run.blur_type) == planned
    assert rundir.RunIdentity.from_config(tmp_path / "alone", config, None).sweep is None
