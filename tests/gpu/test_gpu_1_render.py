"""gsplat and the pure-PyTorch backend render the same CUDA float32 scenes alike (forward only).

Scenes (gpu_compare.gpu_scene): 20k Gaussians, 2 cameras, 250x141 pixels (partial tiles for both
backends), with Gaussians behind the camera and inside the near plane, opacity under 1/255 and just
above, far off-screen and straddling the borders, on tile corners, huge, needle-like.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gpu_compare import CASES, HEIGHT, N, WIDTH, case_inputs, gpu_scene, image_errors, projection_errors

from bench.render import RenderOutput, rasterize

pytestmark = pytest.mark.gpu

# Tolerances. gsplat is built with -use_fast_math (__expf, approximate division and square root,
# denormals flushed); the torch backend computes in IEEE float32. Pixel differences are float32
# rounding (~1e-6) except where a contribution sits on a threshold (alpha 1/255, transmittance 1e-4,
# a box edge rounding to the next pixel): such a flip changes a pixel by at most ~1/255 times a
# channel value (<= 1 here), so the mean and the 99.9th percentile are tight and the max is loose.
IMAGE_MEAN_TOL = 1e-4
IMAGE_Q999_TOL = 2e-3
IMAGE_MAX_TOL = 2e-2
# Depth is the expected camera z (sum w z / alpha): compared relatively where alpha > 0.05 in both,
# where one flipped 1/255 contribution moves it by at most (1/255) * dz / 0.05.
DEPTH_ALPHA_MIN = 0.05
DEPTH_REL_MEAN_TOL = 1e-4
DEPTH_REL_Q999_TOL = 5e-3
DEPTH_REL_MAX_TOL = 0.25
# Culling and radii: a Gaussian flips only when its opacity, box or radius sits within float
# rounding of a threshold (a handful in 20k); a radius is ceil(extent * sigma) and may differ by 1.
VISIBLE_MISMATCH_MAX = 2e-3  # fraction of the Gaussians visible to either backend (per camera)
RADII_MISMATCH_MAX = 1e-2  # fraction of those visible to both whose (rx, ry) differ
RADII_MAX_DIFF = 2  # pixels
MEANS2D_TOL_PX = 1e-2  # where both see the Gaussian (culled means2d is uninitialised in gsplat)

def compare_renders(gs, ref) -> dict:
    """Every figure the forward comparison asserts on (gs: candidate, ref: reference output)."""
    figures = {}
    for name in ("rgb", "alpha", "features"):
        a, b = getattr(gs, name), getattr(ref, name)
        if b is None:
            assert a is None, f"{name}: expected None"
            continue
        assert a.shape == b.shape, f"{name}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        figures.update({f"{name}_{k}": v for k, v in image_errors(a, b).items() if k != "n"})
    mask = (gs.alpha > DEPTH_ALPHA_MIN) & (ref.alpha > DEPTH_ALPHA_MIN)
    depth = image_errors(gs.depth, ref.depth, mask=mask, relative=True)
    figures.update({f"depth_rel_{k}": v for k, v in depth.items() if k != "n"}, depth_pixels=depth["n"])
    figures.update(projection_errors(gs, ref))
    return figures


def assert_close(figures: dict) -> None:
    bad = []
    for name in ("rgb", "alpha", "features"):
        if f"{name}_mean" not in figures:
            continue
        for key, tol in (("mean", IMAGE_MEAN_TOL), ("q999", IMAGE_Q999_TOL), ("max", IMAGE_MAX_TOL)):
            if not figures[f"{name}_{key}"] <= tol:
                bad.append(f"{name} {key} |diff| {figures[f'{name}_{key}']:.3g} > {tol}")
    for key, tol in (("mean", DEPTH_REL_MEAN_TOL), ("q999", DEPTH_REL_Q999_TOL), ("max", DEPTH_REL_MAX_TOL)):
        if not figures[f"depth_rel_{key}"] <= tol:
            bad.append(f"depth (alpha > {DEPTH_ALPHA_MIN}) relative {key} {figures[f'depth_rel_{key}']:.3g} > {tol}")
    checks = [("visible_mismatch", VISIBLE_MISMATCH_MAX), ("radii_mismatch", RADII_MISMATCH_MAX),
              ("radii_max_diff", RADII_MAX_DIFF), ("means2d_max_diff", MEANS2D_TOL_PX),
              ("culled_radii_nonzero", 0)]
    for key, tol in checks:
        if not figures[key] <= tol:
            bad.append(f"{key} {figures[key]:.3g} > {tol}")
    assert not bad, "; ".join(bad)


def check_output_contract(out, c: int, n: int, width: int, height: int, num_features: int, device) -> None:
    """RenderOutput shapes, dtypes and device (bench/render/output.py)."""
    assert out.rgb.shape == (c, height, width, 3) and out.rgb.dtype == torch.float32
    assert out.depth.shape == (c, height, width, 1) and out.alpha.shape == (c, height, width, 1)
    if num_features:
        assert out.features.shape == (c, height, width, num_features)
    else:
        assert out.features is None
    assert out.means2d.shape == (c, n, 2)
    assert out.radii.shape == (c, n, 2) and out.radii.dtype == torch.int32
    assert out.visible.shape == (c, n) and out.visible.dtype == torch.bool
    for t in (out.rgb, out.depth, out.alpha, out.means2d, out.radii, out.visible):
        assert t.device == device, t.device
    assert torch.isfinite(out.rgb).all() and torch.isfinite(out.alpha).all() and torch.isfinite(out.depth).all()


def _to_cpu(out: RenderOutput) -> RenderOutput:
    return RenderOutput(**{f.name: None if getattr(out, f.name) is None else getattr(out, f.name).detach().cpu()
                           for f in dataclasses.fields(RenderOutput)})


def test_forward_matches_cpu_reference(gsplat_ready, record, cuda):
    """gsplat on the GPU against the torch backend on the CPU (the path the CPU suite checks against
    the brute-force reference), independent of the torch backend's CUDA path."""
    _, sh_degree, num_features, background = CASES[1]
    scene, kwargs, _ = case_inputs(1, sh_degree, num_features, background, cuda)
    with torch.no_grad():
        gs = _to_cpu(rasterize(*scene, WIDTH, HEIGHT, backend="gsplat", **kwargs))
        ref = rasterize(*[t.cpu() for t in scene], WIDTH, HEIGHT, backend="torch",
                        **{k: v.cpu() if torch.is_tensor(v) else v for k, v in kwargs.items()})
    figures = compare_renders(gs, ref)
    record(**figures)
    assert_close(figures)


