"""``bench train`` as a new user meets it: every check before anything is written, so the corrected
command starts clean; ``--show-config`` checks names; the release profile on the CPU warns once."""

from __future__ import annotations

import json

import pytest
import torch

import bench.method.train as T
from bench import rundir
from bench.cli import main
from method_tiny import SMALL

# A few steps of the tiny scene (tests/method_tiny.py), as --set arguments.
QUICK = [a for k, v in {**SMALL, "train.steps": 4, "train.checkpoint_every": 4, "train.log_every": 2}.items()
         for a in ("--set", f"{k}={v}")]


def _train(out, *extra, scene="motion_0", dataset="synthetic", profile=("--profile", "cpu")):
    return main(["train", "--method", "full", "--dataset", dataset, "--scene", scene, "--out", str(out),
                 "--device", "cpu", "--no-progress", *profile, *extra])


def _fake_training(monkeypatch):
    """The base implementation replaced by one that writes nothing and returns a summary."""
    summary = {"steps": 1, "wall_time_s": 0.0, "device": "cpu", "backend": "torch"}
    monkeypatch.setattr(T, "base_implementation", lambda base: lambda run_dir, cfg, record, **kw: summary)


@pytest.mark.parametrize("typo", [
    {"scene": "motion_9"},
    {"dataset": "synthetc"},
    {"extra": ("--set", "train.stepz=4")},
    {"extra": ("--set", "train.steps=-4")},
])
def test_a_typo_writes_nothing_and_the_corrected_command_trains(tiny_data, tmp_path, capsys, typo):
    out = tmp_path / "run"
    assert _train(out, *typo.get("extra", ()), **{k: v for k, v in typo.items() if k != "extra"}) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench train: error: ") and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert _train(out, *QUICK) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 4
    assert rundir.latest_checkpoint(out) == rundir.checkpoint_path(out, 4)


def test_missing_scene_data_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = _train(out, "--data-root", str(tmp_path / "empty"), dataset="stereo_blur", scene="sailor")
    err = capsys.readouterr().err
    assert code == 2 and "scene folder not found" in err and str(tmp_path / "empty" / "sailor") in err
    assert not out.exists()


def test_unavailable_device_writes_nothing(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    assert main(["train", "--method", "full", "--dataset", "synthetic", "--scene", "motion_0", "--out", str(out),
                 "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err
    assert _train(out, "--device", "gpu") == 2
    assert "'gpu': expected one of auto, cpu, cuda" in capsys.readouterr().err
    assert not out.exists()


def test_an_unknown_set_key_suggests_the_closest_and_stays_short(capsys, tmp_path):
    assert _train(tmp_path / "run", "--set", "blur.kernal_size=5") == 2
    err = capsys.readouterr().err.strip()
    assert "'blur.kernal_size'" in err and "did you mean blur.kernel_size" in err and "--show-config" in err
    assert len(err) < 250 and "train.steps" not in err  # the closest few, not the 70 keys


def test_show_config_checks_dataset_and_scene(capsys):
    assert main(["train", "--method", "full", "--dataset", "synthetic", "--scene", "motion_9", "--show-config"]) == 2
    captured = capsys.readouterr()
    assert "'motion_9'" in captured.err and captured.out == ""
    assert main(["train", "--dataset", "synthetc", "--show-config"]) == 2
    assert "'synthetc'" in capsys.readouterr().err
    assert main(["train", "--scene", "motion_0", "--show-config"]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["train", "--method", "full", "--dataset", "synthetic", "--scene", "motion_0", "--show-config"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["train"]["steps"] == 40000
    assert "dataset synthetic and scene motion_0" in captured.err


def test_release_profile_on_the_cpu_warns_once(tiny_data, tmp_path, capsys, monkeypatch):
    _fake_training(monkeypatch)
    assert _train(tmp_path / "release", profile=()) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "40000 steps" in warnings[0] and "--profile cpu (800 steps)" in warnings[0]
    assert _train(tmp_path / "cpu") == 0
    assert "warning" not in capsys.readouterr().err
