"""Region metrics (bench/metrics/regions.py): masked PSNR on hand-made regions, pixel counts, empty
regions and regions under MIN_REGION_PX pixels recorded as missing, false blur on hand-made kernels, and evaluate_run on a hand-made scene."""

import json

import numpy as np
import pytest
import torch

from bench import rundir
from bench.errors import BenchError
from bench.metrics import regions as R
from bench.metrics.evaluate import evaluate_images, evaluate_run
from bench.metrics.protocols import get_protocol
from report_fakes import fake_registry, tiny_scene, write_png

H, W, N = 16, 24, 3


def _regions(n=N, h=H, w=W) -> dict:
    """Hand-made region ground truth: unseen = left 4 columns (64 px), emerging = a 4x4 square (16 px:
    under MIN_REGION_PX), test blur 1 px everywhere except 4 sharp top rows (0 px) and 3 blurred
    bottom rows (3 px); frame 1 has no unseen pixel; training frames sharp on their left half."""
    unseen = torch.zeros(n, h, w, dtype=torch.bool)
    unseen[:, :, :4] = True
    unseen[1] = False
    emerging = torch.zeros(n, h, w, dtype=torch.bool)
    emerging[:, 4:8, 8:12] = True
    test_rms = torch.ones(n, h, w)
    test_rms[:, :4] = 0.0
    test_rms[:, -3:] = 3.0
    train_rms = torch.full((n, h, w), 2.0)
    train_rms[:, :, : w // 2] = 0.1
    return {"unseen": unseen, "emerging": emerging, "test_blur_rms": test_rms, "train_blur_rms": train_rms}


def _scene_with_regions():
    sc = tiny_scene("toy", "a", h=H, w=W, n=N)
    sc.gt.regions = _regions()  # the field bench.data adds; set on the instance here
    return sc


def test_region_psnrs_on_known_masks():
    gt = np.full((H, W, 3), 0.5, np.float32)
    pred = gt.copy()
    pred[:, :4] += 0.1  # error 0.1 on the unseen columns: 20 dB there
    pred[4:12, 8:16] += 0.01  # error 0.01 on the emerging square: 40 dB there
    masks = {"unseen": np.zeros((H, W), bool), "emerging": np.zeros((H, W), bool),
             "sharp": np.zeros((H, W), bool), "blurred": np.zeros((H, W), bool)}
    masks["unseen"][:, :4] = True
    masks["emerging"][4:12, 8:16] = True
    masks["sharp"][:, :8] = True  # half in the 0.1 error, half exact: MSE 0.005 -> 23.01 dB
    values, pixels, missing = R.region_psnrs(pred, gt, masks)
    assert values["psnr_unseen"] == pytest.approx(20.0, abs=1e-4)
    assert values["psnr_emerging"] == pytest.approx(40.0, abs=1e-3)
    assert values["psnr_sharp"] == pytest.approx(10 * np.log10(1 / 0.005), abs=1e-4)
    assert pixels == {"unseen": 64, "emerging": 64, "sharp": 128, "blurred": 0}
    assert values["psnr_blurred"] is None and "empty region" in missing["psnr_blurred"]
    assert set(missing) == {"psnr_blurred"}


def test_region_under_the_pixel_floor_is_missing_with_its_count():
    """A region of MIN_REGION_PX - 1 pixels gives no value (not the +inf an exact render would give);
    one of MIN_REGION_PX pixels does; the counts are recorded either way."""
    gt = np.full((H, W, 3), 0.5, np.float32)
    masks = {region: np.zeros((H, W), bool) for region in ("unseen", "emerging", "sharp", "blurred")}
    masks["unseen"].flat[: R.MIN_REGION_PX - 1] = True
    masks["emerging"].flat[: R.MIN_REGION_PX] = True
    values, pixels, missing = R.region_psnrs(gt, gt, masks)  # exact render: PSNR +inf wherever scored
    assert values["psnr_unseen"] is None and pixels["unseen"] == R.MIN_REGION_PX - 1
    assert missing["psnr_unseen"].startswith(f"too few pixels (n < {R.MIN_REGION_PX}): {R.MIN_REGION_PX - 1}")
    assert values["psnr_emerging"] == float("inf") and pixels["emerging"] == R.MIN_REGION_PX
    assert R.too_few(0) == "empty region" and R.too_few(R.MIN_REGION_PX) is None


def test_view_masks_threshold_radii_in_render_pixels():
    sc = _scene_with_regions()
    truth, why = R.region_truth(sc)
    assert why is None and truth.test_frame == {"00000": 0, "00001": 1, "00002": 2}
    full = R.view_masks(truth, "00000", H, W, "INTER_NEAREST")
    assert full["sharp"].sum() == 4 * W and full["blurred"].sum() == 3 * W and full["unseen"].sum() == 4 * H
    half = R.view_masks(truth, "00000", H // 2, W // 2, "INTER_NEAREST")
    # at half resolution 3 px of blur are 1.5 render px: not "blurred by more than 2 px" any more
    assert half["blurred"].sum() == 0 and half["sharp"].sum() == 2 * W // 2 and half["unseen"].sum() == 2 * H // 2


def test_empty_region_is_missing_with_reason_and_left_out_of_the_mean():
    sc = _scene_with_regions()
    truth, _ = R.region_truth(sc)
    protocol = get_protocol("synthetic")
    pairs = []
    for i, err in enumerate((0.1, 0.2, 0.05)):
        gt = sc.test.images[i].numpy() * 0.5 + 0.25
        pairs.append((sc.test.names[i], gt + err, gt, None))
    out = evaluate_images(pairs, protocol, regions=truth)
    per = out["per_image"]
    assert per["00001"]["psnr_unseen"] is None  # frame 1 has no unseen pixel
    assert per["00000"]["psnr_unseen"] == pytest.approx(20.0, abs=1e-3)
    kept = (per["00000"]["psnr_unseen"], per["00002"]["psnr_unseen"])
    assert out["aggregate"]["psnr_unseen"] == pytest.approx(np.mean(kept))
    views = out["regions"]["per_image"]
    assert views["00001"]["pixels"]["unseen"] == 0 and "empty region" in views["00001"]["missing"]["psnr_unseen"]
    assert views["00000"]["pixels"] == {"unseen": 4 * H, "emerging": 16, "sharp": 4 * W, "blurred": 3 * W}
    # 16 emerging pixels: under the floor in every view, counted all the same
    assert per["00000"]["psnr_emerging"] is None and "too few pixels (n < 64)" in views["00000"]["missing"]["psnr_emerging"]
    assert out["aggregate"]["psnr_emerging"] is None and out["missing"]["psnr_emerging"] == R.NO_VIEW_SCORED
    assert out["regions"]["thresholds_px"] == {"sharp": 0.5, "blurred": 2.0, "false_blur": 0.5, "min_region": 64}
    assert "false_blur" not in per["00000"]  # a training-view metric
    assert out["aggregate"]["false_blur"] is None and out["missing"]["false_blur"] == R.NO_RUN_DIR
    json.dumps(out)  # plain JSON: counts are ints, values floats or None


def test_region_metrics_everywhere_empty_and_without_ground_truth():
    sc = _scene_with_regions()
    sc.gt.regions["unseen"][:] = False
    truth, _ = R.region_truth(sc)
    gt = np.full((H, W, 3), 0.5, np.float32)
    out = evaluate_images([("00000", gt + 0.1, gt, None)], get_protocol("synthetic"), regions=truth)
    assert out["aggregate"]["psnr_unseen"] is None and out["missing"]["psnr_unseen"] == R.NO_VIEW_SCORED
    real = evaluate_images([("00000", gt + 0.1, gt, None)], get_protocol("dyblurf"), regions_missing=R.NOT_SYNTHETIC)
    assert all(real["aggregate"][m] is None and real["missing"][m] == R.NOT_SYNTHETIC for m in R.REGION_METRICS)
    assert "regions" not in real


def test_region_truth_reasons_and_bad_input():
    sc = tiny_scene()
    assert R.region_truth(sc) == (None, R.STALE)  # synthetic ground truth without region masks
    sc.gt = None
    assert R.region_truth(sc) == (None, R.NOT_SYNTHETIC)
    sc = _scene_with_regions()
    del sc.gt.regions["emerging"]
    with pytest.raises(BenchError, match=r"toy/a region ground truth: missing key 'emerging'"):
        R.region_truth(sc)
    sc = _scene_with_regions()
    sc.gt.regions["unseen"] = torch.zeros(N, H)
    with pytest.raises(BenchError, match=r"key 'unseen' expected \(N,H,W\)"):
        R.region_truth(sc)


def _kernels(h=H, w=W, k=5) -> np.ndarray:
    """Delta kernels, with a horizontal 5-tap line (RMS radius sqrt(2)) in the top-left 4x6 block."""
    kern = np.zeros((h, w, k, k), np.float32)
    kern[..., k // 2, k // 2] = 1.0
    kern[:4, :6] = 0.0
    kern[:4, :6, k // 2, :] = 1.0 / k
    return kern


def test_false_blur_share_on_hand_made_kernels():
    rms = R.kernel_rms_radius(_kernels())
    assert rms[0, 0] == pytest.approx(np.sqrt(2.0)) and rms[10, 10] == pytest.approx(0.0)
    sharp = np.zeros((H, W), bool)
    sharp[:, : W // 2] = True  # 192 sharp pixels, 24 of them under the wide kernels
    assert R.false_blur_share(rms, sharp) == pytest.approx(100 * 24 / 192)
    assert R.false_blur_share(rms, np.zeros((H, W), bool)) is None
    few = np.zeros((H, W), bool)
    few.flat[: R.MIN_REGION_PX - 1] = True
    assert R.false_blur_share(rms, few) is None  # a share of 63 pixels: too coarse to average
    truth, _ = R.region_truth(_scene_with_regions())
    view = R.train_view_false_blur(truth, "00001", _kernels(), "INTER_NEAREST")
    assert view == {"false_blur": pytest.approx(12.5), "pixels": {"sharp": 192}, "missing": {}}


def _run_dir(tmp_path, sc, variant="full"):
    run = tmp_path / "sweep" / "runs" / variant
    run.mkdir(parents=True)
    enabled = "false" if variant == "no_blur" else "true"
    (run / "config.yaml").write_text(f"method: {variant}\ndataset: toy\nscene: a\nseed: 0\n"
                                     f"config:\n  blur:\n    enabled: {enabled}\n")
    for i, name in enumerate(sc.test.names):
        write_png(run / rundir.TEST_RENDERS / f"{name}.png", sc.test.images[i].numpy() * 0.9)
    return run


def test_evaluate_run_records_regions_and_false_blur(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    sc = _scene_with_regions()
    fake_registry(monkeypatch, {("toy", "a"): sc})
    run = _run_dir(tmp_path, sc)
    (run / rundir.TRAIN_RENDERS).mkdir(parents=True)
    for name in ("00000", "00002"):
        np.savez(run / rundir.TRAIN_RENDERS / f"{name}_kernels.npz", kernels=_kernels(),
                 mask=np.ones((H, W), np.float32))
    out = evaluate_run(run)
    assert out["aggregate"]["false_blur"] == pytest.approx(12.5) and "false_blur" not in out["missing"]
    assert set(out["regions"]["per_train_view"]) == {"00000", "00002"}
    assert out["per_image"]["00001"]["psnr_unseen"] is None and out["aggregate"]["psnr_unseen"] is not None
    assert out["conventions"]["psnr_sharp"]["below_px"] == 0.5
    assert out["conventions"]["psnr_unseen"]["min_pixels"] == R.MIN_REGION_PX

    np.savez(run / rundir.TRAIN_RENDERS / "zzz_kernels.npz", kernels=_kernels())
    with pytest.raises(BenchError, match="zzz_kernels.npz: names no training view of toy/a"):
        evaluate_run(run)
    np.savez(run / rundir.TRAIN_RENDERS / "zzz_kernels.npz", other=_kernels())
    (run / rundir.TRAIN_RENDERS / "zzz_kernels.npz").rename(run / rundir.TRAIN_RENDERS / "00001_kernels.npz")
    with pytest.raises(BenchError, match="00001_kernels.npz: missing key 'kernels'"):
        evaluate_run(run)


def test_no_blur_model_gives_missing_false_blur_not_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    sc = _scene_with_regions()
    fake_registry(monkeypatch, {("toy", "a"): sc})
    out = evaluate_run(_run_dir(tmp_path, sc, "no_blur"))
    assert out["aggregate"]["false_blur"] is None
    assert out["missing"]["false_blur"].startswith("no blur model")
    assert out["aggregate"]["psnr_blurred"] is not None  # the test-view regions are scored all the same
