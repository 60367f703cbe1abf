"""Each evaluation protocol against scikit-image / OpenCV / PIL called with explicit arguments on
hand-made images: the peers' SSIM data range and window, 8-bit ground-truth resize (OpenCV or PIL),
float render or the saved 8-bit image, the 3DGS SSIM against a convolution written out, the
conventions record of the metrics block, and the protocol chosen by ``bench eval --protocol``."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.errors import BenchError
from bench.metrics import image as im
from bench.metrics.evaluate import evaluate_images, prepare_gt, prepare_render, read_gt_8bit
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


def _to8b(x):
    """The NeRF-code PNG writer's quantisation written out: uint8(255 * clip(x)) truncates."""
    return (255 * np.clip(np.asarray(x, dtype=np.float32), 0, 1)).astype(np.uint8)


def _reference(pred, gt8, *, gt_uint8, saved_png, data_range, **ssim_args):
    """(PSNR, SSIM) as the peer's script computes them, written out with scikit-image and OpenCV.
    saved_png: None (float render), "round" or "floor" (the writer's quantisation)."""
    if gt_uint8:
        gt = (cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0).astype(np.float64)
    else:
        gt = cv2.resize(gt8.astype(np.float32) / 255.0, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64)
    x = pred.astype(np.float64)
    if saved_png == "round":
        x = (np.round(np.clip(x, 0, 1) * 255).astype(np.uint8).astype(np.float32) / 255.0).astype(np.float64)
    elif saved_png == "floor":
        x = (_to8b(pred).astype(np.float32) / 255.0).astype(np.float64)
    psnr = peak_signal_noise_ratio(gt, x, data_range=1.0)
    ssim = structural_similarity(gt, x, channel_axis=-1, data_range=data_range, **ssim_args)
    return psnr, ssim


