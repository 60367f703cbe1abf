"""Renderer tests: agreement with the brute-force reference, gradients, channels, backends."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_reference import random_scene, reference_render  # noqa: E402

import bench.render.composite as composite_mod  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.render import RenderOutput, cpu_ext, rasterize  # noqa: E402
from bench.render.projection import project, quat_scale_to_factor  # noqa: E402

W, H = 70, 45  # not multiples of the tile size: partial tiles on the right and bottom


@pytest.fixture
def torch_path():
    """Tests of the pure-PyTorch compositor's own machinery (blocks, segments, recomputation)."""
    cpu_ext.use_compiled(False)
    yield
    cpu_ext.use_compiled(None)


def hard_scene(seed: int, n: int = 240):
    """Random scene plus Gaussians behind the camera, between the camera and the near plane,
    partly off-screen, centred on tile borders and corners, and very large ones."""
    means, quats, log_scales, logits, colors, viewmats, Ks = random_scene(
        n, num_cameras=2, width=W, height=H, seed=seed, spread=1.6)
    g = torch.Generator().manual_seed(100 + seed)
    f = Ks[0, 0, 0].item()
    # behind the camera and inside the near plane
    means[:8, 2] = torch.tensor([-1.0, -0.2, 0.0, 0.005, 0.009, -3.0, 0.0101, 0.02], dtype=means.dtype)
    # centres exactly on tile borders/corners of camera 0 (multiples of 8 and 16 pixels)
    z = 2.0 + torch.rand(12, generator=g, dtype=means.dtype)
    px = torch.tensor([8, 16, 32, 48, 64, 16, 24, 40, 56, 0, 70, 32], dtype=means.dtype)
    py = torch.tensor([8, 16, 32, 16, 40, 0, 24, 8, 32, 16, 45, 44], dtype=means.dtype)
    means[8:20, 0] = (px - W / 2) * z / f
    means[8:20, 1] = (py - H / 2) * z / f
    means[8:20, 2] = z
    # partly off-screen: centres just outside the image
    means[20:26, 0] = torch.tensor([-0.85, 0.85, -0.9, 0.9, 0.0, 0.0], dtype=means.dtype) * 3.0
    means[20:26, 1] = torch.tensor([0.0, 0.0, 0.5, -0.5, -0.6, 0.6], dtype=means.dtype) * 3.0
    means[20:26, 2] = 3.0
    log_scales[20:26] = -1.0
    # very large Gaussians covering most of the image
    log_scales[26:30] = torch.tensor([0.5, 1.0, 0.0, 1.5], dtype=means.dtype)[:, None]
    logits[26:30] = torch.tensor([-2.0, -3.0, -1.5, -4.0], dtype=means.dtype)
    return means, quats, log_scales, logits, colors, viewmats, Ks


