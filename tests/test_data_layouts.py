"""Each real-layout loader reads the generator's scenes and hand-made minimal scenes (written by
``data_layouts`` from the documented formats, not by the generator) and gets the same cameras."""

import json

import numpy as np
import pytest
import torch

from bench.data import d2rf, d4dgs, dyblurf
from bench.data.colmap import read_cameras, read_images, read_points3d
from bench.data.registry import load_scene
from data_layouts import rotmat_to_qvec, write_colmap, write_d2rf, write_d4dgs, write_dyblurf
from data_synth_cache import synthetic_root


def _meta(root, name):
    return json.loads((root / name / "synthetic_gt" / "meta.json").read_text())


def _assert_same_cameras(a, b):
    assert (a.width, a.height) == (b.width, b.height)
    assert torch.allclose(a.K, b.K, atol=1e-5)
    assert torch.allclose(a.w2c, b.w2c, atol=1e-5)


def test_dyblurf_handmade_scene_matches_generator(tmp_path):
    root = synthetic_root("motion_0")
    gen = load_scene("synthetic", "motion_0", root)
    meta = _meta(root, "motion_0")
    bounds = np.load(root / "motion_0" / "dense" / "poses_bounds.npy")[:, 15:17]
    w, h = meta["train_size"]
    s = meta["supersample"]
    write_dyblurf(tmp_path, "hand", np.array(meta["c2w_left"]), np.array(meta["c2w_right"]),
                  full_hw=(h * s, w * s), train_hw=(h, w), focal_full=meta["focal"] * s, bounds=bounds)
    assert dyblurf.check(tmp_path, "hand", height=h) == []
    hand = dyblurf.load(tmp_path, "hand", dataset="x", blur_type="motion", height=h)
    _assert_same_cameras(hand.train.cameras, gen.train.cameras)
    _assert_same_cameras(hand.test.cameras, gen.test.cameras)
    assert hand.scale == pytest.approx(gen.scale) and hand.near == pytest.approx(gen.near)
    assert torch.equal(hand.train.time, gen.train.time)
    # disparity 0.5 in raw units -> depth 2 raw units -> 2 * sc scene units
    assert torch.allclose(hand.train.depth, torch.full_like(hand.train.depth, 2.0 * hand.scale))
    assert hand.extras.flow_fwd.shape == (len(hand.train) - 1, h, w, 2)
    # optional COLMAP points (raw pose frame) come out in the loaded world frame
    pts = np.array([lm["point"] for lm in meta["landmarks"][:4]])
    write_colmap(tmp_path / "hand" / "dense" / "sparse" / "0", width=w * s, height=h * s, fx=1.0, fy=1.0, cx=0.0,
                 cy=0.0, w2cs=[], names=[], points=pts)
    loaded = dyblurf.load(tmp_path, "hand", dataset="x", blur_type="motion", height=h).extras.points
    T = gen.gt.world_from_generator
    assert torch.allclose(loaded, torch.from_numpy(pts).float() @ T[:3, :3].T + T[:3, 3], atol=1e-5)


def test_d2rf_handmade_scene_matches_generator(tmp_path):
    root = synthetic_root("defocus_0")
    gen = load_scene("synthetic", "defocus_0", root)
    meta = _meta(root, "defocus_0")
    bounds = np.load(root / "defocus_0" / "poses_bounds.npy")[:, 15:17]
    w, h = meta["train_size"]
    write_d2rf(tmp_path, "hand", np.array(meta["c2w_left"]), np.array(meta["c2w_right"]),
               full_hw=(2 * h, 2 * w), focal_full=2 * meta["focal"], bounds=bounds)
    assert d2rf.check(tmp_path, "hand", factor=2) == []
    hand = d2rf.load(tmp_path, "hand", dataset="x", blur_type="defocus", factor=2)
    _assert_same_cameras(hand.train.cameras, gen.train.cameras)
    _assert_same_cameras(hand.test.cameras, gen.test.cameras)
    assert hand.train.names[0] == "000000_left" and hand.test.names[0] == "000000_right"
    # test ground truth: the sharp full-resolution right .jpg, area-resized to the training size
    assert hand.test.images[0].shape == (h, w, 3)
    assert hand.test.motion_mask.shape == (len(hand.test), h, w)


