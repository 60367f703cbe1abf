"""Kernel families, blur formation, BP-Net and the losses."""

import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from bench.method.bpnet import BPNet, positional_encoding
from bench.method.kernels import (apply_kernels, blur_formation, centre_index, defocus_kernel, full_kernel,
                                  kernel_offsets, motion_kernel)
from bench.method.losses import (blur_aware_sparsity, depth_loss, disparity, l1, low_frequency_loss, mask_sparsity,
                                 reconstruction_loss, ssim, trimmed_l1)

K = 9


def as_grids(k):
    """(B,K*K,H,W) -> (B*H*W,K,K) with rows = dy, columns = dx."""
    kk = k.shape[1]
    n = int(kk ** 0.5)
    return k.permute(0, 2, 3, 1).reshape(-1, n, n)


def all_families(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "full": full_kernel(torch.randn(2, K * K, 3, 4, generator=g) * 3),
        "defocus": defocus_kernel(torch.rand(2, 1, 3, 4, generator=g) * 4, K),
        "motion": motion_kernel(torch.randn(2, 2, 3, 4, generator=g), torch.rand(2, 1, 3, 4, generator=g) * 8, K),
    }


@pytest.mark.parametrize("family", ["full", "defocus", "motion"])
def test_kernels_are_normalised(family):
    k = all_families()[family]
    assert k.shape == (2, K * K, 3, 4)
    assert (k >= 0).all()
    assert torch.allclose(k.sum(1), torch.ones(2, 3, 4), atol=1e-5)


def test_offsets_follow_unfold_order():
    off = kernel_offsets(3)
    assert off[0].tolist() == [-1, -1] and off[1].tolist() == [0, -1] and off[centre_index(3)].tolist() == [0, 0]


def test_defocus_kernel_is_radially_symmetric():
    g = as_grids(defocus_kernel(torch.linspace(0, 4, 12).view(1, 1, 3, 4), K))
    for sym in (torch.rot90(g, 1, (1, 2)), torch.flip(g, (1,)), torch.flip(g, (2,)), g.transpose(1, 2)):
        assert torch.allclose(sym, g, atol=1e-7)
    centre = g[:, K // 2, K // 2]
    assert (centre[1:] <= centre[:-1] + 1e-7).all()  # a wider disc spreads the mass


def test_defocus_radius_one_is_a_plus_shape():
    g = as_grids(defocus_kernel(torch.ones(1, 1, 1, 1), K))[0]
    c = K // 2
    # offsets with |p| <= 1 get full weight; the diagonal (|p| = 1.41) gets 1 + 1 - 1.41
    assert torch.allclose(g[c, c], g[c, c + 1]) and torch.allclose(g[c, c], g[c - 1, c])
    assert torch.allclose(g[c + 1, c + 1] / g[c, c], torch.tensor(2 - 2 ** 0.5))
    assert g[c, c + 2] == 0


def test_motion_kernel_is_point_symmetric_and_follows_direction():
    k = all_families()["motion"]
    g = as_grids(k)
    assert torch.allclose(torch.rot90(g, 2, (1, 2)), g, atol=1e-6)
    # Horizontal motion of length 4: the 5 centre-row taps |dx| <= 2 share the mass equally.
    h = as_grids(motion_kernel(torch.tensor([1.0, 0]).view(1, 2, 1, 1), torch.full((1, 1, 1, 1), 4.0), K))[0]
    c = K // 2
    assert torch.allclose(h[c, c - 2:c + 3], torch.full((5,), 0.2), atol=1e-6)
    assert torch.allclose(h.sum(), h[c, c - 2:c + 3].sum())
    # Opposite directions give the same kernel; a vertical one is the transpose.
    assert torch.allclose(motion_kernel(-k.new_tensor([3.0, 0]).view(1, 2, 1, 1), torch.full((1, 1, 1, 1), 4.0), K)[0, :, 0, 0],
                          h.reshape(-1), atol=1e-6)
    v = as_grids(motion_kernel(torch.tensor([0.0, 2]).view(1, 2, 1, 1), torch.full((1, 1, 1, 1), 4.0), K))[0]
    assert torch.allclose(v, h.T, atol=1e-6)


def test_zero_size_parametric_kernels_are_deltas():
    delta = torch.zeros(K * K)
    delta[centre_index(K)] = 1
    d = defocus_kernel(torch.zeros(1, 1, 1, 1), K)[0, :, 0, 0]
    m = motion_kernel(torch.tensor([0.3, 0.8]).view(1, 2, 1, 1), torch.zeros(1, 1, 1, 1), K)[0, :, 0, 0]
    assert torch.equal(d, delta) and torch.allclose(m, delta)


def test_parametric_kernels_are_differentiable():
    radius = torch.full((1, 1, 2, 2), 0.05, requires_grad=True)
    defocus_kernel(radius, K)[:, centre_index(K)].sum().backward()
    assert (radius.grad < 0).all()  # a larger radius lowers the centre weight
    direction = torch.tensor([1.0, 0.3]).view(1, 2, 1, 1).requires_grad_()
    length = torch.full((1, 1, 1, 1), 0.05, requires_grad=True)
    k = motion_kernel(direction, length, K)
    (k[:, centre_index(K)].sum() + k[:, centre_index(K) + 1].sum() * 3).backward()
    assert length.grad.abs().sum() > 0 and direction.grad.abs().sum() > 0


def test_constant_kernel_equals_explicit_convolution_away_from_borders():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, 20, 22, generator=g)
    weights = torch.softmax(torch.randn(K * K, generator=g), 0)
    field = weights.view(1, -1, 1, 1).expand(2, -1, 20, 22)
    out = apply_kernels(img, field)
    ref = F.conv2d(img, weights.view(1, 1, K, K).expand(3, 1, K, K), groups=3)  # valid region only
    r = K // 2
    assert torch.allclose(out[:, :, r:-r, r:-r], ref, atol=1e-6)


