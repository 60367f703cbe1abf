"""Each evaluation protocol against scikit-image called with explicit arguments on hand-made images:
the peers' SSIM data range and window, 8-bit ground-truth resize, float render or saved 8-bit image,
and the conventions record of the metrics block."""

import json

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.errors import BenchError
from bench.metrics import image as im
from bench.metrics.evaluate import evaluate_images, prepare_gt, prepare_render
from bench.metrics.protocols import PROTOCOLS, Protocol, get_protocol

H, W = 36, 52            # render size
GT_H, GT_W = 90, 130     # GT file size: a non-integer INTER_AREA factor (2.5), as 720p -> 288p


def _images(seed=0):
    """A smooth textured 8-bit GT at file size and a noisy float render at render size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:GT_H, 0:GT_W]
    base = 0.5 + 0.3 * np.sin(xx[..., None] / 7.0 + np.arange(3)) * np.cos(yy[..., None] / 5.0)
    gt8 = np.clip(np.round((base + rng.normal(0, 0.05, base.shape)) * 255), 0, 255).astype(np.uint8)
    gt_small = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    pred = np.clip(gt_small + rng.normal(0, 0.06, gt_small.shape), 0, 1).astype(np.float32)
    return pred, gt8


def _reference(pred, gt8, *, gt_uint8, saved_png, data_range, **ssim_args):
    """(PSNR, SSIM) as the peer's script computes them, written out with scikit-image and OpenCV."""
    if gt_uint8:
        gt = (cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0).astype(np.float64)
    else:
        gt = cv2.resize(gt8.astype(np.float32) / 255.0, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64)
    x = pred.astype(np.float64)
    if saved_png:
        x = (np.round(np.clip(x, 0, 1) * 255).astype(np.uint8).astype(np.float32) / 255.0).astype(np.float64)
    psnr = peak_signal_noise_ratio(gt, x, data_range=1.0)
    ssim = structural_similarity(gt, x, channel_axis=-1, data_range=data_range, **ssim_args)
    return psnr, ssim