def test_d4dgs_handmade_scene_matches_generator(tmp_path):
    """The generator's raw cameras written as a hand-made COLMAP model (no recentring in this layout)."""
    root = synthetic_root("mixed_0")
    gen = load_scene("synthetic", "mixed_0", root)
    meta = _meta(root, "mixed_0")
    w, h = meta["train_size"]
    c2ws = []
    for left, right in zip(meta["c2w_left"], meta["c2w_right"]):
        c2ws += [np.array(left), np.array(right)]
    w2cs = [np.linalg.inv(c) for c in c2ws]
    f_full = meta["focal"] * 2.5  # the release's COLMAP camera is 2.5x the image size
    K_full = np.array([[f_full, 0, w * 1.25], [0, f_full, h * 1.25], [0, 0, 1]])
    n = len(meta["c2w_left"])
    disp = np.full((n, h, w), 0.5, np.float32)
    disp[0, 0, 0] = 1e-6  # far outlier: clamped at 2.5 x median of per-frame max depth
    write_d4dgs(tmp_path, "hand", w2cs, colmap_wh=(int(w * 2.5), int(h * 2.5)), K_full=K_full, img_wh=(w, h),
                disp=disp, points=np.array([[0.0, 1.0, 5.0], [1.0, 2.0, 3.0]]))
    assert d4dgs.check(tmp_path, "hand") == []
    scene = d4dgs.load(tmp_path, "hand", dataset="x", blur_type="motion")
    _assert_same_cameras(scene.train.cameras, gen.train.cameras)
    _assert_same_cameras(scene.test.cameras, gen.test.cameras)
    assert torch.equal(scene.train.time, gen.train.time) and scene.test.names == gen.test.names
    assert float(scene.train.depth[0, 1, 1]) == pytest.approx(2.0)
    assert float(scene.train.depth[0, 0, 0]) == pytest.approx(5.0)  # 2.5 x median(max depth = 2)
    assert scene.extras.tracks.shape == (5 * n, n, 4)
    assert float(scene.extras.tracks[0, 3, 0]) == 6.0  # query frame 0 -> target file 00006 (frame 3)
    assert torch.allclose(scene.extras.points, torch.tensor([[0.0, 1.0, 5.0], [1.0, 2.0, 3.0]]))
    assert torch.all(scene.train.motion_mask == 1)  # flow3d_preprocessed masks, first channel
    # the generator's own Deblur4DGS files: exact depth, true tracks starting at their query pixel
    assert torch.allclose(gen.train.depth, gen.gt.depth, rtol=1e-5)
    tracks = gen.extras.tracks.reshape(n, -1, n, 4)
    own = torch.stack([tracks[q, :, q] for q in range(n)])
    assert torch.allclose(own[..., :2] % 1.0, torch.full_like(own[..., :2], 0.5), atol=1e-3)
    assert torch.all(own[..., 2] < 0) and (tracks[..., 2] < 0).float().mean() > 0.6
    assert gen.extras.points.shape[1] == 3 and gen.extras.sharp_train is not None


def test_llff_parsing_matches_hand_computation(tmp_path):
    """Two cameras looking along +z at x = -1, +1 (OpenCV): the average pose is the axis flip
    diag(1,-1,-1) in NeRF axes, so the loaded cameras look along world -z with y up."""
    c2w = [np.eye(4), np.eye(4)]
    c2w[0][0, 3], c2w[1][0, 3] = -1.0, 1.0
    bounds = np.array([[2.0, 10.0], [4.0, 10.0]])
    write_dyblurf(tmp_path, "pair", [c2w[0]], [c2w[1]], full_hw=(16, 32), train_hw=(8, 16), focal_full=20.0,
                  bounds=bounds, flow=False)
    scene = dyblurf.load(tmp_path, "pair", dataset="x", blur_type="motion", height=8)
    sc = 1.0 / (np.percentile([2.0, 4.0], 5) * 0.9)
    assert scene.scale == pytest.approx(sc)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    for views, x in ((scene.train, -1.0), (scene.test, 1.0)):
        c2w_loaded = views.cameras.c2w[0]
        assert torch.allclose(c2w_loaded[:3, :3], flip, atol=1e-6)
        assert torch.allclose(c2w_loaded[:3, 3], torch.tensor([float(x * sc), 0.0, 0.0]), atol=1e-5)
        assert torch.allclose(views.cameras.K[0], torch.tensor([[10.0, 0, 8], [0, 10.0, 4], [0, 0, 1]]))
    assert scene.near == pytest.approx(2.0 * sc) and scene.far == pytest.approx(10.0 * sc)