def test_apply_kernels_matches_unfold_and_its_gradients(cpu_path):
    g = torch.Generator().manual_seed(4)
    img = torch.rand(2, 3, 7, 8, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.rand(2, 9, 7, 8, generator=g, dtype=torch.float64, requires_grad=True)
    patches = F.unfold(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3).view(2, 3, 9, 7, 8)
    assert torch.allclose(apply_kernels(img, k), (patches * k.unsqueeze(1)).sum(2))
    assert torch.autograd.gradcheck(apply_kernels, (img, k))


def test_compiled_and_shifted_view_blur_agree():
    """float32, the training dtype: same values and gradients from both implementations."""
    from bench.render import cpu_ext

    if cpu_ext.load() is None:
        pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")
    g = torch.Generator().manual_seed(5)
    img = torch.rand(2, 3, 12, 17, generator=g)
    k = full_kernel(torch.randn(2, K * K, 12, 17, generator=g))
    w = torch.randn(2, 3, 12, 17, generator=g)
    results = []
    for compiled in (False, True):
        cpu_ext.use_compiled(compiled)
        try:
            x, kk = img.clone().requires_grad_(), k.clone().requires_grad_()
            out = apply_kernels(x, kk)
            (out * w).sum().backward()
            results.append((out.detach(), x.grad, kk.grad))
        finally:
            cpu_ext.use_compiled(None)
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_borders_replicate_instead_of_darkening():
    img = torch.full((1, 3, 10, 10), 0.7)
    out = apply_kernels(img, full_kernel(torch.randn(1, K * K, 10, 10)))
    assert torch.allclose(out, img, atol=1e-6)


def test_blur_formation_mixes_by_mask():
    g = torch.Generator().manual_seed(2)
    sharp = torch.rand(1, 3, 12, 12, generator=g)
    k = full_kernel(torch.randn(1, K * K, 12, 12, generator=g))
    blurred = apply_kernels(sharp, k)
    mask = torch.rand(1, 1, 12, 12, generator=g)
    assert torch.allclose(blur_formation(sharp, k, torch.zeros_like(mask)), sharp)
    assert torch.allclose(blur_formation(sharp, k, torch.ones_like(mask)), blurred)
    assert torch.allclose(blur_formation(sharp, k, mask), mask * blurred + (1 - mask) * sharp)


def bpnet_inputs(B=2, H=14, W=18, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.tensor([0, 3])[:B], torch.rand(B, 3, H, W, generator=g), 1 + torch.rand(B, 1, H, W, generator=g),
            (torch.rand(B, 1, H, W, generator=g) > 0.5).float())


@pytest.mark.parametrize("kernel_type", ["full", "defocus", "motion"])
@pytest.mark.parametrize("shortcut", [True, False])
def test_bpnet_shapes_normalisation_and_init(kernel_type, shortcut):
    torch.manual_seed(0)
    net = BPNet(num_frames=5, kernel_size=K, kernel_type=kernel_type, shortcut=shortcut)
    assert net.kernel_head.in_channels == 64 + (5 if shortcut else 0)
    kernels, mask = net(*bpnet_inputs())
    assert kernels.shape == (2, K * K, 14, 18) and mask.shape == (2, 1, 14, 18)
    assert (kernels >= 0).all() and torch.allclose(kernels.sum(1), torch.ones(2, 14, 18), atol=1e-5)
    assert ((mask > 0) & (mask < 1)).all()
    # A small mask at the start; full kernels near a delta (documented initialisation; the
    # parametric families' mid-range start is tested in test_method_kernels.py).
    if kernel_type == "full":
        assert 0.85 < kernels[:, centre_index(K)].mean() < 0.95
    assert 0.05 < mask.mean() < 0.15


@pytest.mark.parametrize("kernel_type", ["full", "defocus", "motion"])
def test_every_bpnet_parameter_gets_a_gradient_and_inputs_are_detached(kernel_type):
    torch.manual_seed(0)
    net = BPNet(num_frames=5, kernel_size=5, kernel_type=kernel_type)
    idx, rgb, depth, dmask = bpnet_inputs()
    rgb.requires_grad_()
    kernels, mask = net(idx, rgb, depth, dmask)
    sharp = torch.rand(2, 3, 14, 18)
    loss = (blur_formation(sharp, kernels, mask) - torch.rand(2, 3, 14, 18)).abs().mean()
    loss.backward()
    for name, p in net.named_parameters():
        if name == "embedding.weight":
            used = p.grad[[0, 3]]
            assert used.abs().sum() > 0 and p.grad[[1, 2, 4]].abs().sum() == 0
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert any(n.startswith("scene_cnn.") for n, _ in net.named_parameters())
    assert rgb.grad is None


def _conv_reference(net, frame_index, rgb, depth, dyn_mask):
    """BP-Net as a plain stack of its Conv2d modules on NCHW maps (the matmul form's reference)."""
    from bench.method.bpnet import normalise_depth

    B, _, H, W = rgb.shape
    raw = torch.cat([rgb, normalise_depth(depth), dyn_mask], dim=1).detach()
    pe = positional_encoding(H, W, net.pe_channels).expand(B, -1, -1, -1)
    emb = net.embedding(frame_index.long())[:, :, None, None].expand(-1, -1, H, W)
    feat = net.trunk(torch.cat([net.scene_cnn(raw), pe, emb], dim=1))
    if net.shortcut:
        feat = torch.cat([feat, raw], dim=1)
    return net._kernels(net.kernel_head(feat)), torch.sigmoid(net.mask_head(feat))


@pytest.mark.parametrize("kernel_type", ["full", "defocus", "motion"])
@pytest.mark.parametrize("shortcut, B", [(True, 1), (True, 2), (False, 2)])
def test_bpnet_matmul_form_equals_its_convolutions(kernel_type, shortcut, B):
    torch.manual_seed(1)
    net = BPNet(num_frames=5, kernel_size=K, kernel_type=kernel_type, shortcut=shortcut, cnn_width=8)
    for p in net.parameters():  # away from the near-delta initialisation
        p.data.add_(0.1 * torch.randn_like(p))
    inputs = bpnet_inputs(B=B)
    got, want = net(*inputs), _conv_reference(net, *inputs)
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    grads = []
    for out in (got, want):
        net.zero_grad()
        (out[0] * torch.linspace(0, 1, out[0].numel()).reshape(out[0].shape)).sum().backward(retain_graph=True)
        out[1].sum().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-5, rtol=1e-3), n


