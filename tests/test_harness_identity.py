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