UNIFORM7 = {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True}
EXPECTED = {  # protocol: (headline metric, reference arguments)
    "dyblurf": ("ssim_r2", dict(gt_uint8=True, saved_png=False, data_range=2.0, **UNIFORM7)),
    "deblur4dgs": ("ssim_r2", dict(gt_uint8=True, saved_png=True, data_range=2.0, **UNIFORM7)),
    "d2rf": ("ssim", dict(gt_uint8=True, saved_png=False, data_range=1.0, **UNIFORM7)),
    "synthetic": ("ssim", dict(gt_uint8=False, saved_png=False, data_range=1.0, **UNIFORM7)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("seed", [0, 1])
def test_headline_ssim_and_psnr_are_the_peer_script(name, seed):
    protocol = get_protocol(name)
    headline, args = EXPECTED[name]
    assert protocol.ssim_metric == headline
    pred, gt8 = _images(seed)
    gt = gt8 if args["gt_uint8"] else gt8.astype(np.float32) / 255.0
    out = evaluate_images([("v", pred, gt, None)], protocol, None, "off")["per_image"]["v"]
    want_psnr, want_ssim = _reference(pred, gt8, **args)
    assert out[headline] == pytest.approx(want_ssim, abs=1e-9)
    assert out["psnr"] == pytest.approx(want_psnr, abs=1e-9)


def test_named_variants_are_skimage_with_explicit_arguments():
    pred, gt8 = _images(2)
    gt = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    pred = pred.astype(np.float64)
    r2 = structural_similarity(gt, pred, channel_axis=-1, data_range=2.0, win_size=7)
    r1 = structural_similarity(gt, pred, channel_axis=-1, data_range=1.0, win_size=7)
    gauss = structural_similarity(gt, pred, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False)
    assert im.ssim(pred, gt, "ssim_r2") == pytest.approx(r2, abs=1e-9)
    assert im.ssim(pred, gt, "ssim") == pytest.approx(r1, abs=1e-9)
    assert im.ssim(pred, gt, "ssim_gauss") == pytest.approx(gauss, abs=1e-9)
    # A larger data range inflates the stabilising constants: the peers' SSIM reads higher.
    assert r2 > r1 + 1e-3


def test_gt_is_resized_as_8bit_only_for_the_8bit_protocols():
    _, gt8 = _images(3)
    want8 = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    got8 = prepare_gt(gt8, H, W, get_protocol("dyblurf"))
    np.testing.assert_array_equal(got8, want8)
    np.testing.assert_array_equal(prepare_gt(gt8.astype(np.float32) / 255, H, W, get_protocol("dyblurf")), want8)
    gotf = prepare_gt(gt8.astype(np.float32) / 255, H, W, get_protocol("synthetic"))
    wantf = cv2.resize(gt8.astype(np.float32) / 255, (W, H), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(gotf, wantf)
    assert np.abs(gotf - got8).max() > 1e-4  # the 8-bit resize rounds: the two conventions differ
    assert got8.dtype == gotf.dtype == np.float32


def test_saved_png_render_is_quantised_float_render_is_not():
    pred, _ = _images(4)
    saved = prepare_render(pred, get_protocol("deblur4dgs"))
    np.testing.assert_array_equal(saved * 255, np.round(saved * 255))
    assert np.abs(saved - pred).max() <= 0.5 / 255 + 1e-7
    assert prepare_render(pred, get_protocol("dyblurf")) is pred


def test_conventions_recorded_per_metric():
    pred, gt8 = _images(5)
    out = evaluate_images([("v", pred, gt8, None)], get_protocol("dyblurf"), None, "off")
    conv = json.loads(json.dumps(out["conventions"]))  # JSON-serialisable as results.json needs
    assert conv["ssim_r2"]["data_range"] == 2.0 and conv["ssim_r2"]["win_size"] == 7 and conv["ssim_r2"]["headline"]
    assert conv["ssim"]["data_range"] == 1.0 and not conv["ssim"]["headline"]
    assert conv["ssim_gauss"]["window"] == "gaussian" and conv["ssim_gauss"]["sigma"] == 1.5
    assert conv["psnr"]["gt_dtype"] == "uint8" and conv["psnr"]["render"] == "float"
    assert conv["lpips"]["input"] == "scaled" and conv["ssim_dyn"]["of"] == "ssim_r2"
    assert out["inputs"] == {"render_bits": []}  # in-memory renders
    assert get_protocol("d2rf").conventions()["ssim_dyn"]["of"] == "ssim"
    assert get_protocol("deblur4dgs").conventions()["ssim_r2"]["render"] == "png8"


def test_bad_protocol_field_is_one_clear_error():
    with pytest.raises(BenchError, match=r"protocol 'x': ssim_metric='ssim_r3', expected one of ssim, ssim_gauss"):
        Protocol(name="x", description="", frames="", ssim_metric="ssim_r3")
    with pytest.raises(BenchError, match="gt_dtype='uint16'"):
        Protocol(name="x", description="", frames="", gt_dtype="uint16")
    assert all(p.render in ("float", "png8") for p in PROTOCOLS.values())


def test_evaluate_run_reads_gt_file_as_8bit_and_16bit_render_as_float(tmp_path, monkeypatch):
    """evaluate_run on a scene whose test images come from files: the 8-bit GT file is resized as
    uint8 (not the loader's float resize) and a 16-bit render is scored at 16-bit precision."""
    import torch

    from bench import rundir
    from bench.data.common import lazy_images
    from bench.metrics.evaluate import evaluate_run
    from report_fakes import fake_registry, tiny_scene

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    pred, gt8 = _images(6)
    gt_file = tmp_path / "gt" / "00000.png"
    gt_file.parent.mkdir()
    cv2.imwrite(str(gt_file), gt8[..., ::-1])
    sc = tiny_scene(h=H, w=W, n=1)
    sc.test.images = lazy_images([gt_file], (W, H))
    sc.test.motion_mask = torch.zeros(1, H, W)
    fake_registry(monkeypatch, {("toy", "a"): sc}, protocol="dyblurf")
    run = tmp_path / "run"
    (run / rundir.TEST_RENDERS).mkdir(parents=True)
    (run / "config.yaml").write_text("method: full\ndataset: toy\nscene: a\nseed: 0\n")
    pred16 = np.round(pred.astype(np.float64) * 65535).astype(np.uint16)
    cv2.imwrite(str(run / rundir.TEST_RENDERS / "00000.png"), pred16[..., ::-1])
    out = evaluate_run(run)
    _, want = _reference(pred16.astype(np.float64) / 65535, gt8, gt_uint8=True, saved_png=False,
                         data_range=2.0, **UNIFORM7)
    assert out["aggregate"]["ssim_r2"] == pytest.approx(want, abs=1e-6)
    assert out["inputs"]["render_bits"] == [16] and out["protocol"]["gt_dtype"] == "uint8"
