"""The diagnostic synthetic scenes and the region ground truth of every synthetic scene.

Thresholds are those of issue 21: unseen >= 5 % of the test pixels (all views pooled); emerging
>= 20 % of the training frames' dynamic pixels, pooled over ALL training frames (a stricter
reading than "of one frame": the largest single frame's share is far above it); sharp scenes
>= 40 % of the training pixels sharp (RMS radius < 0.5 px) and >= 20 % blurred by more than 2 px.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data.registry import get_dataset, load_scene
from bench.data.synth.raycast import ImageTexture, Motion, Primitive
from bench.data.synth.regions import REGION_KEYS, compute_regions
from bench.data.synth.render import render_scene
from bench.data.synth.scenes import SceneDef
from bench.errors import BenchError
from data_synth_cache import synthetic_root

# Fingerprints (scene_fingerprint below) of two demo scenes, recorded from generator version 6
# before the diagnostic scenes and regions were added: the demo scenes' images and arrays, whose
# numbers are published, must not change.
DEMO_FINGERPRINTS = {
    "motion_0": "c6232641e8ed9dcb54873fa6989ae5f149845b2e16c4a870317a5b42e919177e",
    "defocus_0": "1d36ac62cef2822db699001ace020fecdb5734d7a56e1570e98c2bd71b3d2777",
}
N, H, W = 16, 72, 128


@pytest.fixture(scope="module")
def diag_root(tmp_path_factory) -> Path:
    """A data root with the four diagnostic scenes, generated once for this module."""
    from bench.data import synthetic

    root = tmp_path_factory.mktemp("diagnostic")
    synthetic.ensure(root, get_dataset("diagnostic").scenes, show_progress=False)
    return root


def _regions(root: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(root / name / "synthetic_gt" / "regions.npz") as data:
        return {k: data[k] for k in data.files}


def _shares(root: Path, name: str) -> dict[str, float]:
    return json.loads((root / name / "synthetic_gt" / "meta.json").read_text())["shares"]


def test_unseen_scene_has_surface_no_training_frame_sees(diag_root):
    assert _regions(diag_root, "unseen_0")["unseen"].mean() >= 0.05


def test_emerging_scene_has_dynamic_surface_the_canonical_frame_misses(diag_root):
    shares = _shares(diag_root, "emerging_0")
    assert shares["emerging_train_dynamic"] >= 0.20  # pooled over all training frames
    assert shares["emerging_train_dynamic_max_frame"] >= shares["emerging_train_dynamic"]
    assert _regions(diag_root, "emerging_0")["emerging"].any()


@pytest.mark.parametrize("name", ["sharp_defocus_0", "sharp_motion_0"])
def test_sharp_scenes_mix_sharp_and_blurred_pixels(diag_root, name):
    rms = _regions(diag_root, name)["train_blur_rms"]
    assert (rms < 0.5).mean() >= 0.40
    assert (rms > 2.0).mean() >= 0.20


@pytest.mark.parametrize("name", ["unseen_0", "emerging_0", "sharp_defocus_0", "sharp_motion_0"])
def test_diagnostic_scenes_are_complete_and_textured_by_photos(diag_root, name):
    from bench.data.registry import check_scene
    from bench.data.synth.raycast import ImageTexture
    from bench.data.synth.catalog import make_scene

    assert check_scene("diagnostic", name, diag_root) == []
    sd = make_scene(name, get_dataset("diagnostic").scene(name).seed)
    assert sd.frames == N and all(isinstance(p.texture, ImageTexture) for p in sd.objects)


@pytest.mark.parametrize("dataset,name", [("diagnostic", "sharp_motion_0"), ("synthetic", "motion_0"),
                                          ("synthetic", "defocus_0")])
def test_regions_npz_shapes_and_dtypes(diag_root, dataset, name):
    root = diag_root if dataset == "diagnostic" else synthetic_root(name)
    regions = _regions(root, name)
    assert set(regions) == set(REGION_KEYS)
    for key in ("unseen", "emerging"):
        assert regions[key].shape == (N, H, W) and regions[key].dtype == np.bool_
    for key in ("test_blur_rms", "train_blur_rms"):
        assert regions[key].shape == (N, H, W) and regions[key].dtype == np.float32
        assert np.isfinite(regions[key]).all() and (regions[key] >= 0).all()
    assert set(_shares(root, name)) >= {"unseen_test", "emerging_train_dynamic", "emerging_test", "sharp_train",
                                         "blurred_train", "sharp_test", "blurred_test"}


def test_regions_of_the_deblur4dgs_layout_follow_its_frames():
    """mixed_0 (Deblur4DGS layout, 12 frames, odd-numbered test views): one region frame per training
    frame, and the loaded test views map onto them in order (the region metrics index by frame)."""
    root = synthetic_root("mixed_0")
    regions = _regions(root, "mixed_0")
    assert all(regions[k].shape == (12, H, W) for k in REGION_KEYS)
    scene = load_scene("synthetic", "mixed_0", root)
    assert scene.gt.regions is not None and scene.gt.regions["unseen"].shape == (12, H, W)
    assert list(scene.test.frame_index) == list(range(12)) == list(scene.train.frame_index)


def test_loaded_regions_match_the_ground_truth_blur(diag_root):
    """GroundTruth.regions carries the arrays; train_blur_rms is rms_radius of the loaded GT blur
    (the report reads it from there)."""
    from bench.data.synth.regions import rms_radius

    scene = load_scene("diagnostic", "sharp_motion_0", diag_root)
    regions = scene.gt.regions
    assert set(regions) == set(REGION_KEYS) and regions["unseen"].dtype == torch.bool
    for k in (0, 7, 15):
        coc = None if scene.gt.coc_radius is None else scene.gt.coc_radius[k].numpy()
        want = rms_radius(coc, scene.gt.motion_disp[k].numpy())
        np.testing.assert_allclose(regions["train_blur_rms"][k].numpy(), want, atol=1e-4)
    # the test view of a sharp-motion scene is as sharp as its training frame where static
    static = (scene.gt.test_motion_mask == 0).numpy()
    assert float(regions["test_blur_rms"].numpy()[static].max()) < 0.5


def _hand_scene() -> SceneDef:
    """A still camera (3 frames) facing a wall at z = 10 behind a static box (half size 0.5 at z = 5),
    right camera 1 unit to the right, and a ball that flies in only for the last frame."""
    grey = ImageTexture(image=np.full((2, 2, 3), 0.5, np.float32), period=1.0)
    wall = Primitive("plane", np.zeros(1), grey, Motion(base=np.array([0.0, 0.0, 10.0])), False)
    box = Primitive("box", np.full(3, 0.5), grey, Motion(base=np.array([0.0, 0.0, 5.0])), False)
    # x(t) = -22 + 20 t: at (-2, -1.2, 6) at t = 1, far outside the view at t = 0 and 0.5
    ball = Primitive("sphere", np.array([0.5]), grey,
                     Motion(base=np.array([-22.0, -1.2, 6.0]), vel=np.array([20.0, 0.0, 0.0])), True)
    return SceneDef(name="hand_0", seed=0, blur_type="defocus", layout="d2rf", objects=[wall, box, ball],
                    cam_base=np.zeros(3), cam_path=np.zeros(3), shake=np.zeros(3), shake_freq=0.0,
                    baseline=1.0, max_coc=2.0, focus=(5.0, 5.0), frames=3, yaw_sweep=0.0, pitch=0.0)


def test_regions_of_a_hand_checkable_scene():
    sd = _hand_scene()
    regions, shares = compute_regions(sd, render_scene(sd))
    unseen, emerging = regions["unseen"], regions["emerging"]
    # right pixel (row 36, col 60) sees the wall at x = 1 + (60.5 - 64) / 100 * 10 = 0.65: the box
    # hides wall |x| < 0.5 * 10 / 4.5 = 1.11 from the left camera, so no training frame sees it
    assert unseen[:, 36, 60].all()
    # col 100 sees the wall at x = 4.65, which the left camera sees at column 110.5: seen
    assert not unseen[:, 36, 100].any()
    # col 127 sees the wall at x = 7.35, left column 137.5: outside every training frame
    assert unseen[:, 36, 127].all()
    # the ball (right view, t = 1: column 64 + 100 * (-3) / 6 = 14, row 36 - 120 / 6 = 16) is
    # dynamic surface that the canonical frame (index 1, t = 0.5) does not show
    assert emerging[2, 16, 14] and not emerging[:2].any() and not emerging[:, 36, 60].any()
    assert shares["emerging_train_dynamic"] == 1.0  # every dynamic training pixel is the ball at t = 1
    # focus at 5: the box front (z = 4.5) is nearly sharp, the wall (z = 10) blurred
    assert regions["train_blur_rms"][0, 36, 64] < regions["train_blur_rms"][0, 36, 127]


def test_image_texture_is_bilinear_and_tiled():
    img = np.zeros((2, 2, 3), np.float32)
    img[0, 1] = 1.0  # row 0, column 1
    tex = ImageTexture(image=img, period=2.0)  # 2 texels over 2 units: texel centres at integer uv
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0], [1.5, 0.0], [1.0, 0.5], [3.0, 4.0]])
    out = tex(uv)[:, 0]
    np.testing.assert_allclose(out, [0.0, 1.0, 0.5, 0.5, 0.5, 1.0], atol=1e-6)


def test_region_files_are_checked_and_shape_checked(tmp_path):
    from bench.data.synthetic import _check_regions, load_regions

    path = tmp_path / "regions.npz"
    assert "regions.npz" in _check_regions(path)[0] and load_regions(path, (N, H, W)) is None
    np.savez(path, unseen=np.zeros((N, H, W), bool), emerging=np.zeros((N, H, W), np.uint8),
             test_blur_rms=np.zeros((N, H, W), np.float32), train_blur_rms=np.zeros((N, H, W), np.float32))
    assert [p for p in _check_regions(path) if "'emerging'" in p] and len(_check_regions(path)) == 1
    with pytest.raises(BenchError, match="regions.npz.*'unseen'.*shape"):
        load_regions(path, (N, H, W + 1))


def test_synth_command_selects_the_dataset_and_prints_shares(diag_root, capsys):
    from bench.cli import main

    assert main(["data", "synth", "--dataset", "diagnostic", "--scenes", "unseen_0", "--data-root",
                 str(diag_root)]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("unseen_0"))
    assert "0 scene(s) generated" in out and "emerging %" in out
    assert float(line.split()[1]) == pytest.approx(100 * _shares(diag_root, "unseen_0")["unseen_test"], abs=0.06)
    assert main(["data", "synth", "--dataset", "d2rf"]) != 0


def scene_fingerprint(scene_dir: Path) -> str:
    """SHA-256 over every image's pixels and every array of a scene folder (not meta.json, regions.npz).

    Pixels rather than PNG bytes, and arrays rather than .npz bytes: the containers may differ
    (zip timestamps, PNG compression) while the data are the same.
    """
    import cv2

    digest = hashlib.sha256()
    for p in sorted(scene_dir.rglob("*")):
        if not p.is_file() or p.name in ("meta.json", "regions.npz"):
            continue
        digest.update(str(p.relative_to(scene_dir)).encode())
        if p.suffix == ".png":
            digest.update(np.ascontiguousarray(cv2.imread(str(p), cv2.IMREAD_UNCHANGED)).tobytes())
        elif p.suffix == ".npy":
            digest.update(np.ascontiguousarray(np.load(p)).tobytes())
        elif p.suffix == ".npz":
            with np.load(p) as data:
                for k in sorted(data.files):
                    digest.update(k.encode() + np.ascontiguousarray(data[k]).tobytes())
        else:
            digest.update(p.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", sorted(DEMO_FINGERPRINTS))
def test_demo_scenes_are_unchanged(name):
    assert scene_fingerprint(synthetic_root(name) / name) == DEMO_FINGERPRINTS[name]
