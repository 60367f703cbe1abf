"""Metrics: PSNR/SSIM against scikit-image, masked metrics on hand-made cases, LPIPS against the
lpips package with a random backbone, missing weights recorded as missing, results files."""


import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metrics import image as im
from bench.metrics.evaluate import evaluate_images, make_lpips
from bench.metrics.protocols import PROTOCOLS, get_protocol
from bench.metrics.registry import METRICS, arrow
from bench.errors import BenchError


def _pair(seed, h=40, w=52):
    rng = np.random.default_rng(seed)
    gt = rng.random((h, w, 3)).astype(np.float32)
    pred = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    return pred, gt


def test_registry_directions_and_names():
    assert set(METRICS) == {"psnr", "ssim", "ssim_gauss", "ssim_r2", "ssim_3dgs", "lpips", "lpips_01", "psnr_dyn",
                            "ssim_dyn", "lpips_dyn", "psnr_unseen", "psnr_emerging", "psnr_sharp", "psnr_blurred",
                            "false_blur"}
    assert METRICS["psnr"].higher_is_better and not METRICS["lpips"].higher_is_better
    assert arrow("lpips", latex=True) == r"$\downarrow$" and arrow("ssim") == "↑"
    assert set(PROTOCOLS) == {"dyblurf", "deblur4dgs", "d2rf", "dydeblur", "synthetic"}
    with pytest.raises(BenchError):
        get_protocol("nope")
    with pytest.raises(BenchError):
        get_protocol("d2rf").with_lpips_input("half")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_ssim_match_skimage(seed):
    pred, gt = _pair(seed)
    assert im.psnr(pred, gt) == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1), abs=1e-6)
    ref = structural_similarity(pred, gt, channel_axis=-1, data_range=1)
    assert im.ssim(pred, gt) == pytest.approx(ref, abs=1e-6)
    ref_g = structural_similarity(pred, gt, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False)
    assert im.ssim(pred, gt, "ssim_gauss") == pytest.approx(ref_g, abs=1e-6)
    assert abs(ref - ref_g) > 1e-4  # the two variants really differ


def test_masked_psnr_hand_case():
    gt = np.zeros((8, 8, 3), np.float32)
    pred = gt.copy()
    pred[:4] += 0.1   # inside the mask: MSE 0.01 -> 20 dB
    pred[4:] += 0.5   # outside the mask: ignored
    mask = np.zeros((8, 8), np.float32)
    mask[:4] = 1
    assert im.masked_psnr(pred, gt, mask) == pytest.approx(20.0, abs=1e-5)
    assert im.masked_psnr(pred, gt, np.zeros((8, 8))) is None


def test_masked_ssim_is_mean_of_map_over_mask():
    pred, gt = _pair(3)
    _, smap = im.ssim_map(pred, gt)
    full = structural_similarity(pred, gt, channel_axis=-1, data_range=1, full=True)[1].mean(-1)
    np.testing.assert_allclose(smap, full, atol=1e-6)
    mask = np.zeros(smap.shape)
    mask[5:15, 10:30] = 1
    assert im.masked_mean(smap, mask) == pytest.approx(smap[5:15, 10:30].mean(), abs=1e-12)
    assert im.masked_mean(smap, mask) == pytest.approx(full[5:15, 10:30].mean(), abs=1e-6)


@pytest.fixture
def random_alexnet(tmp_path, monkeypatch):
    """A randomly initialised torchvision AlexNet saved where the hub cache is expected."""
    import torchvision

    from bench.metrics.lpips_metric import alexnet_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None)
    path = alexnet_checkpoint()
    path.parent.mkdir(parents=True)
    torch.save(tv.state_dict(), path)
    return tv


def _reference_lpips(tv, spatial):
    """The lpips package called directly, backbone modules copied from the torchvision model."""
    import lpips

    ref = lpips.LPIPS(pretrained=True, net="alex", pnet_rand=True, spatial=spatial, verbose=False).eval()
    for slice_ in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        for idx, module in slice_.named_children():
            module.load_state_dict(tv.features[int(idx)].state_dict())
    return ref