def assert_matches_reference(out: RenderOutput, ref: dict, tol: float) -> None:
    for name in ("rgb", "depth", "alpha", "features"):
        got, want = getattr(out, name), ref[name]
        if want is None:
            assert got is None
            continue
        assert got.shape == want.shape, name
        err = (got.double() - want).abs().max().item()
        assert err <= tol, f"{name}: max error {err}"
    assert torch.equal(out.radii, ref["radii"])
    assert torch.equal(out.visible, ref["visible"])
    vis = ref["visible"]
    assert torch.allclose(out.means2d[vis].double(), ref["means2d"][vis], atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_reference(seed, cpu_path):
    scene = hard_scene(seed)
    n = len(scene[0])
    feats = torch.rand(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    bg = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
    out = rasterize(*scene, W, H, features=feats, background=bg, backend="torch")
    ref = reference_render(*scene, W, H, features=feats, background=bg)
    assert out.visible.any() and not out.visible.all()
    assert (out.alpha > 0.99).any()  # some pixels saturate, so the stop rule is exercised
    assert_matches_reference(out, ref, 1e-5)


def test_near_and_far_planes_and_culling(cpu_path):
    scene = hard_scene(3)
    out = rasterize(*scene, W, H, near=0.5, far=3.5, backend="torch")
    ref = reference_render(*scene, W, H, near=0.5, far=3.5)
    assert_matches_reference(out, ref, 1e-5)
    assert not out.visible[0, :8].any()  # behind the camera or nearer than 0.5
    assert (out.radii[~out.visible] == 0).all() and (out.radii[out.visible] > 0).all()
    assert out.radii.dtype == torch.int32 and out.radii.shape == (2, len(scene[0]), 2)


def test_float32_close_to_float64_reference(cpu_path):
    scene = hard_scene(4)
    ref = reference_render(*scene, W, H)
    out = rasterize(*[t.float() for t in scene], W, H, backend="torch")
    err = (out.rgb.double() - ref["rgb"]).abs()
    # float32 rounding; a rare pixel may flip a 1/255 threshold decision
    assert err.mean().item() < 1e-5
    assert torch.quantile(err.flatten(), 0.999).item() < 1e-3


def test_tile_size_does_not_change_the_image(monkeypatch, cpu_path):
    scene = hard_scene(5)
    base = rasterize(*scene, W, H, backend="torch")
    for tile in (4, 16):
        monkeypatch.setattr(composite_mod, "TILE", tile)
        out = rasterize(*scene, W, H, backend="torch")
        assert (out.rgb - base.rgb).abs().max().item() < 1e-12
        assert (out.alpha - base.alpha).abs().max().item() < 1e-12


def test_zero_gaussians_render_background(cpu_path):
    scene = [t[:0] for t in random_scene(1)[:5]] + list(random_scene(1)[5:])
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    out = rasterize(*scene, 64, 48, background=bg, features=torch.zeros(0, 2, dtype=torch.float64))
    assert out.rgb.shape == (1, 48, 64, 3)
    assert torch.equal(out.rgb, bg.expand(1, 48, 64, 3))
    assert (out.alpha == 0).all() and (out.depth == 0).all() and (out.features == 0).all()
    assert out.means2d.shape == (1, 0, 2) and out.radii.shape == (1, 0, 2)


def test_projection_matches_gsplat_torch_reference():
    """Means, conics and depths agree with gsplat's own pure-PyTorch EWA projection (its radii
    follow an older, opacity-unaware rule, so only the geometry is compared)."""
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    means, quats, log_scales, logits, colors, viewmats, Ks = hard_scene(13)
    covars, _ = _quat_scale_to_covar_preci(quats, torch.exp(log_scales), compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(means, covars, viewmats, Ks, W, H)
    mine = project(means, quat_scale_to_factor(quats, torch.exp(log_scales)), torch.sigmoid(logits),
                   viewmats, Ks, W, H, 0.01, 1e10)
    both = mine.visible & (radii > 0).all(-1)
    assert both.sum() > 100
    assert torch.allclose(mine.means2d[both], means2d[both], rtol=1e-10, atol=1e-9)
    assert torch.allclose(mine.conics[both], conics[both], rtol=1e-9, atol=1e-12)
    assert torch.allclose(mine.depths[both], depths[both], rtol=1e-12)


def test_sh_colours_match_gsplat_reference_formula(cpu_path):
    from gsplat.cuda._torch_impl import _spherical_harmonics

    scene = list(hard_scene(6, n=120))
    means, viewmats = scene[0], scene[5]
    g = torch.Generator().manual_seed(6)
    for degree in (0, 1, 2, 3, 4):
        coeffs = 0.4 * torch.randn(len(means), 25, 3, dtype=torch.float64, generator=g)
        out = rasterize(*scene[:4], coeffs, *scene[5:], W, H, sh_degree=degree, backend="torch")
        campos = torch.linalg.inv(viewmats)[:, :3, 3]
        for c in range(len(viewmats)):
            rgb = _spherical_harmonics(degree, means - campos[c], coeffs).add(0.5).clamp_min(0.0)
            ref = reference_render(*scene[:4], rgb, viewmats[c:c + 1], scene[6][c:c + 1], W, H)
            assert (out.rgb[c] - ref["rgb"][0]).abs().max().item() < 1e-5, degree


def test_depth_and_features_composite_like_colour(cpu_path):
    scene = list(hard_scene(7))
    means, viewmats = scene[0], scene[5]
    # camera-0 depth of every Gaussian as a feature must give the depth channel times alpha
    z0 = (means @ viewmats[0, :3, :3].T + viewmats[0, :3, 3])[:, 2:3]
    out = rasterize(*scene, W, H, features=torch.cat([scene[4], z0], 1), backend="torch")
    assert torch.allclose(out.features[0, ..., :3], out.rgb[0], atol=1e-12)
    assert torch.allclose(out.features[0, ..., 3:], out.depth[0] * out.alpha[0], atol=1e-9)
    mask = out.alpha[0, ..., 0] > 1e-3
    assert torch.allclose(out.depth[0][mask], (out.features[0, ..., 3:] / out.alpha[0])[mask], atol=1e-9)
    # depth stays within the depth range of the visible Gaussians
    zs = z0[out.visible[0]]
    assert out.depth[0][mask].min() >= zs.min() - 1e-9 and out.depth[0][mask].max() <= zs.max() + 1e-9


def _tiny_scene(seed):
    means, quats, log_scales, logits, colors, viewmats, Ks = random_scene(
        5, num_cameras=2, width=20, height=14, seed=seed, scale_range=(-1.8, -1.0))
    feats = torch.rand(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    # opacity above 0.999, centred on pixel (10, 7) of camera 0: alpha clamped there (zero slope)
    logits[0] = 9.0
    means[0] = torch.tensor([0.5 * 3.0 / 18.0, 0.5 * 3.0 / 18.0, 3.0], dtype=means.dtype)
    return means, quats, log_scales, logits, colors, feats, viewmats, Ks


@pytest.mark.parametrize("seed, fast, first_segment", [(3, False, 64), (4, True, 1)])
def test_gradients_match_finite_differences(monkeypatch, seed, fast, first_segment, cpu_path):
    monkeypatch.setattr(composite_mod, "FIRST_SEGMENT", first_segment)
    means, quats, log_scales, logits, colors, feats, viewmats, Ks = _tiny_scene(seed)
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(2, 14, 20, k, dtype=torch.float64, generator=g) for k in (3, 1, 1, 2)]

    def loss(means, quats, log_scales, logits, colors, feats):
        out = rasterize(means, quats, log_scales, logits, colors, viewmats, Ks, 20, 14,
                        features=feats, background=bg, backend="torch")
        return ((out.rgb * weights[0]).sum() + 0.1 * (out.depth * weights[1]).sum()
                + (out.alpha * weights[2]).sum() + (out.features * weights[3]).sum())

    inputs = [t.clone().requires_grad_() for t in (means, quats, log_scales, logits, colors, feats)]
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=fast)


def opaque_scene(seed: int, n: int = 300):
    """Many large, opaque Gaussians: most pixels reach the stopping transmittance."""
    scene = list(random_scene(n, num_cameras=2, width=W, height=H, seed=seed, scale_range=(-2.0, -1.0)))
    scene[3] = scene[3] + 5.0
    return scene


def test_depth_segments_and_finished_tiles_match_reference(monkeypatch, torch_path):
    """Blocks composite in depth segments and drop tiles whose pixels have all stopped."""
    scene = opaque_scene(11)
    feats = torch.rand(len(scene[0]), 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = reference_render(*scene, W, H, features=feats)
    finished = []
    block_forward = composite_mod._block_forward

    def spy(*args):
        segments = block_forward(*args)
        finished.append(len(args[3]) - len(segments[-1].live))
        return segments

    monkeypatch.setattr(composite_mod, "_block_forward", spy)
    for first in (2, 64):
        monkeypatch.setattr(composite_mod, "FIRST_SEGMENT", first)
        assert_matches_reference(rasterize(*scene, W, H, features=feats, backend="torch"), ref, 1e-5)
    assert sum(finished) > 0


@pytest.mark.parametrize("save_bytes, first_segment", [(0, 10_000), (1 << 40, 2), (0, 2)])
def test_backward_variants_match(monkeypatch, save_bytes, first_segment, torch_path):
    """Recomputing blocks (above SAVE_BYTES) and short depth segments with finished tiles
    skipped give the same gradients as one kept segment per block."""
    scene = opaque_scene(12, n=200)
    grads = []
    for setting in ((1 << 40, 10_000), (save_bytes, first_segment)):
        monkeypatch.setattr(composite_mod, "SAVE_BYTES", setting[0])
        monkeypatch.setattr(composite_mod, "FIRST_SEGMENT", setting[1])
        params = [t.clone().requires_grad_(i < 5) for i, t in enumerate(scene)]
        out = rasterize(*params, W, H, backend="torch")
        (out.rgb.sum() + out.depth.sum() + out.alpha.sum()).backward()
        grads.append([p.grad for p in params[:5]])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_sh_gradients_match_finite_differences(cpu_path):
    means, quats, log_scales, logits, _, _, viewmats, Ks = _tiny_scene(5)
    coeffs = 0.3 * torch.randn(5, 16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    weights = torch.randn(2, 14, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(means, coeffs):
        out = rasterize(means, quats, log_scales, logits, coeffs, viewmats, Ks, 20, 14, sh_degree=3,
                        backend="torch")
        return (out.rgb * weights).sum()

    inputs = [means.clone().requires_grad_(), coeffs.clone().requires_grad_()]
    # fast mode: checks random directional derivatives instead of all 255 partials
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_means2d_gradient_is_retained(cpu_path):
    scene = [t.clone().requires_grad_(i == 0) for i, t in enumerate(hard_scene(8))]
    out = rasterize(*scene, W, H, backend="torch")
    out.rgb.sum().backward()
    grad = out.means2d.grad
    assert grad is not None and grad.shape == (2, len(scene[0]), 2)
    assert (grad[~out.visible] == 0).all()
    assert (grad[out.visible].abs().sum(-1) > 0).float().mean() > 0.5


def test_float32_gradients_close_to_float64(cpu_path):
    scene64 = hard_scene(9, n=150)
    grads = []
    for dtype in (torch.float64, torch.float32):
        params = [t.detach().to(dtype).clone().requires_grad_(i < 5) for i, t in enumerate(scene64)]
        out = rasterize(*params, W, H, backend="torch")
        (out.rgb.sum() + out.alpha.sum()).backward()
        grads.append([p.grad.double() for p in params[:5]])
    for g64, g32 in zip(*grads):
        scale = g64.abs().max().item()
        assert (g64 - g32).abs().max().item() <= 2e-3 * scale


def test_gsplat_backend_without_cuda_is_a_clear_error():
    scene = [x.float() for x in random_scene(10)]
    with pytest.raises(BenchError, match="CUDA"):
        rasterize(*scene, 64, 48, backend="gsplat")


def test_gsplat_backend_rejects_float64():
    """gsplat's rasteriser is float32 only: float64 is an error there, and auto keeps it on torch."""
    scene = random_scene(10)
    assert scene[0].dtype == torch.float64
    with pytest.raises(BenchError, match="float32 only"):
        rasterize(*scene, 64, 48, backend="gsplat")


def _fake_gsplat_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                               **kw):
    """Stands in for gsplat.rasterization on CPU with gsplat's documented semantics, built on
    the torch backend one camera at a time, so the adapter's plumbing can be checked."""
    assert kw["render_mode"] == "RGB+ED" and kw["packed"] is False and kw["radius_clip"] == 0.0
    assert kw["eps2d"] == 0.3 and kw["rasterize_mode"] == "classic"
    renders, alphas, means2d, radii = [], [], [], []
    for c in range(len(viewmats)):
        cols = colors if colors.dim() == (3 if kw["sh_degree"] is not None else 2) else colors[c]
        feats = None if kw["sh_degree"] is not None or cols.shape[-1] == 3 else cols[:, 3:]
        bg = None if kw["backgrounds"] is None else kw["backgrounds"][c]
        if bg is not None:
            assert (bg[3:] == 0).all()  # features and depth get no background
        out = rasterize(means, quats, torch.log(scales), torch.logit(opacities),
                        cols if kw["sh_degree"] is not None else cols[:, :3], viewmats[c:c + 1],
                        Ks[c:c + 1], width, height, sh_degree=kw["sh_degree"], features=feats,
                        near=kw["near_plane"], far=kw["far_plane"],
                        background=None if bg is None else bg[:3], backend="torch")
        parts = [out.rgb] + ([out.features] if feats is not None else []) + [out.depth]
        renders.append(torch.cat(parts, -1))
        alphas.append(out.alpha)
        means2d.append(out.means2d)
        radii.append(out.radii)
    meta = {"means2d": torch.cat(means2d), "radii": torch.cat(radii)}
    return torch.cat(renders), torch.cat(alphas), meta


@pytest.mark.parametrize("sh_degree, with_features", [(None, True), (None, False), (2, False), (2, True)])
def test_gsplat_adapter_plumbing(monkeypatch, sh_degree, with_features, cpu_path):
    import types

    import bench.render.gsplat_backend as adapter

    monkeypatch.setattr(adapter, "_cuda_ready", lambda means: True)
    fake = types.SimpleNamespace(rasterization=_fake_gsplat_rasterization)
    monkeypatch.setitem(sys.modules, "gsplat", fake)
    scene = [x.float() for x in hard_scene(14, n=120)]  # gsplat is float32 only
    g = torch.Generator().manual_seed(14)
    if sh_degree is not None:
        scene[4] = 0.3 * torch.randn(len(scene[0]), 9, 3, generator=g)
    feats = torch.rand(len(scene[0]), 2, generator=g) if with_features else None
    bg = torch.tensor([0.3, 0.6, 0.9])
    kwargs = dict(sh_degree=sh_degree, features=feats, background=bg)
    via_adapter = rasterize(*scene, W, H, backend="gsplat", **kwargs)
    direct = rasterize(*scene, W, H, backend="torch", **kwargs)
    for name in ("rgb", "depth", "alpha", "features", "radii", "visible"):
        a, b = getattr(via_adapter, name), getattr(direct, name)
        assert (a is None) == (b is None), name
        if a is not None:
            # float32 round trips (exp then log of the scales, logit of sigmoid) in the fake
            assert a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=1e-4), name
    assert via_adapter.radii.dtype == torch.int32 and via_adapter.means2d.shape == direct.means2d.shape


def test_auto_backend_on_cpu_is_torch(cpu_path):
    scene = random_scene(20, seed=2)
    a = rasterize(*scene, 64, 48, backend="auto")
    b = rasterize(*scene, 64, 48, backend="torch")
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.radii, b.radii)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(quats=a["quats"][:, :3]), "quats"),
        (lambda a: a.update(colors=a["colors"][:-1]), "colors"),
        (lambda a: a.update(Ks=a["Ks"][:, :2]), "Ks"),
        (lambda a: a.update(backend="cuda"), "backend"),
        (lambda a: a.update(width=0), "width"),
        (lambda a: a.update(sh_degree=2), "sh_degree=2"),
        (lambda a: a.update(background=torch.zeros(4)), "background"),
    ],
)
def test_bad_inputs_raise_bench_error(change, message):
    names = ["means", "quats", "log_scales", "opacity_logits", "colors", "viewmats", "Ks"]
    args = dict(zip(names, random_scene(10)), width=64, height=48)
    change(args)
    with pytest.raises(BenchError, match=message):
        rasterize(**args)


