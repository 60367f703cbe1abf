"""End-to-end training on a tiny analytic scene: outputs, loss decrease, exact resume, variants."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import yaml

import bench.method.step as S
import bench.method.train as T
from bench import rundir
from bench.errors import BenchError
from bench.method.device import pick_device
from bench.method.outputs import train_view_indices
from method_tiny import H, N, W, curves, final_state, interrupt_tiny, train_tiny



@pytest.mark.slow
def test_full_run_writes_every_output_and_lowers_loss(tiny, tmp_path):
    run = tmp_path / "run"
    summary = train_tiny(run)
    cfg = yaml.safe_load((run / rundir.CONFIG).read_text())
    assert (cfg["method"], cfg["dataset"], cfg["scene"], cfg["seed"], cfg["profile"]) == (
        "full", "tiny", "square", 3, "cpu")
    assert cfg["config"]["train"]["steps"] == 40 and cfg["config"]["blur"]["kernel_size"] == 5
    assert rundir.latest_checkpoint(run) == rundir.checkpoint_path(run, 40)
    for name in tiny.test.names:  # 16-bit, so float-render protocols lose nothing to quantisation
        assert cv2.imread(str(run / rundir.TEST_RENDERS / f"{name}.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    for i in train_view_indices(N, 2):
        stem = run / rundir.TRAIN_RENDERS / tiny.train.names[i]
        for suffix in ("_sharp.png", "_blurred.png", "_mask.png", "_kernels.npz"):
            assert stem.with_name(stem.name + suffix).is_file()
        npz = np.load(stem.with_name(stem.name + "_kernels.npz"))
        assert npz["kernels"].shape == (H, W, 5, 5) and npz["mask"].shape == (H, W)
        np.testing.assert_allclose(npz["kernels"].sum(axis=(2, 3)), 1.0, atol=1e-4)
    rows = curves(run)
    assert [int(r["step"]) for r in rows] == list(range(5, 41, 5))
    assert {"loss", "rec", "depth", "dyn_mask", "train_psnr", "elapsed_s"} <= set(rows[0])
    # the counts follow densification: added and pruned since the start, never decreasing
    for key in ("grown", "pruned"):
        values = [int(r[key]) for r in rows]
        assert values == sorted(values)
    assert int(rows[-1]["grown"]) > 0  # DGD at least
    assert all(int(r["num_gaussians"]) >= int(r["num_dynamic"]) > 0 for r in rows)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert float(rows[-1]["train_psnr"]) > float(rows[0]["train_psnr"])
    on_disk = json.loads((run / rundir.TRAIN_SUMMARY).read_text())
    assert on_disk == json.loads(json.dumps(summary))
    for key in ("steps", "wall_time_s", "peak_memory_bytes", "device", "backend", "motion_init", "num_gaussians"):
        assert key in on_disk
    assert on_disk["steps"] == 40 and on_disk["device"] == "cpu" and on_disk["backend"] == "torch"
    unseen = on_disk["unseen_views"]
    assert unseen["count"] == 4 * (N - 1) and unseen["offset"] > 0
    assert set(unseen["inpainted_share"]) == {"mid_from_prev", "mid_from_next", "perp_plus", "perp_minus"}
    assert on_disk["motion_init"].startswith("identity")  # the tiny scene has neither tracks nor flow
    log = (run / rundir.LOG).read_text()
    assert "motion bases init: identity" in log and "DGD at step" in log and "unseen views:" in log
    assert not (run / rundir.RESULTS).exists()


@pytest.mark.slow
def test_interrupted_run_resumes_to_identical_result(tiny, tmp_path, monkeypatch):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_tiny(straight)
    interrupt_tiny(resumed, 27, monkeypatch)  # after the checkpoint at 20, before the one at 30
    assert rundir.latest_checkpoint(resumed) == rundir.checkpoint_path(resumed, 20)
    train_tiny(resumed)
    a, b = final_state(straight), final_state(resumed)
    for key, value in a["model"]["params"].items():
        assert torch.equal(value, b["model"]["params"][key]), key
    for key, value in a["model"]["bases"].items():
        assert torch.equal(value, b["model"]["bases"][key]), key
    for key, value in a["bpnet"].items():
        assert torch.equal(value, b["bpnet"][key]), key
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    ra, rb = curves(straight), curves(resumed)
    assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in ra] == \
           [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rb]
    assert "resumed from step_0000020.pt" in (resumed / rundir.LOG).read_text()


@pytest.mark.slow
def test_unseen_matched_steps_takes_exactly_fulls_real_steps(tiny, tmp_path, monkeypatch):
    """The control trains on no virtual view and makes no update on the steps full spends on them: the
    same number of real-frame steps, on the same steps, as full (docs/method.md §7, §10)."""
    seen: dict[str, list[tuple[int, bool]]] = {}
    original = T.forward

    def counting(run, s, t):
        seen.setdefault(run.record["method"], []).append((s, t["virtual"]))
        return original(run, s, t)

    monkeypatch.setattr(T, "forward", counting)
    full = train_tiny(tmp_path / "full")
    ctrl = train_tiny(tmp_path / "ctrl", "unseen_matched_steps")
    real = {m: [s for s, virtual in steps if not virtual] for m, steps in seen.items()}
    assert real["full"] == real["unseen_matched_steps"]  # the same steps, hence the same frames
    assert not any(virtual for _, virtual in seen["unseen_matched_steps"])
    assert full["step_counts"] == {"real": len(real["full"]), "virtual": 40 - len(real["full"]), "skipped": 0}
    assert ctrl["step_counts"] == {"real": len(real["full"]), "virtual": 0, "skipped": 40 - len(real["full"])}
    assert full["step_counts"]["virtual"] > 0 and ctrl["unseen_views"] is None
    assert "DGD at step" in (tmp_path / "ctrl" / rundir.LOG).read_text()  # events still run on schedule


@pytest.mark.slow
def test_no_blur_has_no_bpnet(tiny, tmp_path):
    run = tmp_path / "nb"
    train_tiny(run, method="no_blur", **{"train.steps": 12, "train.checkpoint_every": 12, "train.log_every": 4})
    state = torch.load(rundir.checkpoint_path(run, 12), weights_only=False)
    assert state["bpnet"] is None and "bpnet" not in state["optimizers"]
    name = tiny.train.names[0]
    assert (run / rundir.TRAIN_RENDERS / f"{name}_blurred.png").is_file()
    assert not (run / rundir.TRAIN_RENDERS / f"{name}_kernels.npz").exists()
    assert all(float(r["blur_sparsity"]) == 0 and float(r["mask_sparsity"]) == 0 for r in curves(run))


def test_same_dir_with_other_config_is_refused(tiny, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / rundir.CONFIG).write_text(yaml.safe_dump({"config_hash": "something-else"}))
    with pytest.raises(BenchError, match="different config"):
        train_tiny(run)


def test_unknown_variant_is_refused_before_writing(tmp_path):
    with pytest.raises(BenchError, match="full"):
        T.train(tmp_path / "x", method="nope", dataset="synthetic", scene="motion_0", device="cpu")
    assert not (tmp_path / "x").exists()


def test_training_view_schedule_is_a_function_of_seed_and_step():
    a = [S.torch_randint(16, S.step_generator(0, s)) for s in range(50)]
    assert a == [S.torch_randint(16, S.step_generator(0, s)) for s in range(50)]
    assert a != [S.torch_randint(16, S.step_generator(1, s)) for s in range(50)]
    assert len(set(a)) > 8


def test_camera_embedding_gets_its_own_learning_rate(tiny, tmp_path):
    run = tmp_path / "emb"
    train_tiny(run, **{"train.steps": 12, "train.checkpoint_every": 12, "blur.start_frac": 0.0,
                   "blur.embedding_lr_scale": 50.0})
    groups = torch.load(rundir.checkpoint_path(run, 12), weights_only=False)["optimizers"]["bpnet"]["param_groups"]
    rest, emb = groups
    assert len(emb["params"]) == 1 and emb["lr"] == pytest.approx(50.0 * rest["lr"])


def test_ground_truth_blur_replaces_bpnet_and_needs_ground_truth(tiny, tmp_path, monkeypatch):
    with pytest.raises(BenchError, match="synthetic scenes only"):
        train_tiny(tmp_path / "nogt", method="no_blur", **{"blur.ground_truth": True})
    assert not (tmp_path / "nogt").exists()  # checked before anything is written
    from bench.data.scene import GroundTruth

    tiny.gt = GroundTruth(sharp_train=tiny.train.images, depth=tiny.train.depth, motion_mask=tiny.train.motion_mask,
                          blur_type="defocus", coc_radius=torch.full((N, H, W), 1.0))
    run = tmp_path / "gt"
    train_tiny(run, **{"train.steps": 8, "train.checkpoint_every": 8, "blur.ground_truth": True})
    assert "ground-truth blur replaces BP-Net" in (run / rundir.LOG).read_text()
    assert torch.load(rundir.checkpoint_path(run, 8), weights_only=False)["bpnet"] is None


@pytest.mark.parametrize("device, backend, cuda, expected", [
    ("auto", "auto", False, ("cpu", "torch")),
    ("auto", "auto", True, ("cuda", "gsplat")),
    ("auto", "torch", True, ("cpu", "torch")),  # the cpu profile on a GPU node stays on the CPU
    ("cuda", "torch", True, ("cuda", "torch")),
    ("cpu", "auto", True, ("cpu", "torch")),
    ("auto", "gsplat", True, ("cuda", "gsplat")),
    ("cuda", "auto", True, ("cuda", "gsplat")),
])
def test_device_and_backend_choice(device, backend, cuda, expected):
    choice = pick_device(device, backend, cuda_available=cuda)
    assert (choice.device.type, choice.backend) == expected
    assert choice.reason


@pytest.mark.parametrize("device, backend, cuda, message", [
    ("cuda", "auto", False, "CUDA is not available"),
    ("cpu", "gsplat", True, "needs CUDA"),
    ("auto", "gsplat", False, "no GPU is visible"),
])
def test_impossible_device_choices_are_one_line_errors(device, backend, cuda, message):
    with pytest.raises(BenchError, match=message):
        pick_device(device, backend, cuda_available=cuda)