def test_bpnet_cnn_width_narrows_only_the_scene_cnn():
    net = BPNet(num_frames=2, kernel_size=3, cnn_width=8)
    assert net.scene_cnn[0].out_channels == 8 and net.scene_cnn[-1].out_channels == 32
    kernels, mask = net(*bpnet_inputs(B=1))
    assert kernels.shape == (1, 9, 14, 18) and mask.shape == (1, 1, 14, 18)


def test_bpnet_uses_the_frame_embedding():
    torch.manual_seed(0)
    net = BPNet(num_frames=4, kernel_size=3)
    _, rgb, depth, dmask = bpnet_inputs(B=1)
    k0, _ = net(torch.tensor([0]), rgb, depth, dmask)
    k1, _ = net(torch.tensor([1]), rgb, depth, dmask)
    assert not torch.allclose(k0, k1)


def test_positional_encoding_channels():
    pe = positional_encoding(5, 7, 16)
    assert pe.shape == (16, 5, 7)
    assert torch.allclose(pe[:4].pow(2) + pe[4:8].pow(2), torch.ones(4, 5, 7), atol=1e-6)  # sin² + cos² (x)
    assert torch.allclose(pe[:8, 0], pe[:8, 4])  # x features do not change with y


def test_blur_aware_sparsity_hand_made_case():
    k = torch.zeros(1, 9, 2, 2)
    k[:, 4] = 0.5
    k[:, 0] = 0.5
    k.requires_grad_()
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2).requires_grad_()
    loss = blur_aware_sparsity(k, mask)
    # mask 1 -> target sigmoid(0) = 0.5 = centre (no loss); mask 0 -> sigmoid(5) - 0.5
    expected = 0.5 * (torch.sigmoid(torch.tensor(5.0)) - 0.5)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert mask.grad is None  # stop-gradient on the mask
    assert k.grad[:, 4].abs().sum() > 0 and k.grad[:, 0].abs().sum() == 0
    assert torch.allclose(mask_sparsity(mask), torch.tensor(0.5))