def _t(x):
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def test_lpips_matches_package_with_random_backbone(random_alexnet):
    from bench.metrics.lpips_metric import LPIPSMetric

    pred, gt = _pair(4, 64, 64)
    ref = _reference_lpips(random_alexnet, spatial=False)
    with torch.no_grad():
        want_scaled = ref(_t(pred), _t(gt), normalize=True).item()
        want_unscaled = ref(_t(pred), _t(gt)).item()
    assert LPIPSMetric("scaled")(pred, gt) == pytest.approx(want_scaled, abs=1e-6)
    assert LPIPSMetric("unscaled")(pred, gt) == pytest.approx(want_unscaled, abs=1e-6)
    assert abs(want_scaled - want_unscaled) > 1e-6

    # Masked LPIPS: the package's spatial map averaged over the mask.
    mask = np.zeros((64, 64))
    mask[10:40, 20:50] = 1
    ref_sp = _reference_lpips(random_alexnet, spatial=True)
    with torch.no_grad():
        smap = ref_sp(_t(pred), _t(gt), normalize=True)[0, 0].numpy()
    got = im.masked_mean(LPIPSMetric("scaled").spatial_map(pred, gt), mask)
    assert got == pytest.approx(smap[10:40, 20:50].mean(), abs=1e-6)


def test_evaluate_images_with_lpips_and_masks(random_alexnet):
    protocol = get_protocol("synthetic")  # float GT and render: the metrics see the arrays as given
    lpips_fn, reason = make_lpips(protocol)
    assert reason is None
    pairs, mask = [], np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    for i in range(2):
        pred, gt = _pair(10 + i, 32, 32)
        pairs.append((f"{i:05d}", pred, gt, mask if i == 0 else np.zeros_like(mask)))
    out = evaluate_images(pairs, protocol, lpips_fn)
    assert out["protocol"]["name"] == "synthetic" and out["protocol"]["lpips_input"] == "scaled"
    assert set(out["missing"]) == {"psnr_unseen", "psnr_emerging", "psnr_sharp", "psnr_blurred", "false_blur"}
    first = out["per_image"]["00000"]
    assert first["psnr_dyn"] == pytest.approx(im.masked_psnr(pairs[0][1], pairs[0][2], mask))
    assert out["per_image"]["00001"]["psnr_dyn"] is None          # empty mask
    assert out["aggregate"]["psnr_dyn"] == pytest.approx(first["psnr_dyn"])  # only the non-empty one
    assert out["aggregate"]["lpips"] == pytest.approx(np.mean([v["lpips"] for v in out["per_image"].values()]))


def test_lpips_01_is_lpips_of_unscaled_inputs(random_alexnet):
    """The dydeblur script's convention, kept as a named metric next to the protocol's scaled LPIPS."""
    protocol = get_protocol("synthetic")
    scaled, _ = make_lpips(protocol)
    unscaled, _ = make_lpips(protocol.with_lpips_input("unscaled"))
    pred, gt = _pair(3, 32, 32)
    out = evaluate_images([("a", pred, gt, None)], protocol, scaled)
    first = out["per_image"]["a"]
    assert first["lpips"] == pytest.approx(scaled(pred, gt))
    assert first["lpips_01"] == pytest.approx(unscaled(pred, gt))
    assert first["lpips_01"] != pytest.approx(first["lpips"], rel=1e-3)
    assert out["conventions"]["lpips_01"]["input"] == "unscaled" and out["conventions"]["lpips"]["input"] == "scaled"


