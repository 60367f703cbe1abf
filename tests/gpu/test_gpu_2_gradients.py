"""Gradients of gsplat and the pure-PyTorch backend agree on CUDA float32 scenes, and so do the
densification decisions computed from their screen-space gradients."""

from __future__ import annotations

import pytest
import torch

from gpu_compare import CASES, HEIGHT, N, WIDTH, case_inputs, gpu_scene, grad_errors, growth_threshold, jaccard

from bench.method.config import DensifyConfig
from bench.method.densify import accumulate_gradients, new_state
from bench.render import rasterize

pytestmark = pytest.mark.gpu

# Tolerances. Both backward passes run in float32; gsplat's (fast-math) rebuilds the transmittance
# back to front by dividing by (1 - alpha), which amplifies rounding up to 1000x behind alpha=0.999
# and sums per-pixel contributions with atomics in no fixed order. A real bug (a missing factor, a
# wrong channel, a sign) gives O(1) errors; these bounds sit far from both.
GRAD_REL_L2_TOL = 1e-2  # |g_gsplat - g_torch| / |g_torch| over the Gaussians visible alike
GRAD_ROW_MEDIAN_TOL = 1e-3  # median per-Gaussian relative error
GRAD_ROW_BAD = 0.1  # a Gaussian whose gradient is off by more than 10% ...
GRAD_ROW_BAD_FRAC = 1e-2  # ... is rarer than 1%
AGGREGATE_REL_TOL = 3e-2  # viewmats and background: sums over every Gaussian or pixel (cancellation)
JACCARD_MIN = 0.95  # growth sets (mean normalised screen-space gradient above the threshold)
COUNT_MISMATCH_MAX = 5e-3  # fraction of Gaussians whose visibility count differs
DEPTH_ALPHA_MIN = 0.05  # the depth term of the loss is taken where both alphas exceed this

GAUSSIAN_INPUTS = ("means", "quats", "log_scales", "opacity_logits", "colors")