def test_ssim_matches_skimage_gaussian_and_losses():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1, 3, 32, 40, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    ref = structural_similarity(a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy(), channel_axis=2,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert abs(ssim(a, b).item() - ref) < 1e-4
    assert abs(ssim(a[0].permute(1, 2, 0), b[0].permute(1, 2, 0)).item() - ref) < 1e-4  # (H,W,C) input
    assert torch.allclose(ssim(a, a), torch.tensor(1.0))
    assert reconstruction_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    expected = 0.8 * l1(a, b) + 0.2 * (1 - ssim(a, b))
    assert torch.allclose(reconstruction_loss(a, b), expected)
    a.requires_grad_()
    reconstruction_loss(a, b).backward()
    assert a.grad.abs().sum() > 0


def test_trimmed_l1_drops_largest_residuals():
    pred = torch.arange(100.0)
    assert trimmed_l1(pred, torch.zeros(100)).item() == pytest.approx(48.5)  # 0..97 kept
    valid = pred < 10
    assert trimmed_l1(pred, torch.zeros(100), valid=valid, trim=0.0).item() == pytest.approx(4.5)
    assert trimmed_l1(pred, torch.zeros(100), valid=torch.zeros(100, dtype=torch.bool)).item() == 0.0


def test_low_frequency_loss_ignores_fine_detail():
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2
    sharp = checker.float().expand(1, 3, 16, 16)
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert low_frequency_loss(sharp, flat, factor=4).item() == pytest.approx(0.0, abs=1e-7)
    assert low_frequency_loss(sharp, flat + 0.1, factor=4).item() == pytest.approx(0.1, abs=1e-6)


def test_disparity_and_depth_loss():
    depth = torch.tensor([0.0, 2.0, 4.0])
    assert torch.allclose(disparity(depth), torch.tensor([0.0, 0.5, 0.25]))
    # the pixel with invalid target depth is ignored
    assert depth_loss(torch.tensor([9.0, 2.0, 2.0]), depth, trim=0.0).item() == pytest.approx(0.125)


def test_compiled_ssim_matches_torch_and_its_gradients():
    """ssim_cpu.cpp against the grouped-convolution formulation (float64): value and gradients for
    both images; gradcheck of the hand-written backward."""
    from bench.method import losses
    from bench.render import cpu_ext

    if cpu_ext.load() is None:
        pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 3, 20, 27, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    results = []
    for compiled in (False, True):
        cpu_ext.use_compiled(compiled)
        try:
            x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
            value = ssim(x, y)
            value.backward()
            results.append((value.detach(), x.grad, y.grad))
        finally:
            cpu_ext.use_compiled(None)
    for ref, got in zip(*results):
        assert torch.allclose(ref, got, rtol=1e-10, atol=1e-12)
    taps = losses._gaussian_1d(a.device, a.dtype)
    x, y = a[:1, :1, :14, :15].clone().requires_grad_(), b[:1, :1, :14, :15].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: losses._SSIMCompiled.apply(p, q, taps, cpu_ext.load()), (x, y))


