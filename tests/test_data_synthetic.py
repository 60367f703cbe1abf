"""The synthetic benchmark: geometry round trip, blur truth, determinism, atomic writes, first-use generation."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from bench.data.registry import load_scene
from bench.data.synth.blur import disc_kernel
from bench.errors import BenchError
from bench.method.true_blur import TrueBlur
from data_synth_cache import synthetic_root


def _project(cams, k, pts):
    """World points (M,3) -> pixels (M,2), depth (M,) with camera k (float64)."""
    w2c = cams.w2c[k].double()
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam[:, :2] / cam[:, 2:3] * cams.K[k, [0, 1], [0, 1]].double() + cams.K[k, :2, 2].double()
    return uv, cam[:, 2]


@pytest.mark.parametrize("name", ["motion_0", "defocus_0", "mixed_0"])  # DyBluRF, D2RF, Deblur4DGS layouts
def test_geometry_round_trip(name):
    """Generator 3D points project with the loaded cameras to where they were drawn (sub-pixel)."""
    root = synthetic_root(name)
    scene = load_scene("synthetic", name, root)
    meta = json.loads((root / name / "synthetic_gt" / "meta.json").read_text())
    T = scene.gt.world_from_generator.double()
    assert len(meta["landmarks"]) >= 2 * len(scene.train)
    for lm in meta["landmarks"]:
        views = scene.train if lm["view"] == "left" else scene.test
        p = T @ torch.tensor(lm["point"] + [1.0], dtype=torch.float64)
        uv, z = _project(views.cameras, lm["frame"], p[None, :3])
        assert torch.allclose(uv[0], torch.tensor(lm["pixel"], dtype=torch.float64), atol=1e-3), lm
        assert z[0] == pytest.approx(lm["depth"] * scene.scale, rel=1e-4)
        if lm["view"] == "left":  # the provided depth map agrees with the camera-space depth
            j, i = (int(c) for c in lm["pixel"])
            assert float(scene.train.depth[lm["frame"], i, j]) == pytest.approx(float(z[0]), rel=1e-4)


def _away_from_edges(depth: np.ndarray, radius: int) -> np.ndarray:
    """(H,W) bool: pixels farther than ``radius`` from a depth discontinuity or the border.

    Inverse depth is affine in the pixel coordinates on a plane, so its Laplacian only fires at
    occlusion edges (and weakly on the curved spheres).
    """
    inv = (np.median(depth) / np.maximum(depth, 1e-6)).astype(np.float32)
    edges = (np.abs(cv2.Laplacian(inv, cv2.CV_32F)) > 0.04).astype(np.uint8)
    near = cv2.dilate(edges, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    near[:radius], near[-radius:], near[:, :radius], near[:, -radius:] = True, True, True, True
    return ~near


def _reblur_motion(sharp: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """Reference re-blur from the stored displacements: the mean over sub-frames of the sharp (H,W,3)
    frame sampled at ``x - disp_s(x)``; disp (S,H,W,2) pixels."""
    h, w = sharp.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    frames = [cv2.remap(sharp.astype(np.float32), gx - d[..., 0].astype(np.float32), gy - d[..., 1].astype(np.float32),
                        cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for d in disp]
    return np.mean(frames, axis=0)


def _reblur_defocus(sharp: np.ndarray, coc: np.ndarray, step: float = 0.25) -> np.ndarray:
    """Reference re-blur from the stored CoC: pixel x takes the disc average (the generator's disc)
    of radius coc[x], interpolated linearly between disc levels ``step`` pixels apart."""
    def disc(r: float) -> np.ndarray:  # the generator leaves radii below 0.25 px unblurred
        img = sharp.astype(np.float32)
        return img if r < 0.25 else cv2.filter2D(img, -1, disc_kernel(r), borderType=cv2.BORDER_REFLECT)

    levels = np.arange(0.0, coc.max() + step + 1e-9, step)
    stack = np.stack([disc(r) for r in levels])
    pos = np.clip(coc / step, 0, len(levels) - 1 - 1e-6)
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo)[..., None]
    rows, cols = np.indices(coc.shape)
    return stack[lo, rows, cols] * (1 - frac) + stack[np.minimum(lo + 1, len(levels) - 1), rows, cols] * frac


def test_motion_blur_matches_stored_displacements():
    root = synthetic_root("motion_0")
    scene = load_scene("synthetic", "motion_0", root)
    gt = scene.gt
    errs, base, wrong = [], [], []
    for k in range(0, len(scene.train), 3):
        sharp = gt.sharp_train[k].numpy()
        blurry = scene.train.images[k].numpy()
        disp = gt.motion_disp[k].numpy()
        ok = _away_from_edges(gt.depth[k].numpy(), radius=6)
        assert ok.mean() > 0.3
        errs.append(np.abs(_reblur_motion(sharp, disp) - blurry)[ok].mean())
        base.append(np.abs(sharp - blurry)[ok].mean())
        wrong.append(np.abs(_reblur_motion(sharp, 2.0 * disp) - blurry)[ok].mean())
    # the stored blur explains the blurry frame far better than no blur or twice the blur; the rest
    # is resampling error of the (aliased, high-frequency) sharp frame at sub-pixel offsets
    assert np.mean(errs) < 0.02, errs
    assert np.mean(errs) < 0.5 * np.mean(base), (errs, base)
    assert np.mean(errs) < 0.7 * np.mean(wrong), (errs, wrong)


def test_defocus_blur_matches_stored_coc():
    root = synthetic_root("defocus_0")
    scene = load_scene("synthetic", "defocus_0", root)
    gt = scene.gt
    errs, base, wrong = [], [], []
    for k in range(0, len(scene.train), 3):
        sharp = gt.sharp_train[k].numpy()
        blurry = scene.train.images[k].numpy()
        ok = _away_from_edges(gt.depth[k].numpy(), radius=6)
        coc = gt.coc_radius[k].numpy()
        errs.append(np.abs(_reblur_defocus(sharp, coc) - blurry)[ok].mean())
        base.append(np.abs(sharp - blurry)[ok].mean())
        wrong.append(np.abs(_reblur_defocus(sharp, 2.0 * coc) - blurry)[ok].mean())
    assert np.mean(errs) < 0.02, errs
    assert np.mean(errs) < 0.5 * np.mean(base), (errs, base)
    assert np.mean(errs) < 0.7 * np.mean(wrong), (errs, wrong)


@pytest.mark.parametrize("name", ["motion_0", "defocus_0"])
def test_true_blur_operator_turns_sharp_frames_into_the_blurry_ones(name):
    """The differentiable ground-truth blur (blur.ground_truth) re-forms the training frames."""
    scene = load_scene("synthetic", name, synthetic_root(name))
    blur = TrueBlur(scene.gt)
    for k in (0, len(scene.train) // 2):
        sharp = scene.gt.sharp_train[k].permute(2, 0, 1)[None].requires_grad_(True)
        blurry = scene.train.images[k].permute(2, 0, 1)[None]
        out = blur(sharp, k)
        psnr = lambda a: float(-10 * torch.log10(((a.detach() - blurry) ** 2).mean()))  # noqa: E731
        assert out.shape == sharp.shape and psnr(out) > 32.0 and psnr(sharp) < 26.0, (psnr(out), psnr(sharp))
        out.sum().backward()  # differentiable w.r.t. the render; each output pixel is a convex mix
        assert sharp.grad is not None and float(sharp.grad.sum()) == pytest.approx(out.numel(), rel=1e-3)


def test_true_blur_refuses_scenes_without_a_single_known_blur():
    scene = load_scene("synthetic", "mixed_0", synthetic_root("mixed_0"))
    with pytest.raises(BenchError, match="mixed"):
        TrueBlur(scene.gt)
    with pytest.raises(BenchError, match="synthetic scenes only"):
        TrueBlur(None)


def test_blur_is_substantial_but_fits_a_9x9_kernel():
    root = synthetic_root("motion_0", "defocus_0")
    motion = load_scene("synthetic", "motion_0", root)
    d = motion.gt.motion_disp.numpy()
    extent = np.linalg.norm(d[:, -1] - d[:, 0], axis=-1)
    dyn = motion.gt.motion_mask.numpy() > 0
    assert 4.5 < np.median(extent) < 8.0 and 4.5 < np.median(extent[dyn]) < 8.0
    assert np.percentile(np.abs(d), 95) < 4.5  # trajectories mostly stay inside a 9x9 support
    coc = load_scene("synthetic", "defocus_0", root).gt.coc_radius
    assert float(coc.max()) == pytest.approx(8.5, abs=1e-3) and float(coc.median()) > 1.5
    per_frame = coc.flatten(1).median(dim=1).values
    assert per_frame.max() > 2.5 * per_frame.min()  # the focus pull: blur differs between frames
    for scene in (motion, load_scene("synthetic", "defocus_0", root)):
        sharp, blurry = scene.gt.sharp_train.stack(), scene.train.images.stack()
        psnr = -10 * torch.log10(((sharp - blurry) ** 2).mean())
        assert psnr < 24.0, f"{scene.name}: blur costs too little ({psnr:.1f} dB)"


def test_scene_contents_and_conventions():
    root = synthetic_root("motion_0")
    s = load_scene("synthetic", "motion_0", root)
    n = len(s.train)
    assert 12 <= n <= 24 and len(s.test) == n
    assert (s.train.cameras.width, s.train.cameras.height) == (128, 72)
    assert torch.allclose(s.train.time, torch.arange(n) / (n - 1))
    assert torch.equal(s.test.time, s.train.time) and torch.equal(s.test.frame_index, s.train.frame_index)
    img = s.train.images[0]
    assert img.shape == (72, 128, 3) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    assert s.train.depth.shape == (n, 72, 128) and (s.train.depth > 0).all()
    assert s.near <= float(s.train.depth.min()) + 1e-4 and float(s.train.depth.max()) <= s.far + 1e-4
    assert set(torch.unique(s.train.motion_mask).tolist()) == {0.0, 1.0}
    assert s.extras.flow_fwd.shape == (n - 1, 72, 128, 2) and s.extras.flow_fwd_valid.float().mean() > 0.7
    assert s.gt.motion_disp.shape[:2] == (n, 9) and s.gt.coc_radius is None
    assert s.test.motion_mask is not None and s.extras.sharp_train is not None
    # flow agrees with the depth geometry: warping frame 1 back with the forward flow gives frame 0
    sharp0, sharp1 = s.gt.sharp_train[0].numpy(), s.gt.sharp_train[1].numpy()
    flow, valid = s.extras.flow_fwd[0].numpy(), s.extras.flow_fwd_valid[0].numpy()
    gx, gy = np.meshgrid(np.arange(128, dtype=np.float32), np.arange(72, dtype=np.float32))
    warped = cv2.remap(sharp1, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
    ok = valid & _away_from_edges(s.gt.depth[0].numpy(), 3)
    assert np.abs(warped - sharp0)[ok].mean() < 0.05


def test_first_use_generates_deterministically_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    scene = load_scene("synthetic", "defocus_0")
    here, ref = tmp_path / "synthetic" / "defocus_0", synthetic_root("defocus_0") / "defocus_0"
    assert scene.gt.coc_radius is not None
    for rel in ("poses_bounds.npy", "images_2/000003_left.png", "dpt/000004_right.npy", "synthetic_gt/gt.npz"):
        assert (here / rel).read_bytes() == (ref / rel).read_bytes(), rel
    marker = here / "synthetic_gt" / "meta.json"
    before = os.stat(marker).st_mtime_ns
    load_scene("synthetic", "defocus_0")
    assert os.stat(marker).st_mtime_ns == before


def test_a_crash_while_writing_leaves_no_half_scene(tmp_path, monkeypatch):
    from bench.data import synthetic
    from bench.data.registry import get_dataset
    from bench.data.synth import generate as gen

    def crash(rendered, folder):
        (folder / "images_2").mkdir(parents=True)
        (folder / "images_2" / "000000_left.png").write_bytes(b"partial")
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(gen, "render_scene", lambda sd, progress=None: None)
    monkeypatch.setattr(gen, "write_d2rf", crash)
    spec = get_dataset("synthetic").scene("defocus_1")
    with pytest.raises(RuntimeError):
        synthetic.ensure(tmp_path, [spec], show_progress=False)
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == []  # no half scene, no temp folder
    (tmp_path / "defocus_1" / "synthetic_gt").mkdir(parents=True)
    (tmp_path / "defocus_1" / "keep.txt").write_text("previous scene")
    with pytest.raises(RuntimeError):  # --force over an existing scene keeps the old one on a crash
        synthetic.ensure(tmp_path, [spec], force=True, show_progress=False)
    assert (tmp_path / "defocus_1" / "keep.txt").read_text() == "previous scene"
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == ["defocus_1"]


def test_parallel_first_uses_generate_once(tmp_path, monkeypatch):
    """Two runs loading the same missing scene at once: one generates, the other waits and reuses."""
    import threading
    import time

    from bench.data import synthetic
    from bench.data.registry import get_dataset
    from bench.data.synth import generate as gen

    calls = []

    def fake_generate_scene(root, name, **kwargs):
        calls.append(name)
        time.sleep(0.3)
        (root / name / "synthetic_gt").mkdir(parents=True)
        (root / name / "synthetic_gt" / "meta.json").write_text(json.dumps({"generator_version": gen.GENERATOR_VERSION}))
        return root / name

    monkeypatch.setattr(gen, "generate_scene", fake_generate_scene)
    spec = get_dataset("synthetic").scene("motion_1")
    threads = [threading.Thread(target=synthetic.ensure, args=(tmp_path, [spec]), kwargs={"show_progress": False})
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["motion_1"]