UNIFORM7 = {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True}
EXPECTED = {  # protocol: (headline metric, reference arguments)
    "dyblurf": ("ssim_r2", dict(gt_uint8=True, saved_png=None, data_range=2.0, **UNIFORM7)),
    "deblur4dgs": ("ssim_r2", dict(gt_uint8=True, saved_png="floor", data_range=2.0, **UNIFORM7)),
    "d2rf": ("ssim", dict(gt_uint8=True, saved_png="floor", data_range=1.0, **UNIFORM7)),
    "synthetic": ("ssim", dict(gt_uint8=False, saved_png=None, data_range=1.0, **UNIFORM7)),
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
    assert np.all(saved <= pred) and np.abs(saved - pred).max() < 1 / 255  # truncated, as to8b
    np.testing.assert_array_equal(im.saved_image(pred, "floor"), saved)
    rounded = im.saved_image(pred, "round")
    assert np.abs(rounded - pred).max() <= 0.5 / 255 + 1e-7 and not np.array_equal(rounded, saved)
    assert prepare_render(pred, get_protocol("dyblurf")) is pred
    assert prepare_render(pred, get_protocol("dydeblur")) is pred


def test_conventions_recorded_per_metric():
    pred, gt8 = _images(5)
    out = evaluate_images([("v", pred, gt8, None)], get_protocol("dyblurf"), None, "off")
    conv = json.loads(json.dumps(out["conventions"]))  # JSON-serialisable as results.json needs
    assert conv["ssim_r2"]["data_range"] == 2.0 and conv["ssim_r2"]["win_size"] == 7 and conv["ssim_r2"]["headline"]
    assert conv["ssim"]["data_range"] == 1.0 and not conv["ssim"]["headline"]
    assert conv["ssim_gauss"]["window"] == "gaussian" and conv["ssim_gauss"]["sigma"] == 1.5
    assert conv["psnr"]["gt_dtype"] == "uint8" and conv["psnr"]["render"] == "float"
    assert conv["psnr"]["gt_library"] == "cv2" and conv["psnr"]["gt_resize"] == "INTER_AREA"
    assert conv["ssim_3dgs"]["padding"] == "zeros" and conv["ssim_3dgs"]["borders"] == "included"
    assert conv["lpips"]["input"] == "scaled" and conv["ssim_dyn"]["of"] == "ssim_r2"
    assert out["inputs"] == {"render_bits": []}  # in-memory renders
    assert get_protocol("d2rf").conventions()["ssim_dyn"]["of"] == "ssim"
    assert get_protocol("deblur4dgs").conventions()["ssim_r2"]["render"] == "png8"
    assert get_protocol("d2rf").conventions()["psnr"]["render_quantise"] == "floor"


def test_bad_protocol_field_is_one_clear_error():
    with pytest.raises(BenchError, match=r"protocol 'x': ssim_metric='ssim_r3', expected one of ssim, ssim_gauss"):
        Protocol(name="x", description="", frames="", ssim_metric="ssim_r3")
    with pytest.raises(BenchError, match="gt_dtype='uint16'"):
        Protocol(name="x", description="", frames="", gt_dtype="uint16")
    with pytest.raises(BenchError, match=r"gt_resize='INTER_AREA', expected one of BICUBIC"):
        Protocol(name="x", description="", frames="", gt_dtype="uint8", gt_library="pil")
    with pytest.raises(BenchError, match="gt_library='pil' needs gt_dtype='uint8'"):
        Protocol(name="x", description="", frames="", gt_library="pil", gt_resize="BICUBIC")
    with pytest.raises(BenchError, match=r"lpips_net_by_layout\['dyblurf'\]='squeeze', expected one of alex, vgg"):
        Protocol(name="x", description="", frames="", lpips_net_by_layout=(("dyblurf", "squeeze"),))
    with pytest.raises(BenchError, match="render_quantise='ceil'"):
        Protocol(name="x", description="", frames="", render_quantise="ceil")
    assert all(p.render in ("float", "png8") for p in PROTOCOLS.values())


def test_every_protocol_cites_the_script_and_function_it_reproduces():
    for p in PROTOCOLS.values():
        if p.name != "synthetic":
            assert ".py" in p.source and "()" in p.source, p.name


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
    _, want = _reference(pred16.astype(np.float64) / 65535, gt8, gt_uint8=True, saved_png=None,
                         data_range=2.0, **UNIFORM7)
    assert out["aggregate"]["ssim_r2"] == pytest.approx(want, abs=1e-6)
    assert out["inputs"]["render_bits"] == [16] and out["protocol"]["gt_dtype"] == "uint8"


# ---------------------------------------------------------------- d2rf: the 8-bit PNG it saved


def test_d2rf_scores_the_png_it_saved_not_the_float_render(tmp_path):
    """D2RF: run_nerf.py writes the render with to8b (truncating) and eval.py evaluation() reads it
    back with cv2.imread /255, the GT with cv2.imread resized as uint8 by INTER_AREA, SSIM with
    channel_axis=2, data_range=1.0, and the masked PSNR over a 3-channel mask."""
    rng = np.random.default_rng(11)
    _, gt8 = _images(11)
    gt_small = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    pred = np.clip(gt_small + rng.normal(0, 0.01, gt_small.shape), 0, 1).astype(np.float32)
    mask = np.zeros((H, W), np.float32)
    mask[5:20, 10:40] = 1
    png = tmp_path / "000000_right.png"
    cv2.imwrite(str(png), _to8b(pred)[..., ::-1])
    rgb = np.float32(cv2.imread(str(png))[:, :, ::-1]) / 255
    gt = np.float32(cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA)) / 255
    want_psnr = peak_signal_noise_ratio(gt, rgb, data_range=1.0)
    want_ssim = structural_similarity(gt, rgb, channel_axis=2, data_range=1.0)
    m3 = np.repeat(mask[..., None], 3, axis=-1).astype(np.float64)
    want_dyn = 10 * np.log10(1 / (np.sum((gt.astype(np.float64) - rgb) ** 2 * m3) / np.sum(m3)))

    out = evaluate_images([("v", pred, gt8, mask)], get_protocol("d2rf"), None, "off")["per_image"]["v"]
    assert out["psnr"] == pytest.approx(want_psnr, abs=1e-4)
    assert out["ssim"] == pytest.approx(want_ssim, abs=1e-5)
    assert out["psnr_dyn"] == pytest.approx(want_dyn, abs=1e-4)
    # The float render and a rounding writer would both score otherwise.
    assert abs(peak_signal_noise_ratio(gt, pred, data_range=1.0) - want_psnr) > 0.05
    rounded = np.round(pred * 255).astype(np.float32) / 255
    assert abs(peak_signal_noise_ratio(gt, rounded, data_range=1.0) - want_psnr) > 0.05


