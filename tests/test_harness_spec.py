"""Sweep files: validation with one-line errors, expansion into runs, run identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.harness.runs import expand, parse_only, select
from bench.harness.spec import load_sweep
from bench.harness.sweep import resolve_sweep_dir


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("text, expected", [
    ("name: t\nvarients: all\n", [":2:", "varients", "unknown key", "variants", "datasets"]),
    ("name: t\nvariants: [full, nope]\ndatasets: [synthetic]\n", [":2:", "'nope'", "no_blur", "full"]),
    ("name: t\nvariants: all\ndatasets: [nope]\n", [":3:", "'nope'", "synthetic", "d2rf"]),
    ("name: t\nvariants: all\ndatasets:\n  - name: synthetic\n    scenes: [motion_0, bad]\n",
     [":5:", "'bad'", "motion_0", "defocus_1"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\noverrides:\n  train.steps: 5\n  train.stepz: 3\n",
     [":6:", "train.stepz", "train.steps"]),
    ("name: t\nvariants: all\ndatasets:\n  - name: synthetic\n    overrides: {train.steps: -1}\n",
     [":5:", "train.steps", "greater than or equal to 1"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\nexecutor:\n  resources:\n    gpus: 2\n",
     [":6:", "gpus", "gpus_per_node"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\nexecutor: {kind: sge}\n", [":4:", "slurm", "local"]),
    ("name: t\nvariants: all\ndatasets: [synthetic]\nprofile: gpu\n", [":4:", "'gpu'", "cpu", "release"]),
    ("name: t\nvariants: alll\ndatasets: [synthetic]\n", [":2:", "'all'"]),
    ("name: t\nvariants: [full, full]\ndatasets: [synthetic]\n", [":2:", "listed twice: full"]),
    ("name: [t\n", [":2:", "not valid YAML"]),
    ("name: t\nvariants: [full, no_blur]\ndatasets:\n  - name: synthetic\n    variants: [full, no_sparsity]\n",
     [":5:", "'no_sparsity'", "not a variant of this sweep", "full, no_blur"]),
])
def test_invalid_sweep_is_one_error_with_file_line_and_allowed_values(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BenchError) as err:
        load_sweep(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for part in expected:
        assert part in msg
    # The CLI turns it into one line on stderr and exit code 2, and writes nothing.
    assert main(["sweep", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_shipped_sweeps_validate():
    root = Path(__file__).resolve().parents[1] / "sweeps"
    sizes = {}
    for name in ("demo", "demo_all", "long", "ablation", "main", "smoke", "diagnostic", "eval_practices"):
        sizes[name] = len(expand(load_sweep(root / f"{name}.yaml")))
    assert sizes["demo"] == 60  # 5 variants x 4 scenes x 3 seeds
    assert sizes["demo_all"] == 108  # 9 variants x 4 scenes x 3 seeds
    assert sizes["long"] == 30  # 5 variants x 2 scenes x 3 seeds
    assert sizes["smoke"] <= 4
    assert sizes["diagnostic"] == 39  # 13 variant-scene cells x 3 seeds
    assert sizes["eval_practices"] == 12  # full x 4 scenes x 3 seeds, each evaluated three ways


# ---------------------------------------------------------------- expansion and identity


def _ids(path) -> dict:
    return {(r.variant, r.scene, r.seed): r.run_id for r in expand(load_sweep(path))}


def test_expansion_is_variant_by_scene_by_seed(write_sweep):
    runs = expand(load_sweep(write_sweep(seeds=[0, 1])))
    assert len(runs) == 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert runs[0].run_id.startswith("full.synthetic.motion_0.s0.")
    assert {r.blur_type for r in runs} == {"motion", "defocus"}


def test_a_dataset_entry_runs_its_own_subset_of_variants(write_sweep):
    runs = expand(load_sweep(write_sweep(variants=["full", "no_blur", "no_sparsity"], datasets=[
        {"name": "synthetic", "scenes": ["motion_0"], "variants": ["full", "no_blur"]},
        {"name": "synthetic", "scenes": ["defocus_0"]}])))
    pairs = {(r.variant, r.scene) for r in runs}
    assert pairs == {("full", "motion_0"), ("no_blur", "motion_0"),
                     ("full", "defocus_0"), ("no_blur", "defocus_0"), ("no_sparsity", "defocus_0")}


def test_run_id_ignores_resources_but_not_results_affecting_config(write_sweep):
    base = _ids(write_sweep())
    resources = {"kind": "slurm", "device": "cpu", "resources": {"partition": "gpu", "cpus_per_task": 4,
                                                                  "time_min": 5, "mem_gb": 64}}
    assert _ids(write_sweep(executor=resources)) == base
    changed = _ids(write_sweep(overrides={"train.steps": 21}))
    assert all(changed[k] != base[k] for k in base)
    per_dataset = _ids(write_sweep(datasets=[{"name": "synthetic", "scenes": ["motion_0", "defocus_0"],
                                              "overrides": {"loss.depth": 0.5}}]))
    assert all(per_dataset[k] != base[k] for k in base)


def test_only_filters_and_unknown_filter_values(write_sweep):
    runs = expand(load_sweep(write_sweep()))
    picked = select(runs, parse_only(["variant=full", "scene=motion_0,defocus_0"]))
    assert {(r.variant, r.scene) for r in picked} == {("full", "motion_0"), ("full", "defocus_0")}
    with pytest.raises(BenchError, match="allowed: defocus_0, motion_0"):
        select(runs, parse_only(["scene=motion_9"]))
    with pytest.raises(BenchError, match="KEY one of variant, dataset, scene, seed"):
        parse_only(["colour=red"])


def test_resolve_sweep_dir(write_sweep, tmp_path):
    path = write_sweep(name="abc")
    assert resolve_sweep_dir(str(path)) == tmp_path / "out" / "abc"
    (tmp_path / "out" / "abc").mkdir(parents=True)
    assert resolve_sweep_dir(str(tmp_path / "out" / "abc")) == tmp_path / "out" / "abc"
    with pytest.raises(BenchError):
        resolve_sweep_dir(str(tmp_path / "nothing"))


def test_training_and_the_harness_agree_on_run_identity(write_sweep, tmp_path, monkeypatch, tiny_data):
    """The hash training writes into config.yaml is the one the harness names and skips runs by."""
    import bench.method.train as T

    run = expand(load_sweep(write_sweep()))[0]
    monkeypatch.setattr(T, "base_implementation", lambda base: lambda run_dir, cfg, record, **kw: record)
    record = T.train(tmp_path / "r", method=run.variant, dataset=run.dataset, scene=run.scene, seed=run.seed,
                     profile=run.profile, overrides=run.overrides, device="cpu")
    assert record["config_hash"] == run.config_hash