def test_missing_lpips_weights_recorded_not_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    protocol = get_protocol("dyblurf")
    lpips_fn, reason = make_lpips(protocol)
    assert lpips_fn is None and "bench weights fetch" in reason
    assert "warning: LPIPS not computed" in capsys.readouterr().err
    pred, gt = _pair(5)
    out = evaluate_images([("a", pred, gt, None)], protocol, lpips_fn, reason)
    assert out["aggregate"]["lpips"] is None and out["per_image"]["a"]["lpips"] is None
    assert out["missing"]["lpips"] == out["missing"]["lpips_01"] == reason
    assert "dynamic" in out["missing"]["psnr_dyn"]       # dyblurf has no masks
    assert out["aggregate"]["psnr"] == pytest.approx(im.psnr(pred, im.saved_image(gt)))  # GT read as 8-bit


def test_missing_vgg_weights_recorded_not_zero(tmp_path, monkeypatch, capsys):
    """dydeblur on DyBluRF-layout scenes wants LPIPS VGG: without its backbone, LPIPS is missing with
    the file and what to do, never a number and never a crash."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    protocol = get_protocol("dydeblur").for_layout("dyblurf")
    lpips_fn, reason = make_lpips(protocol)
    assert lpips_fn is None and "vgg16-397923af.pth" in reason and "VGG16 backbone weights missing" in reason
    assert "warning: LPIPS not computed" in capsys.readouterr().err
    pred, gt = _pair(7)
    out = evaluate_images([("a", pred, gt, None)], protocol, lpips_fn, reason)
    assert out["aggregate"]["lpips"] is None and out["missing"]["lpips"] == out["missing"]["lpips_01"] == reason
    assert out["conventions"]["lpips"]["net"] == "vgg" and out["aggregate"]["psnr"] is not None


def test_vgg_lpips_matches_package_with_random_backbone(tmp_path, monkeypatch):
    """LPIPS VGG through our loader equals the lpips package given the same (random) VGG16 features."""
    import lpips

    from bench.metrics.lpips_metric import LPIPSMetric, backbone_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(1)
    ref = lpips.LPIPS(pretrained=True, net="vgg", pnet_rand=True, verbose=False).eval()
    state = {f"features.{name.split('.', 1)[1]}": value for name, value in ref.net.state_dict().items()}
    path = backbone_checkpoint("vgg")
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    pred, gt = _pair(8, 48, 48)
    with torch.no_grad():
        want = ref(_t(pred), _t(gt)).item()  # normalize=False: [0,1] fed as is, as dydeblur's train.py
    assert LPIPSMetric("unscaled", net="vgg")(pred, gt) == pytest.approx(want, abs=1e-6)
    lpips_fn, reason = make_lpips(get_protocol("dydeblur").for_layout("dyblurf"))
    assert reason is None and lpips_fn.net == "vgg" and lpips_fn(pred, gt) == pytest.approx(want, abs=1e-6)


def test_gt_resized_with_inter_area():
    import cv2

    pred, _ = _pair(6, 16, 20)
    gt_big = cv2.resize(pred, (40, 32), interpolation=cv2.INTER_NEAREST)
    out = evaluate_images([("a", pred, gt_big, None)], get_protocol("synthetic"), None, "off")
    want = im.psnr(pred, cv2.resize(gt_big, (20, 16), interpolation=cv2.INTER_AREA))
    assert out["per_image"]["a"]["psnr"] == pytest.approx(want)


def test_weights_check_and_fetch_failure(tmp_path, monkeypatch, capsys):
    from torchvision.models import AlexNet_Weights

    from bench.cli import main
    from bench.metrics import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert main(["weights", "check"]) == 1
    assert "MISSING torchvision AlexNet backbone" in capsys.readouterr().out

    def offline(self, *a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(type(AlexNet_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    assert main(["weights", "fetch"]) == 2
    assert "download failed (network unreachable)" in capsys.readouterr().err
    ckpt = weights.lpips_metric.alexnet_checkpoint()
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert weights.fetch() == ckpt          # present: nothing to download
    assert main(["weights", "check"]) == 0


def test_every_registered_dataset_has_a_protocol():
    from bench.data.registry import list_datasets

    specs = list_datasets()
    assert specs and all(spec.protocol in PROTOCOLS for spec in specs)