@pytest.mark.parametrize("case, sh_degree, num_features, background", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_torch_backend(gsplat_ready, record, cuda, case, sh_degree, num_features, background):
    seed = [c[0] for c in CASES].index(case)
    scene, kwargs, groups = case_inputs(seed, sh_degree, num_features, background, cuda)
    with torch.no_grad():
        gs = rasterize(*scene, WIDTH, HEIGHT, backend="gsplat", **kwargs)
        ref = rasterize(*scene, WIDTH, HEIGHT, backend="torch", **kwargs)
    torch.cuda.synchronize()
    for out in (gs, ref):
        check_output_contract(out, 2, N, WIDTH, HEIGHT, num_features, cuda)
    figures = compare_renders(gs, ref)
    record(**figures)
    # the scene exercises what it claims: culled cases culled by both, saturated pixels exist
    for name in ("behind_or_near", "faint_culled"):
        assert not ref.visible[0, groups[name]].any(), f"{name} Gaussians visible to camera 0"
    assert ref.visible[0, groups["huge"]].any() and ref.visible[0, groups["straddling"]].any()
    assert (ref.alpha > 0.99).any() and (ref.alpha < 0.5).any()
    assert_close(figures)


def test_auto_backend_on_cuda_is_gsplat(gsplat_ready, record, cuda):
    scene, _ = gpu_scene(7, n=5000, device=cuda)
    with torch.no_grad():
        auto = rasterize(*scene, WIDTH, HEIGHT, backend="auto")
        gs = rasterize(*scene, WIDTH, HEIGHT, backend="gsplat")
    err = float((auto.rgb - gs.rgb).abs().max())
    record(max_diff=err)
    assert auto.rgb.device == cuda and err <= 1e-6 and torch.equal(auto.radii, gs.radii)
