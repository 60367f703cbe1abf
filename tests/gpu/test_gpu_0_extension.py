"""First and cheapest: the device, gsplat's CUDA extension (its JIT build, timed) and one Gaussian."""

from __future__ import annotations

import math

import pytest
import torch

from gpu_compare import device_info, load_gsplat_extension

from bench.render import rasterize

pytestmark = pytest.mark.gpu


def test_device_and_toolchain(record, cuda):
    """Versions, the GPU and the JIT toolchain (nvcc, ninja, compiler) go into the report."""
    info = device_info()
    record(**info)
    assert info["cuda_available"]
    x = torch.arange(1024, device=cuda, dtype=torch.float32)
    assert float((x * 2).sum()) == 1023 * 1024  # the device computes


def test_gsplat_extension_builds_and_loads(record):
    """The suite's first gsplat use: loads gsplat's CUDA extension, building it (minutes) when no
    cached build exists; the time and whether it was cached go into the report."""
    ext = load_gsplat_extension()
    record(ext_seconds=round(ext["seconds"], 1), ext_source=ext["source"], ext_build_dir=ext["build_dir"])
    assert ext["ok"], f"gsplat's CUDA extension did not load after {ext['seconds']:.0f} s " \
                      f"({ext['source']}): {ext['error']}"


def test_bench_preflight_reports_the_extension(gsplat_ready, record):
    """The product's preflight (bench/render/gsplat_ext.py, what `bench doctor` and a gsplat run
    call) sees the loaded extension and says where it is."""
    ext = pytest.importorskip("bench.render.gsplat_ext")
    status = ext.ensure_extension()
    record(ok=status.ok, summary=status.summary())
    assert status.ok, status.reason
    assert ext.require_extension().ok


def _one_gaussian(device):
    """One isotropic Gaussian on the optical axis of a 33x21 camera: its mean projects exactly
    onto the centre of pixel (16, 10), where alpha = opacity and rgb = opacity * colour."""
    width, height, f = 33, 21, 30.0
    means = torch.tensor([[0.0, 0.0, 3.0]], device=device)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]], device=device)
    log_scales = torch.full((1, 3), math.log(0.2), device=device)
    logits = torch.tensor([1.0], device=device)
    colors = torch.tensor([[0.2, 0.5, 0.9]], device=device)
    viewmats = torch.eye(4, device=device)[None]
    Ks = torch.tensor([[[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]]], device=device)
    return [means, quats, log_scales, logits, colors, viewmats, Ks], width, height


def test_one_gaussian_renders_and_backpropagates(gsplat_ready, record, cuda):
    scene, width, height = _one_gaussian(cuda)
    params = [t.clone().requires_grad_(i < 5) for i, t in enumerate(scene)]
    out = rasterize(*params, width, height, backend="gsplat")
    opacity = 1.0 / (1.0 + math.exp(-1.0))
    assert out.rgb.shape == (1, height, width, 3) and out.rgb.device == cuda and out.rgb.dtype == torch.float32
    assert out.alpha.shape == (1, height, width, 1) and out.depth.shape == (1, height, width, 1)
    assert out.radii.shape == (1, 1, 2) and out.radii.dtype == torch.int32
    assert out.visible.shape == (1, 1) and out.visible.dtype == torch.bool and bool(out.visible[0, 0])
    centre_alpha = float(out.alpha.detach()[0, 10, 16, 0])
    record(centre_alpha=centre_alpha, radii=str(out.radii[0, 0].tolist()),
           means2d=str([round(v, 4) for v in out.means2d[0, 0].tolist()]))
    assert abs(centre_alpha - opacity) < 1e-5
    assert torch.allclose(out.rgb.detach()[0, 10, 16], scene[4][0] * opacity, atol=1e-5)
    assert abs(float(out.depth.detach()[0, 10, 16, 0]) - 3.0) < 1e-4
    mx, my = out.means2d.detach()[0, 0].tolist()
    assert abs(mx - 16.5) < 1e-4 and abs(my - 10.5) < 1e-4
    # the same render from the pure-PyTorch backend on the GPU
    ref = rasterize(*scene, width, height, backend="torch")
    assert torch.equal(out.radii, ref.radii) and torch.equal(out.visible, ref.visible)
    for name in ("rgb", "alpha", "depth"):
        err = float((getattr(out, name).detach().double() - getattr(ref, name).double()).abs().max())
        assert err < 1e-5, f"{name}: gsplat and torch backends differ by {err}"
    # backward kernels run and give finite gradients, including the screen-space one
    (out.rgb.sum() + out.alpha.sum()).backward()
    assert out.means2d.grad is not None and out.means2d.grad.shape == (1, 1, 2)
    for i, p in enumerate(params[:5]):
        assert p.grad is not None and torch.isfinite(p.grad).all(), i
    assert float(params[3].grad.abs().sum()) > 0