# ---------------------------------------------------------------- dydeblur: PIL resize, both SSIMs


def test_pil_default_resize_filter_is_bicubic_here():
    """The fact the dydeblur protocol spells out: Image.resize without a filter resizes an RGB image
    with Resampling.BICUBIC (Pillow >= 7.0; NEAREST before)."""
    _, gt8 = _images(12)
    img = Image.fromarray(gt8)
    default = np.asarray(img.resize((W, H)))
    np.testing.assert_array_equal(default, np.asarray(img.resize((W, H), resample=Image.Resampling.BICUBIC)))
    assert not np.array_equal(default, np.asarray(img.resize((W, H), resample=Image.Resampling.BILINEAR)))
    assert get_protocol("dydeblur").gt_library == "pil" and get_protocol("dydeblur").gt_resize == "BICUBIC"


def test_dydeblur_is_pil_bicubic_gt_float_render_skimage_ssim(tmp_path):
    """dydeblur's readers: Image.open, Image.resize (BICUBIC), /255; train.py: the float render,
    structural_similarity(..., channel_axis=-1, data_range=1)."""
    pred, gt8 = _images(13)
    path = tmp_path / "00000.png"
    Image.fromarray(gt8).save(path)
    with Image.open(path) as img:  # torch.from_numpy(np.array(img)) / 255.0: float32
        gt = (np.asarray(img.resize((W, H), resample=Image.Resampling.BICUBIC)).astype(np.float32) / 255).astype(np.float64)
    x = pred.astype(np.float64)
    protocol = get_protocol("dydeblur")
    out = evaluate_images([("v", pred, read_gt_8bit(path, "pil"), None)], protocol, None, "off")
    values = out["per_image"]["v"]
    assert values["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, x, data_range=1.0), abs=1e-9)
    assert values["ssim"] == pytest.approx(structural_similarity(gt, x, channel_axis=-1, data_range=1), abs=1e-9)
    assert values["ssim_3dgs"] == pytest.approx(_ssim_3dgs_convolve(x, gt), abs=1e-9)
    assert protocol.ssim_metric == "ssim" and out["conventions"]["ssim"]["headline"]
    assert "not established" in out["protocol"]["notes"] and out["protocol"]["gt_resize"] == "BICUBIC"
    # The filter matters: OpenCV's INTER_AREA ground truth (the other protocols') scores otherwise.
    area = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    assert abs(peak_signal_noise_ratio(area, x, data_range=1.0) - values["psnr"]) > 1e-3


def _ssim_3dgs_convolve(x, y):
    """3DGS's SSIM written out with a 2D kernel: an 11x11 Gaussian (sigma 1.5, outer product of the
    normalised taps) convolved with each channel, zeros outside ('same' size), C1 = 0.01^2,
    C2 = 0.03^2, the mean over the whole map."""
    from scipy.ndimage import convolve

    taps = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    kernel = np.outer(taps / taps.sum(), taps / taps.sum())

    def f(a):
        return np.stack([convolve(a[..., c], kernel, mode="constant", cval=0.0) for c in range(a.shape[-1])], -1)

    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def _ssim_3dgs_torch(x, y):
    """The same with torch's conv2d, (1,C,H,W), padding 5, one group per channel, in float64."""
    import torch
    import torch.nn.functional as F

    taps = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    taps = taps / taps.sum()
    window = torch.outer(taps, taps).expand(3, 1, 11, 11)
    a, b = (torch.from_numpy(v).permute(2, 0, 1)[None] for v in (x, y))

    def f(t):
        return F.conv2d(t, window, padding=5, groups=3)

    ma, mb = f(a), f(b)
    va, vb, cab = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_3dgs_is_the_zero_padded_gaussian_ssim(seed):
    pred, gt8 = _images(seed)
    gt = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    x = pred.astype(np.float64)
    assert im.ssim(x, gt, "ssim_3dgs") == pytest.approx(_ssim_3dgs_convolve(x, gt), abs=1e-12)
    assert im.ssim(x, gt, "ssim_3dgs") == pytest.approx(_ssim_3dgs_torch(x, gt), abs=1e-12)
    value, smap = im.ssim_map(x, gt, "ssim_3dgs")
    assert smap.shape == (H, W) and value == pytest.approx(smap.mean(), abs=1e-12)


def test_ssim_gauss_is_not_the_3dgs_ssim_but_agrees_away_from_the_border():
    """scikit-image's Gaussian SSIM (ssim_gauss) filters with reflected borders and averages only the
    pixels at least 5 from the border; 3DGS's pads with zeros and averages every pixel. Inside, the
    two maps are the same."""
    pred, gt8 = _images(14)
    gt = cv2.resize(gt8, (W, H), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    x = pred.astype(np.float64)
    _, full = structural_similarity(x, gt, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    inside = (slice(5, -5), slice(5, -5))
    np.testing.assert_allclose(im.ssim_3dgs_map(x, gt)[inside], full[inside], atol=1e-12)
    assert abs(im.ssim(x, gt, "ssim_gauss") - im.ssim(x, gt, "ssim_3dgs")) > 1e-3


def test_dydeblur_lpips_network_follows_the_layout():
    """train.py: AlexNet v0.1 for the x1 / x2 / x2.5 data, VGG for DyBluRF's 'dense' data, [0,1] inputs."""
    p = get_protocol("dydeblur")
    assert p.lpips_input == "unscaled" and p.lpips_version == "0.1"
    assert p.for_layout("dyblurf").lpips_net == "vgg"
    assert p.for_layout("d2rf").lpips_net == p.for_layout("d4dgs").lpips_net == "alex"
    assert p.for_layout("dyblurf").conventions()["lpips"]["net"] == "vgg"
    assert get_protocol("dyblurf").for_layout("dyblurf").lpips_net == "alex"  # the peers' own protocols: AlexNet


# ---------------------------------------------------------------- choosing the protocol


def _file_run(tmp_path, monkeypatch, layout="d2rf"):
    """A run directory with one 16-bit render and a scene whose GT comes from an 8-bit PNG file, in a
    dataset of protocol d2rf stored in ``layout``."""
    import types

    import torch

    import bench.data.registry as reg
    from bench import rundir
    from bench.data.common import lazy_images
    from report_fakes import tiny_scene

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    pred, gt8 = _images(15)
    gt_file = tmp_path / "gt" / "00000.png"
    gt_file.parent.mkdir()
    cv2.imwrite(str(gt_file), gt8[..., ::-1])
    sc = tiny_scene(h=H, w=W, n=1)
    sc.test.images = lazy_images([gt_file], (W, H))
    sc.test.motion_mask = torch.zeros(1, H, W)
    scene_spec = types.SimpleNamespace(name="a", blur_type="defocus", layout=layout)
    spec = types.SimpleNamespace(name="toy", protocol="d2rf", blur_type="defocus", layout=layout, scenes=[scene_spec],
                                 scene={"a": scene_spec}.__getitem__)
    monkeypatch.setattr(reg, "get_dataset", lambda name: spec)
    monkeypatch.setattr(reg, "load_scene", lambda d, s, data_root=None: sc)
    run = tmp_path / "run"
    (run / rundir.TEST_RENDERS).mkdir(parents=True)
    (run / "config.yaml").write_text("method: full\ndataset: toy\nscene: a\nseed: 0\nconfig_hash: h1\n")
    pred16 = np.round(pred.astype(np.float64) * 65535).astype(np.uint16)
    cv2.imwrite(str(run / rundir.TEST_RENDERS / "00000.png"), pred16[..., ::-1])
    return run, pred16.astype(np.float64) / 65535, gt8


def test_bench_eval_protocol_records_the_protocol_and_bad_value_changes_nothing(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    run, pred, gt8 = _file_run(tmp_path, monkeypatch)
    assert main(["eval", str(run)]) == 0
    doc = json.loads((run / "results.json").read_text())
    assert doc["metrics"]["protocol"]["name"] == "d2rf"  # the dataset's own by default
    assert main(["eval", str(run), "--protocol", "dydeblur"]) == 0
    doc = json.loads((run / "results.json").read_text())
    block = doc["metrics"]
    assert block["protocol"]["name"] == "dydeblur" and block["protocol"]["gt_library"] == "pil"
    assert block["protocol"]["lpips_net"] == "alex" and block["conventions"]["lpips"]["input"] == "unscaled"
    gt = np.asarray(Image.fromarray(gt8).resize((W, H), resample=Image.Resampling.BICUBIC)).astype(np.float32) / 255
    assert block["aggregate"]["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1.0), abs=1e-6)
    assert block["aggregate"]["psnr_dyn"] is None and "no dynamic-region" in block["missing"]["psnr_dyn"]

    before = (run / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["eval", str(run), "--protocol", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'nope'" in err and "d2rf, dydeblur, synthetic" in err
    assert (run / "results.json").read_bytes() == before


def test_dydeblur_on_a_dyblurf_layout_scene_wants_vgg_and_records_it_missing(tmp_path, monkeypatch):
    from bench.metrics.evaluate import evaluate_run

    run, _, _ = _file_run(tmp_path, monkeypatch, layout="dyblurf")
    block = evaluate_run(run, protocol="dydeblur")
    assert block["protocol"]["lpips_net"] == "vgg" and block["aggregate"]["lpips"] is None
    assert "vgg16-397923af.pth" in block["missing"]["lpips"] and "VGG16" in block["missing"]["lpips"]
    assert block["aggregate"]["psnr"] is not None


def test_the_protocol_a_sweep_planned_is_the_default(tmp_path, monkeypatch):
    """job.json's ``protocol`` (the sweep key) is what evaluate_run uses unless told otherwise; an
    unknown one there is one error naming the file."""
    from bench import rundir
    from bench.metrics.evaluate import evaluate_run

    run, _, _ = _file_run(tmp_path, monkeypatch)
    (run / rundir.JOB).write_text(json.dumps({"protocol": "synthetic"}))
    assert evaluate_run(run)["protocol"]["name"] == "synthetic"
    assert evaluate_run(run, protocol="dyblurf")["protocol"]["name"] == "dyblurf"
    (run / rundir.JOB).write_text(json.dumps({"protocol": "nope"}))
    with pytest.raises(BenchError, match=r"job.json: protocol 'nope': unknown; allowed: dyblurf"):
        evaluate_run(run)


def test_sweep_key_protocol_is_checked(tmp_path):
    from bench.harness.spec import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("name: t\nvariants: [full]\nprotocol: dydeblur\ndatasets:\n"
                    "  - name: synthetic\n    scenes: [motion_0]\n    protocol: d2rf\n  - name: diagnostic\n")
    spec = load_sweep(path)
    assert [spec.protocol_for(e) for e in spec.datasets] == ["d2rf", "dydeblur"]
    path.write_text("name: t\nvariants: [full]\ndatasets:\n  - name: synthetic\n    protocol: d2rff\n")
    with pytest.raises(BenchError, match=r"s.yaml:5: datasets.0.protocol: protocol 'd2rff': unknown; allowed: dyblurf"):
        load_sweep(path)