def test_colmap_reader_reads_documented_format(tmp_path):
    a = 0.3
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = R, [1.0, 2.0, 3.0]
    assert np.allclose(rotmat_to_qvec(R), [np.cos(a / 2), 0, np.sin(a / 2), 0])
    write_colmap(tmp_path, width=1280, height=720, fx=666.06, fy=667.0, cx=640, cy=360, w2cs=[w2c, np.eye(4)],
                 names=["00000.png", "00001.png"], points=np.array([[1.0, 2.0, 3.0]]))
    cams = read_cameras(tmp_path / "cameras.bin")
    assert cams[1].model == "PINHOLE" and (cams[1].width, cams[1].height) == (1280, 720)
    assert np.allclose(cams[1].K(), [[666.06, 0, 640], [0, 667.0, 360], [0, 0, 1]])
    images = read_images(tmp_path / "images.bin")
    assert [im.name for im in images.values()] == ["00000.png", "00001.png"]
    assert np.allclose(images[1].w2c(), w2c)
    xyz, rgb = read_points3d(tmp_path / "points3D.bin")
    assert np.allclose(xyz, [[1, 2, 3]]) and rgb.tolist() == [[10, 20, 30]]


def test_relative_disparity_is_aligned_to_the_camera_bounds(tmp_path):
    """Monocular disparities (any affine scale) map their 2nd/98th percentiles to far/near."""
    c2w = [np.eye(4), np.eye(4)]
    c2w[1][0, 3] = 1.0
    ramp = np.linspace(-3.0, 7.0, 8 * 16, dtype=np.float32).reshape(1, 8, 16)  # shifted, arbitrary scale
    write_dyblurf(tmp_path, "rel", [c2w[0]], [c2w[1]], full_hw=(8, 16), train_hw=(8, 16), focal_full=10.0,
                  bounds=np.array([[2.0, 8.0], [2.0, 8.0]]), disp=ramp, flow=False)
    scene = dyblurf.load(tmp_path, "rel", dataset="x", blur_type="motion", height=8, disparity="relative")
    depth = scene.train.depth[0].flatten()
    sc = scene.scale
    assert float(depth.min()) == pytest.approx(2.0 * sc, rel=1e-5) and float(depth.max()) == pytest.approx(8.0 * sc)
    assert torch.all(depth[1:] <= depth[:-1])  # larger disparity = nearer
    inv = 1.0 / depth.numpy()
    lo, hi = np.percentile(ramp, [2, 98])
    mid = np.abs(ramp.ravel() - (lo + hi) / 2).argmin()
    assert inv[mid] == pytest.approx((1 / (2.0 * sc) + 1 / (8.0 * sc)) / 2, rel=1e-2)  # affine in disparity


def test_release_datasets_load_through_the_registry(tmp_path):
    """Hand-made scenes under the real dataset names: release resolutions and relative disparities."""
    c2w = [np.eye(4) for _ in range(4)]
    for i, m in enumerate(c2w):
        m[0, 3] = 0.1 * i
    bounds = np.array([[2.0, 9.0]] * 4)
    ramp = np.tile(np.linspace(0.0, 1.0, 512, dtype=np.float32), (2, 288, 1))
    write_dyblurf(tmp_path / "sb", "seesaw", c2w[0::2], c2w[1::2], full_hw=(720, 1280), train_hw=(288, 512),
                  focal_full=1000.0, bounds=bounds, disp=ramp)
    scene = load_scene("stereo_blur", "seesaw", tmp_path / "sb")
    assert (scene.train.cameras.width, scene.train.cameras.height) == (512, 288)
    assert float(scene.train.cameras.K[0, 0, 0]) == pytest.approx(400.0)  # f / (720 / 288)
    assert scene.test.images[1].shape == (288, 512, 3)  # 1280x720 ground truth, area-resized
    depth = scene.train.depth
    assert float(depth.min()) == pytest.approx(2.0 * scene.scale, rel=1e-4)  # relative disparity -> bounds
    assert float(depth.max()) == pytest.approx(9.0 * scene.scale, rel=1e-4)
    write_d2rf(tmp_path / "d2", "Car", c2w[0::2], c2w[1::2], full_hw=(40, 94), focal_full=50.0, bounds=bounds)
    car = load_scene("d2rf", "Car", tmp_path / "d2")
    assert (car.train.cameras.width, car.train.cameras.height) == (47, 20) and car.blur_type == "defocus"
    assert float(car.train.cameras.K[0, 0, 0]) == pytest.approx(25.0)
    assert torch.allclose(car.train.depth, torch.full_like(car.train.depth, 2.0 / (1 / 2.0 + 1 / 9.0) * car.scale))


def test_layout_descriptions_and_quick_check_import_no_torch():
    """bench.data.layouts is what the quick presence check and the loaders' checks share; planning a
    sweep must not pay for importing torch (or OpenCV, which only the full check needs)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, bench.data.presence, bench.data.layouts.dyblurf, bench.data.layouts.d2rf, "
            "bench.data.layouts.d4dgs; print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout  # this checkout's bench
    assert out.strip() == "[]"