def test_bpnet_float32_gradients_match_float64():
    """BP-Net's float32 training path (NCHW convolutions, compiled head activations) against the
    same network in float64: every parameter's gradient to float32 rounding. Guards the layout:
    on torch 2.14.1 a conv -> ReLU -> InstanceNorm -> conv chain in channels_last gave a first-layer
    weight gradient about 100% off (issue 22), so BP-Net stays NCHW."""
    torch.manual_seed(0)
    net = BPNet(4, kernel_size=5, kernel_type="full", cnn_width=8)
    g = torch.Generator().manual_seed(1)
    rgb, depth, dyn = (torch.rand(1, c, 24, 32, generator=g) for c in (3, 1, 1))
    frame = torch.tensor([2])
    weights = torch.randn(1, 25, 24, 32, generator=g)
    grads = {}
    for dtype in (torch.float64, torch.float32):
        model = BPNet(4, kernel_size=5, kernel_type="full", cnn_width=8).to(dtype)
        model.load_state_dict(net.state_dict())
        kernels, mask = model(frame, rgb.to(dtype), depth.to(dtype), dyn.to(dtype))
        ((kernels * weights.to(dtype)).sum() + mask.square().sum()).backward()
        grads[dtype] = {n: p.grad.double() for n, p in model.named_parameters() if p.grad is not None}
    assert net.scene_cnn[0].weight.is_contiguous()  # NCHW (contiguous), not channels_last
    for name, ref in grads[torch.float64].items():
        err = (grads[torch.float32][name] - ref).abs().max().item()
        assert err <= 1e-4 * ref.abs().max().item() + 1e-7, name


@pytest.mark.parametrize("columns", [9216, 37, 5])
def test_compiled_head_activations_match_torch_on_every_instruction_set(columns):
    """BP-Net's kernel softmax and mask sigmoid (method_vec.h) against torch.softmax/sigmoid:
    values and logit gradients on each instruction set this CPU runs, with column counts that
    leave a partial vector (37, 5) for the padded tail."""
    from bench.method.bpnet import full_heads
    from bench.render import cpu_ext

    if cpu_ext.load() is None:
        pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")
    g = torch.Generator().manual_seed(columns)
    logits = 3 * torch.randn(82, columns, generator=g)
    g_k, g_m = torch.randn(81, columns, generator=g), torch.randn(1, columns, generator=g)

    def run():
        x = logits.clone().requires_grad_()
        k, m = full_heads(x)
        ((k * g_k).sum() + (m * g_m).sum()).backward()
        return k.detach(), m.detach(), x.grad

    cpu_ext.use_compiled(False)
    try:
        ref = run()
    finally:
        cpu_ext.use_compiled(None)
    for isa in cpu_ext.isas():
        cpu_ext.use_isa(isa)
        try:
            got = run()
        finally:
            cpu_ext.use_isa("auto")
        for a, b in zip(ref, got):
            assert (a - b).abs().max().item() < 2e-6, isa
