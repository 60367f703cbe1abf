"""Evaluation practices of published code, reproduced to measure them: test-set checkpoint selection
(bench.method.selection) and test-time pose refinement (bench.method.refine)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench import rundir
from bench.errors import BenchError
from bench.method.config import EvalConfig, resolve_config, run_hash
from bench.method.model import GaussianModel
from bench.method.refine import annealed_lr, refine_pose
from bench.method.saved_run import refine_saved_run
from bench.method.selection import UPSTREAM_EVALS, load_best_model, selection_steps, mean_test_psnr
from bench.method.run_state import SceneTensors
from method_tiny import SMALL, final_state, interrupt_tiny, train_tiny


def test_selection_steps_scale_the_upstream_schedule():
    assert len(UPSTREAM_EVALS) == 38 and UPSTREAM_EVALS[:4] == (3600, 4000, 5000, 6000)
    assert selection_steps(40000) == list(UPSTREAM_EVALS)
    cpu = selection_steps(800)
    assert len(cpu) == 38 and cpu[:4] == [72, 80, 100, 120] and cpu[-1] == 800
    assert selection_steps(40)[0] == 4 and selection_steps(40)[-1] == 40  # 3.6 and 4 round to one step


def test_default_eval_section_keeps_run_identity():
    cfg = resolve_config("full", "cpu").to_dict()
    without = {k: v for k, v in cfg.items() if k != "eval"}
    assert run_hash("full", cfg, "synthetic", "motion_0", 0) == run_hash("full", without, "synthetic", "motion_0", 0)
    best = resolve_config("full", "cpu", {"eval.select": "best_test"}).to_dict()
    assert run_hash("full", best, "synthetic", "motion_0", 0) != run_hash("full", cfg, "synthetic", "motion_0", 0)
    with pytest.raises(BenchError, match="eval.select"):
        resolve_config("full", "cpu", {"eval.select": "best"})


@pytest.mark.slow
def test_best_test_selects_the_best_evaluation_without_changing_training(tiny, tmp_path):
    last, best = tmp_path / "last", tmp_path / "best"
    train_tiny(last)
    summary = train_tiny(best, **{"eval.select": "best_test"})
    a, b = final_state(last), final_state(best)
    for key, value in a["model"]["params"].items():  # evaluating the test views only reads the model
        assert torch.equal(value, b["model"]["params"][key]), key
    sel = summary["test_selection"]
    history = dict(sel["history"])
    assert sel["evaluations"] == len(selection_steps(SMALL["train.steps"])) == len(history)
    assert sorted(history) == selection_steps(SMALL["train.steps"])
    assert sel["selected_test_psnr"] == max(history.values()) == history[sel["selected_step"]]
    model, step = load_best_model(best, torch.device("cpu"))
    assert step == sel["selected_step"]
    cfg = resolve_config("full", "cpu", SMALL)
    from bench.method.step import sh_degree

    value = mean_test_psnr(model, SceneTensors.from_scene(tiny, torch.device("cpu")), tiny.test.images.stack().float(),
                      sh_degree(cfg, cfg.train.steps), "torch")
    assert value == pytest.approx(sel["selected_test_psnr"], abs=1e-4)  # the saved state is the one selected
    for name in tiny.test.names:
        assert (best / rundir.eval_renders("best_test") / f"{name}.png").is_file()
    assert not (last / rundir.eval_renders("best_test")).exists() and not (last / rundir.BEST_TEST_STATE).exists()


@pytest.mark.slow
def test_interrupted_best_test_run_selects_as_an_uninterrupted_one(tiny, tmp_path, monkeypatch):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    a = train_tiny(straight, **{"eval.select": "best_test"})
    interrupt_tiny(resumed, 27, monkeypatch, **{"eval.select": "best_test"})
    b = train_tiny(resumed, **{"eval.select": "best_test"})
    assert a["test_selection"] == b["test_selection"]
    sa = torch.load(straight / rundir.BEST_TEST_STATE, weights_only=False)
    sb = torch.load(resumed / rundir.BEST_TEST_STATE, weights_only=False)
    for key, value in sa["model"]["params"].items():
        assert torch.equal(value, sb["model"]["params"][key]), key


def test_refinement_lr_follows_deblur4dgs_cosine_schedule():
    assert annealed_lr(499, 500, 1e-2, 1e-4) == pytest.approx(1e-4)
    assert annealed_lr(249, 500, 1e-2, 1e-4) == pytest.approx((1e-2 + 1e-4) / 2)
    assert 1e-2 * 0.9999 < annealed_lr(0, 500, 1e-2, 1e-4) < 1e-2  # one step ahead of the start


@pytest.mark.slow
def test_refinement_recovers_a_shifted_test_camera(tiny, tmp_path):
    """A test image rendered by the model itself from the true camera: refinement from a camera
    shifted along x lowers the L1 distance and moves the camera back towards the true one."""
    run = tmp_path / "run"
    train_tiny(run)
    model = GaussianModel.from_state_dict(final_state(run)["model"])
    d = SceneTensors.from_scene(tiny, torch.device("cpu"))
    K, w2c = d.test_K[2], d.test_w2c[2]
    with torch.no_grad():
        gt = model.render(K, w2c, d.test_W, d.test_H, 2, sh_degree=1).rgb.clamp(0, 1)
    shifted = w2c.clone()
    shifted[0, 3] += 0.04
    out = refine_pose(model, K, shifted, d.test_W, d.test_H, 2, gt, steps=60, lr=1e-2, lr_final=1e-4,
                      sh_degree=1, backend="torch")
    assert out.last_loss < 0.5 * out.first_loss
    assert abs(out.w2c[0, 3] - w2c[0, 3]) < 0.5 * 0.04
    assert out.rgb.shape == gt.shape
    assert all(p.grad is None for p in model.params.values())  # the model stays frozen


@pytest.mark.slow
def test_refining_a_saved_run_writes_its_own_mode(tiny, tmp_path):
    run = tmp_path / "run"
    train_tiny(run)
    mode = refine_saved_run(run, 5, progress=False)
    assert mode == "last+refine5"
    out = run / rundir.eval_renders(mode)
    poses = json.loads((out / rundir.REFINED_POSES).read_text())
    assert poses["steps"] == 5 and set(poses["views"]) == set(tiny.test.names)
    assert all(math.isfinite(v["l1_after"]) for v in poses["views"].values())
    assert rundir.eval_modes_on_disk(run) == ["last", "last+refine5"]
    with pytest.raises(BenchError, match="best_test.pt: missing"):
        refine_saved_run(run, 5, select="best_test", progress=False)
    rundir.checkpoint_path(run, SMALL["train.steps"]).unlink()
    with pytest.raises(BenchError, match="final checkpoint"):
        refine_saved_run(run, 5, progress=False)


def test_eval_config_defaults_are_the_reported_practice():
    ev = EvalConfig()
    assert (ev.select, ev.refine_test_poses) == ("last", 0)
    assert rundir.eval_mode("last", 0) == "last" and rundir.eval_renders("last") == rundir.TEST_RENDERS
    assert rundir.eval_renders("best_test+refine500") == rundir.TEST_RENDERS + "_best_test_refine500"


def test_the_selected_state_is_a_snapshot(tiny, tmp_path, monkeypatch):
    """The optimisers update the model in place: the state kept at a scheduled evaluation must not
    follow them (it once kept the live motion bases next to copied Gaussians)."""
    import bench.method.selection as sel

    run = tmp_path / "run"
    train_tiny(run)
    model = GaussianModel.from_state_dict(final_state(run)["model"])
    selector = object.__new__(sel.CheckpointSelector)
    selector.steps, selector.gt, selector.history, selector.best = {4}, None, [], None
    monkeypatch.setattr(sel, "mean_test_psnr", lambda *a: 20.0)
    fake = type("R", (), {"step": 4, "model": model, "data": None, "backend": "torch",
                          "cfg": resolve_config("full", "cpu", SMALL)})()
    selector.after_step(fake)
    kept = {k: v.clone() for k, v in selector.best["model"]["bases"].items()}
    with torch.no_grad():
        for p in model.bases.parameters():
            p.add_(1.0)
        for p in model.params.values():
            p.add_(1.0)
    for key, value in kept.items():
        assert torch.equal(selector.best["model"]["bases"][key], value), key
