"""The parametric kernel families (defocus disc, motion segment): gradient at size 0, size vs second
moment, BP-Net's mid-range start, which families the blur-aware sparsity applies to, and a tiny fit
that recovers a disc radius (docs/method.md §3-5)."""

import pytest
import torch
import torch.nn.functional as F

from bench.method.bpnet import BPNet
from bench.method.config import resolve_config
from bench.method.kernels import (apply_kernels, centre_index, defocus_kernel, has_free_centre, kernel_offsets,
                                  motion_kernel)
from bench.method.step import loss_terms

K = 9


def second_moment(kernels: torch.Tensor) -> torch.Tensor:
    """(B,K*K,H,W) kernels -> (B,H,W) second moment about the centre tap, px^2."""
    r2 = kernel_offsets(K).pow(2).sum(-1).view(1, -1, 1, 1)
    return (kernels * r2).sum(1)


def texture(seed: int, H: int = 24, W: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.rand(1, 3, H + 2, W + 2, generator=g), 3, 1)


@pytest.mark.parametrize("family", ["defocus", "motion"])
def test_blur_has_a_gradient_in_the_size_at_size_zero(family):
    # torch's clamp has zero gradient at 0, which made size 0 a stationary point of the blur
    size = torch.zeros(1, 1, 24, 24, requires_grad=True)
    if family == "defocus":
        k = defocus_kernel(size, K)
    else:
        k = motion_kernel(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 24, 24), size, K)
    img = texture(0)
    assert torch.allclose(k[:, centre_index(K)], torch.ones(1, 24, 24))  # still a delta at 0
    apply_kernels(img, k).pow(2).sum().backward()
    assert size.grad.abs().mean() > 1e-3


def test_defocus_second_moment_follows_the_radius():
    r = torch.linspace(0, 4, 17).view(-1, 1, 1, 1)
    m2 = second_moment(defocus_kernel(r, K)).flatten()
    assert (m2[1:] > m2[:-1]).all()  # a larger radius always blurs more
    # the soft edge clamp(r + 1 - |p|) is about a uniform disc of radius r + 0.5 (second moment R^2 / 2)
    for radius in (1.0, 2.0, 3.0):
        got = second_moment(defocus_kernel(torch.full((1, 1, 1, 1), radius), K)).item()
        assert abs(got / ((radius + 0.5) ** 2 / 2) - 1) < 0.1


def test_motion_second_moment_follows_the_length():
    d = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    m2 = [second_moment(motion_kernel(d, torch.full((1, 1, 1, 1), L), K)).item() for L in (0.0, 2.0, 4.0, 6.0)]
    assert m2[0] == 0 and all(b > a for a, b in zip(m2, m2[1:]))
    # taps on the segment of length 6 share the mass equally: |dx| <= 3 -> mean dx^2 = 4
    assert abs(m2[3] - 4.0) < 1e-4


@pytest.mark.parametrize("init_centre", [0.5, 0.9])
def test_parametric_heads_start_mid_range_and_full_at_init_centre(init_centre):
    args = (torch.tensor([0]), texture(1), 1 + torch.rand(1, 1, 24, 24), torch.zeros(1, 1, 24, 24))
    torch.manual_seed(0)
    k, _ = BPNet(2, K, "defocus", init_centre=init_centre, cnn_width=8)(*args)
    mid = defocus_kernel(torch.full((1, 1, 1, 1), (K - 1) / 4), K)
    assert torch.allclose(k.mean((2, 3)), mid.flatten()[None], atol=0.01)
    torch.manual_seed(0)
    k, _ = BPNet(2, K, "motion", init_centre=init_centre, cnn_width=8)(*args)
    assert abs(second_moment(k).mean().item() - second_moment(
        motion_kernel(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1), torch.full((1, 1, 1, 1), (K - 1) / 2), K)).item()) < 0.1
    torch.manual_seed(0)
    k, _ = BPNet(2, K, "full", init_centre=init_centre, cnn_width=8)(*args)
    assert abs(k[:, centre_index(K)].mean().item() - init_centre) < 0.02


def _terms(kernel_type: str, kernels: torch.Tensor, mask: torch.Tensor, img: torch.Tensor, target: torch.Tensor):
    """The step's loss terms (rec, sparsities) for a virtual view, every term active from step 0."""
    cfg = resolve_config(None, None, {"blur.kernel_type": kernel_type, "loss.blur_sparsity_start_frac": 0.0,
                                      "loss.mask_sparsity_start_frac": 0.0})
    pred = mask * apply_kernels(img, kernels) + (1 - mask) * img
    return loss_terms(cfg, 0, {"mask": None, "depth": None, "virtual": True}, None, img, pred, target,
                      (kernels, mask))


def test_blur_aware_sparsity_applies_only_to_a_free_centre_weight():
    assert has_free_centre("full") and not has_free_centre("defocus") and not has_free_centre("motion")
    img = texture(2)
    k = defocus_kernel(torch.full((1, 1, 24, 24), 2.0), K)
    m = torch.full((1, 1, 24, 24), 0.5)
    for family, present in (("full", True), ("defocus", False), ("motion", False)):
        terms = _terms(family, k, m, img, img)
        assert ("blur_sparsity" in terms) is present and "mask_sparsity" in terms


def test_defocus_fit_recovers_a_weak_disc_and_keeps_its_mask():
    # a weakly blurred frame (radius 1, below the mid-range start of 2): the radius must shrink to
    # it without collapsing to a delta, and the mask must stay on
    torch.manual_seed(0)
    img = texture(3)
    true = defocus_kernel(torch.full((1, 1, 24, 24), 1.0), K)
    target = apply_kernels(img, true)
    net = BPNet(1, K, "defocus", init_centre=0.5, init_mask=0.5, cnn_width=8)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    args = (torch.tensor([0]), img, torch.ones(1, 1, 24, 24), torch.zeros(1, 1, 24, 24))
    for _ in range(80):
        k, m = net(*args)
        opt.zero_grad()
        sum(_terms("defocus", k, m, img, target).values()).backward()
        opt.step()
    k, m = net(*args)
    assert abs(second_moment(k).mean().item() / second_moment(true).mean().item() - 1) < 0.15
    assert m.mean().item() > 0.9