def _loss_weights(c: int, num_features: int, device, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(9000 + seed)
    shapes = {"rgb": 3, "alpha": 1, "depth": 1, "features": num_features}
    return {k: torch.randn(c, HEIGHT, WIDTH, ch, generator=g).to(device) for k, ch in shapes.items() if ch}


def backward(scene, kwargs, backend: str, weights, depth_mask):
    """Leaf copies of every differentiable input (all but Ks, which gsplat does not differentiate),
    one render and backward of a loss that weighs every output channel; returns (output, grads)."""
    leaves = [t.detach().clone().requires_grad_(i != 6) for i, t in enumerate(scene)]
    extra = {k: (v.detach().clone().requires_grad_(True) if torch.is_tensor(v) else v) for k, v in kwargs.items()}
    out = rasterize(*leaves, WIDTH, HEIGHT, backend=backend, **extra)
    loss = (out.rgb * weights["rgb"]).sum() + (out.alpha * weights["alpha"]).sum()
    loss = loss + 0.1 * (out.depth * weights["depth"] * depth_mask).sum()
    if out.features is not None:
        loss = loss + (out.features * weights["features"]).sum()
    loss.backward()
    grads = dict(zip(GAUSSIAN_INPUTS, (p.grad for p in leaves[:5])))
    grads["viewmats"] = leaves[5].grad
    for name in ("features", "background"):
        if extra.get(name) is not None:
            grads[name] = extra[name].grad
    grads["means2d"] = out.means2d.grad
    return out, grads


@pytest.mark.parametrize("case, sh_degree, num_features, background", CASES, ids=[c[0] for c in CASES])
def test_gradients_match_torch_backend(gsplat_ready, record, cuda, case, sh_degree, num_features, background):
    seed = [c[0] for c in CASES].index(case)
    scene, kwargs, _ = case_inputs(seed, sh_degree, num_features, background, cuda)
    with torch.no_grad():  # the depth term's mask must be the same for both backends
        a = rasterize(*scene, WIDTH, HEIGHT, backend="gsplat", **kwargs).alpha
        b = rasterize(*scene, WIDTH, HEIGHT, backend="torch", **kwargs).alpha
        depth_mask = ((a > DEPTH_ALPHA_MIN) & (b > DEPTH_ALPHA_MIN)).float()
    weights = _loss_weights(2, num_features, cuda, seed)
    gs_out, gs = backward(scene, kwargs, "gsplat", weights, depth_mask)
    ref_out, ref = backward(scene, kwargs, "torch", weights, depth_mask)
    torch.cuda.synchronize()
    # Gaussians that both backends see in exactly the same cameras (and at least one)
    alike = (gs_out.visible == ref_out.visible).all(0) & ref_out.visible.any(0)
    both_2d = gs_out.visible & ref_out.visible  # per camera, for means2d
    assert int(alike.sum()) > N // 4
    figures, bad = {"gaussians_compared": int(alike.sum())}, []
    for name, want in ref.items():
        got = gs[name]
        if name in ("viewmats", "background"):
            e = grad_errors(got, want)
            limits = {"rel_l2": AGGREGATE_REL_TOL}
        else:
            e = grad_errors(got, want, rows=both_2d if name == "means2d" else alike, bad=GRAD_ROW_BAD)
            limits = {"rel_l2": GRAD_REL_L2_TOL, "row_median": GRAD_ROW_MEDIAN_TOL, "row_bad_frac": GRAD_ROW_BAD_FRAC}
        figures.update({f"{name}_{k}": e[k] for k in limits})
        if not e["finite"]:
            bad.append(f"{name}: non-finite gradient")
        bad += [f"{name} {k} {e[k]:.3g} > {tol}" for k, tol in limits.items() if not e[k] <= tol]
        assert want.abs().sum() > 0, f"{name}: the torch backend's gradient is zero (loss does not reach it)"
    record(**figures)
    assert not bad, "; ".join(bad)


def _densify_stats(scene, backend: str, targets, device):
    """Mean normalised screen-space gradient and visibility count per Gaussian over one render
    per camera (a training step's C=1 render) with the L1 loss against ``targets``."""
    state = new_state(N, device)
    for c in range(scene[5].shape[0]):
        leaves = [t.detach().clone().requires_grad_(i < 5) for i, t in enumerate(scene)]
        out = rasterize(*leaves[:5], leaves[5][c:c + 1], leaves[6][c:c + 1], WIDTH, HEIGHT, backend=backend)
        (out.rgb - targets[c:c + 1]).abs().mean().backward()
        accumulate_gradients(state, out.means2d.grad, out.radii, WIDTH, HEIGHT)
    return state["grad2d"] / state["count"].clamp_min(1), state["count"]


def test_densification_decisions_match(gsplat_ready, record, cuda):
    """The Gaussians that would grow (bench/method/densify.py statistics, the trainer's threshold
    rule) are nearly the same set with either backend."""
    scene, _ = gpu_scene(11, n=N, num_cameras=4, device=cuda)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():  # targets: the scene moved a little and recoloured, as a training image
        moved = list(scene)
        moved[0] = scene[0] + 0.02 * torch.randn(scene[0].shape, generator=g).to(cuda)
        moved[4] = (scene[4] + 0.2 * torch.randn(scene[4].shape, generator=g).to(cuda)).clamp(0, 1)
        targets = rasterize(*moved, WIDTH, HEIGHT, backend="torch").rgb
    gs_grad, gs_count = _densify_stats(scene, "gsplat", targets, cuda)
    ref_grad, ref_count = _densify_stats(scene, "torch", targets, cuda)
    cfg = DensifyConfig()
    seen = ref_count > 0
    figures = {"count_mismatch": float((gs_count != ref_count).double().mean()), "seen": int(seen.sum()),
               "grad_median": float(ref_grad[seen].median())}
    cases = {"config": (cfg.grad_threshold, 0),  # release threshold, no cap
             "capped": (cfg.grad_threshold, N + int(seen.sum()) // 10),  # max_gaussians: room for 10% to grow
             "median": (float(ref_grad[seen & (ref_grad > 0)].median()), 0)}  # splits the reached set in half
    bad = []
    for name, (threshold, max_gaussians) in cases.items():
        t_gs = growth_threshold(gs_grad, N, threshold, max_gaussians)
        t_ref = growth_threshold(ref_grad, N, threshold, max_gaussians)
        grow_gs, grow_ref = gs_grad > t_gs, ref_grad > t_ref
        j = jaccard(grow_gs, grow_ref)
        figures.update({f"{name}_threshold": t_ref, f"{name}_grow": int(grow_ref.sum()), f"{name}_jaccard": j})
        if not j >= JACCARD_MIN:
            bad.append(f"{name}: Jaccard {j:.4f} < {JACCARD_MIN} ({int(grow_gs.sum())} vs {int(grow_ref.sum())} grow)")
    record(**figures)
    assert figures["median_grow"] > 0.3 * int(seen.sum())  # the median threshold is informative
    assert figures["count_mismatch"] <= COUNT_MISMATCH_MAX, figures["count_mismatch"]
    assert not bad, "; ".join(bad)