def test_opacity_aware_radius(cpu_path):
    """A faint Gaussian gets a smaller box than an opaque one of the same shape (gsplat 1.5.3)."""
    means = torch.tensor([[0.0, 0.0, 3.0], [0.3, 0.0, 3.0]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64)
    log_scales = torch.full((2, 3), math.log(0.1), dtype=torch.float64)
    logits = torch.tensor([6.0, -4.0], dtype=torch.float64)
    scene = random_scene(1)
    out = rasterize(means, quats, log_scales, logits, torch.ones(2, 3, dtype=torch.float64),
                    scene[5], scene[6], 64, 48)
    sigma_px = math.sqrt((scene[6][0, 0, 0].item() * 0.1 / 3.0) ** 2 + 0.3)
    o = [1 / (1 + math.exp(-6.0)), 1 / (1 + math.exp(4.0))]
    want = [math.ceil(min(3.33, math.sqrt(2 * math.log(255 * x))) * sigma_px) for x in o]
    assert out.radii[0, :, 0].tolist() == want


def test_cpu_allocator_tuning_is_idempotent():
    from bench.render.allocator import tune_cpu_allocator

    first = tune_cpu_allocator()
    assert isinstance(first, bool) and tune_cpu_allocator() == first
    if sys.platform.startswith("linux"):
        import platform

        if platform.libc_ver()[0] == "glibc":
            assert first


def _grads_on(path: str, scene, dtype=torch.float64):
    """(rgb, alpha, gradients of the first five inputs) of one render + backward on `path`."""
    cpu_ext.use_compiled(path == "compiled")
    try:
        params = [t.detach().to(dtype).clone().requires_grad_(i < 5) for i, t in enumerate(scene)]
        feats = torch.linspace(0, 1, len(scene[0]), dtype=dtype)[:, None].requires_grad_()
        out = rasterize(*params, W, H, features=feats, backend="torch")
        g = torch.Generator().manual_seed(0)
        loss = sum((x * torch.randn(x.shape, generator=g, dtype=dtype)).sum()
                   for x in (out.rgb, out.depth, out.alpha, out.features))
        loss.backward()
        return out.rgb.detach(), out.alpha.detach(), [p.grad for p in params[:5]] + [feats.grad]
    finally:
        cpu_ext.use_compiled(None)


@pytest.fixture
def compiled_available():
    if cpu_ext.load() is None:
        pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")


@pytest.mark.parametrize("scene_fn", [hard_scene, opaque_scene])
def test_compiled_and_torch_paths_agree(scene_fn, compiled_available):
    """Same images and gradients (float64) from both compositors, on scenes with stopped pixels."""
    scene = scene_fn(15)
    rgb_t, alpha_t, grads_t = _grads_on("torch", scene)
    rgb_c, alpha_c, grads_c = _grads_on("compiled", scene)
    assert (rgb_t - rgb_c).abs().max().item() < 1e-12
    assert (alpha_t - alpha_c).abs().max().item() < 1e-12
    for a, b in zip(grads_t, grads_c):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.fixture(params=["avx512", "avx2", "base"])
def isa(request, compiled_available):
    """Each instruction set of the compiled float32 kernels that this CPU runs."""
    if request.param not in cpu_ext.isas():
        pytest.skip(f"this CPU does not run the {request.param} kernels")
    cpu_ext.use_isa(request.param)
    yield request.param
    cpu_ext.use_isa("auto")


def test_compiled_path_is_deterministic_across_thread_counts(isa):
    """Tiles run in parallel, but every output has one writer and reductions a fixed order."""
    scene = opaque_scene(16)
    old = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            results.append(_grads_on("compiled", scene, torch.float32))
    finally:
        torch.set_num_threads(old)
    for other in results[1:]:
        assert torch.equal(results[0][0], other[0]) and torch.equal(results[0][1], other[1])
        for a, b in zip(results[0][2], other[2]):
            assert torch.equal(a, b)


def test_instruction_sets_agree_to_float_rounding(compiled_available):
    """The AVX-512, AVX2 + FMA and baseline float32 kernels differ by rounding only: images
    within float32 rounding of the float64 render, gradients of each other (the float64 gradients
    are no reference here: _grads_on's depth term divides by alpha, which float32 does not
    resolve where alpha is tiny)."""
    scene = hard_scene(17, n=150)
    ref_rgb, ref_alpha, _ = _grads_on("compiled", scene, torch.float64)
    results = {}
    for name in cpu_ext.isas():
        cpu_ext.use_isa(name)
        try:
            results[name] = _grads_on("compiled", scene, torch.float32)
        finally:
            cpu_ext.use_isa("auto")
    first = next(iter(results.values()))
    for name, (rgb, alpha, grads) in results.items():
        err = (rgb.double() - ref_rgb).abs()
        assert err.mean().item() < 1e-5 and torch.quantile(err.flatten(), 0.999).item() < 1e-3, name
        assert (alpha.double() - ref_alpha).abs().mean().item() < 1e-5, name
        for g, g0 in zip(grads, first[2]):
            assert (g - g0).abs().max().item() <= 1e-4 * g0.abs().max().item(), name


def test_vector_kernels_handle_every_tile_size(monkeypatch, isa):
    """Tiles smaller than a vector, not a multiple of it, and larger than a register block give
    the image and gradients of 8-pixel tiles (float32: to rounding)."""
    scene = [t.float() for t in hard_scene(18)]
    base_rgb, base_alpha, base_grads = _grads_on("compiled", scene, torch.float32)
    for tile in (3, 4, 5, 16):
        monkeypatch.setattr(composite_mod, "TILE", tile)
        rgb, alpha, grads = _grads_on("compiled", scene, torch.float32)
        assert (rgb - base_rgb).abs().max().item() < 1e-5, tile
        assert (alpha - base_alpha).abs().max().item() < 1e-5, tile
        for a, b in zip(grads, base_grads):
            assert (a - b).abs().max().item() <= 1e-4 * b.abs().max().item(), tile


def test_compiled_projection_matches_torch(compiled_available):
    """project_cpu.cpp against bench.render.projection (float64): culling, radii, values and
    gradients, on a scene with Gaussians behind the camera and between it and the near plane."""
    from bench.render.cpu_ext.ops import project_compiled
    from bench.render.projection import project, quat_scale_to_factor

    means, quats, log_scales, logits, _, viewmats, Ks = hard_scene(19)
    inputs = [t.clone().requires_grad_() for t in (means, quats, log_scales, logits)]
    outs = []
    for compiled in (False, True):
        for t in inputs:
            t.grad = None
        if compiled:
            proj = project_compiled(cpu_ext.load(), *inputs, viewmats, Ks, W, H, 0.01, 1e10, 0.3)
        else:
            m, q, s, o = inputs
            proj = project(m, quat_scale_to_factor(q, torch.exp(s)), torch.sigmoid(o), viewmats, Ks,
                           W, H, 0.01, 1e10, 0.3)
            proj = (proj.means2d, proj.conics, proj.depths, proj.opacities, proj.radii, proj.visible)
        weights = [torch.randn(x.shape, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
                   for k, x in enumerate(proj[:4])]
        sum((x * w).sum() for x, w in zip(proj[:4], weights)).backward()
        outs.append((proj, [t.grad.clone() for t in inputs]))
    (ref, ref_grads), (got, got_grads) = outs
    assert torch.equal(ref[4], got[4]) and torch.equal(ref[5], got[5])  # radii, visible
    assert 0 < int(ref[5].sum()) < ref[5].numel()  # some culled, some visible
    for a, b in zip(ref[:4], got[:4]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(ref_grads, got_grads):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)


def test_exp_lane_count_is_the_kernels_work(compiled_available):
    """plan.exp_lanes counts pixel lanes through exp(): whole vectors on the float32 path, pixels
    on the scalar float64 path, never more than every pair's whole tile."""
    from bench.render.cpu_ext.ops import composite_compiled, plan_tiles_compiled
    from bench.render.projection import project, quat_scale_to_factor

    means, quats, log_scales, logits, colors, viewmats, Ks = hard_scene(20)
    proj = project(means, quat_scale_to_factor(quats, torch.exp(log_scales)), torch.sigmoid(logits),
                   viewmats, Ks, W, H, 0.01, 1e10, 0.3)
    feats = torch.cat([colors[None].expand(len(viewmats), -1, -1), proj.depths[..., None]], -1)
    module = cpu_ext.load()
    counts = {}
    for dtype in (torch.float64, torch.float32):
        args = [t.to(dtype) for t in (proj.means2d, proj.conics, proj.opacities)]
        plan = plan_tiles_compiled(module, *args, proj.radii, proj.depths.to(dtype), W, H,
                                   composite_mod.TILE)
        composite_compiled(module, *args, feats.to(dtype), plan, W, H)
        counts[dtype] = int(plan.exp_lanes)
        assert 0 < counts[dtype] <= plan.evaluations()
    assert counts[torch.float32] % 8 == 0
    empty = plan_tiles_compiled(module, *[t[:, :0] for t in args], proj.radii[:, :0],
                                proj.depths[:, :0].float(), W, H, composite_mod.TILE)
    composite_compiled(module, *[t[:, :0] for t in args], feats[:, :0].float(), empty, W, H)
    assert int(empty.exp_lanes) == 0


def test_compiled_path_can_be_forced_off(monkeypatch):
    monkeypatch.setenv(cpu_ext.ENV, "0")
    assert not cpu_ext.enabled() and cpu_ext.active_path() == "torch"
    monkeypatch.setenv(cpu_ext.ENV, "1")
    assert cpu_ext.enabled()
    cpu_ext.use_compiled(False)
    try:
        assert not cpu_ext.enabled()
    finally:
        cpu_ext.use_compiled(None)


def test_failed_build_falls_back_with_one_warning(monkeypatch, caplog):
    def broken_build():
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(cpu_ext, "_build", broken_build)
    monkeypatch.setattr(cpu_ext, "_module", None)
    monkeypatch.setattr(cpu_ext, "_failed", None)
    scene = random_scene(30, seed=3)
    with caplog.at_level("WARNING", logger="bench.render.cpu_ext"):
        a = rasterize(*scene, 64, 48)
        b = rasterize(*scene, 64, 48)
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "no compiler here" in warnings[0].getMessage()
    assert cpu_ext.active_path() == "torch" and torch.equal(a.rgb, b.rgb)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_compiled_sh_colours_match_torch(degree, compiled_available):
    """project_cpu.cpp's SH colours against projection.sh_colors (float64): values and gradients
    for the coefficients and the means, with coefficients beyond the degree left untouched."""
    from bench.render.cpu_ext.ops import sh_colors_compiled
    from bench.render.projection import sh_colors

    means, _, _, _, _, viewmats, _ = hard_scene(21)
    g = torch.Generator().manual_seed(degree)
    coeffs = 2.0 * torch.randn(len(means), 16, 3, generator=g, dtype=torch.float64)
    weights = torch.randn(len(viewmats), len(means), 3, generator=g, dtype=torch.float64)
    results = []
    for fn in (lambda c, m: sh_colors(degree, c, m, viewmats),
               lambda c, m: sh_colors_compiled(cpu_ext.load(), degree, c, m, viewmats)):
        c, m = coeffs.clone().requires_grad_(), means.clone().requires_grad_()
        rgb = fn(c, m)
        (rgb * weights).sum().backward()
        # degree 0 does not depend on the direction: torch leaves the means' gradient None
        results.append((rgb.detach(), c.grad, torch.zeros_like(m) if m.grad is None else m.grad))
    for ref, got in zip(*results):
        assert torch.allclose(ref, got, rtol=1e-10, atol=1e-12)
    assert (results[1][0] == 0).any()  # the clamp at 0 was exercised
    assert (results[1][1][:, (degree + 1) ** 2:] == 0).all()


def test_instruction_set_request_is_checked(monkeypatch, compiled_available):
    """BENCH_RENDER_ISA: a name that is no instruction set, or one this CPU cannot run, is a clear
    error when the kernels load, not a silent fall back to the slow path."""
    monkeypatch.setattr(cpu_ext, "_module", None)
    monkeypatch.setenv(cpu_ext.ISA_ENV, "avx3")
    with pytest.raises(BenchError, match="BENCH_RENDER_ISA='avx3': expected one of auto, avx512, avx2, base"):
        cpu_ext.load()
    monkeypatch.setenv(cpu_ext.ISA_ENV, "base")
    assert cpu_ext.load() is not None and cpu_ext.use_isa("auto") == cpu_ext.isas()[0]
