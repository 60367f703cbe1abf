"""BP-Net: per-pixel blur kernels and a blur-intensity mask from a sharp render (docs/method.md §3).

Inputs per view: a learned per-training-frame camera embedding (32-d, broadcast over pixels), a
16-channel sinusoidal 2D positional encoding and scene features from a small CNN over the
*detached* [rendered RGB, per-image min-max normalised depth, dynamic mask]. A bias-free 1x1
trunk mixes them; the shortcut concatenates the raw 5-channel input before the heads.

Differences from upstream [ours]: the scene-feature CNN is a registered submodule, so it is
trained and saved with the rest (upstream never optimises it). The heads start near a delta
kernel with a small mask (see ``_init_heads``) so that the first steps after BP-Net is switched on
do not disturb a sharp render that already fits the frames. The parametric heads start in the
middle of their size range (see ``_init_heads``) and bound their
outputs smoothly, radius = (K-1)/2 * sigmoid(x) and length = (K-1) * sigmoid(x), instead of a
clamped softplus: a clamp has zero gradient past the bound, so pixels that overshoot it once
would stay stuck at the largest kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from bench.method.kernels import centre_index, defocus_kernel, full_kernel, motion_kernel

KERNEL_TYPES = ("full", "defocus", "motion")


def positional_encoding(height: int, width: int, channels: int = 16, device=None) -> torch.Tensor:
    """(channels,H,W) sinusoidal encoding of normalised pixel coordinates in [-1, 1].

    channels/4 octave frequencies (pi * 2^i) per axis, sin and cos each: x first, then y.
    """
    if channels % 4:
        raise ValueError(f"positional encoding channels must be a multiple of 4, got {channels}")
    ys = torch.linspace(-1, 1, height, device=device)
    xs = torch.linspace(-1, 1, width, device=device)
    freqs = math.pi * 2.0 ** torch.arange(channels // 4, device=device, dtype=torch.float32)
    fx = xs[None, :] * freqs[:, None]  # (F,W)
    fy = ys[None, :] * freqs[:, None]  # (F,H)
    ex = torch.cat([fx.sin(), fx.cos()])[:, None, :].expand(-1, height, -1)
    ey = torch.cat([fy.sin(), fy.cos()])[:, :, None].expand(-1, -1, width)
    return torch.cat([ex, ey])


def normalise_depth(depth: torch.Tensor) -> torch.Tensor:
    """Per-image min-max normalisation of (B,1,H,W) depth to [0,1]."""
    flat = depth.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return (depth - lo) / (hi - lo).clamp_min(1e-8)


def _linear_weight(conv: nn.Conv2d) -> torch.Tensor:
    """(out,in) matrix of a 1x1 convolution."""
    return conv.weight.reshape(conv.weight.shape[0], conv.weight.shape[1])


def _columns(x: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W) -> (C,B*H*W); a view without copying when B == 1."""
    B, C, H, W = x.shape
    return x.transpose(0, 1).reshape(C, B * H * W)


def _uncolumns(x: torch.Tensor, B: int, H: int, W: int) -> torch.Tensor:
    """(C,B*H*W) -> (B,C,H,W); a view without copying when B == 1."""
    return x.reshape(x.shape[0], B, H, W).transpose(0, 1)


class _FullHeadsCompiled(torch.autograd.Function):
    """full_heads by the compiled CPU loops (bench/render/cpu_ext, float32): one pass per row
    over column vectors, and one gradient buffer for both heads (slices of the logits would
    each allocate and add a zero-filled gradient the size of all of them)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, module):
        kernels, mask = module.heads_forward(logits.contiguous())
        ctx.save_for_backward(kernels, mask)
        ctx.module = module
        return kernels, mask

    @staticmethod
    def backward(ctx, g_kernels: torch.Tensor, g_mask: torch.Tensor):
        kernels, mask = ctx.saved_tensors
        return ctx.module.heads_backward(kernels, mask, g_kernels.contiguous(), g_mask.contiguous()), None


def full_heads(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Head logits (K*K+1, M) -> kernels (K*K, M), a softmax over the taps of each pixel column,
    and mask (1, M) = sigmoid(last row)."""
    if logits.device.type == "cpu" and logits.dtype == torch.float32:
        from bench.render import cpu_ext

        module = cpu_ext.load() if cpu_ext.enabled() else None
        if module is not None:
            return _FullHeadsCompiled.apply(logits, module)
    return torch.softmax(logits[:-1], dim=0), torch.sigmoid(logits[-1:])


class BPNet(nn.Module):
    """Blur prediction network.

    forward(frame_index (B,) long, rgb (B,3,H,W), depth (B,1,H,W), dyn_mask (B,1,H,W))
    -> kernels (B,K*K,H,W) summing to 1, mask (B,1,H,W) in (0,1).
    For virtual (unseen) views pass the source frame's index. ``cnn_width`` is the hidden width
    of the scene-feature CNN (64 upstream; smaller only to save CPU time in small profiles).
    """

    def __init__(self, num_frames: int, kernel_size: int = 9, kernel_type: str = "full", shortcut: bool = True,
                 embed_dim: int = 32, pe_channels: int = 16, init_centre: float = 0.9, init_mask: float = 0.1,
                 cnn_width: int = 64):
        super().__init__()
        if kernel_type not in KERNEL_TYPES:
            raise ValueError(f"kernel_type must be one of {KERNEL_TYPES}, got {kernel_type!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.kernel_size, self.kernel_type, self.shortcut = kernel_size, kernel_type, shortcut
        self.pe_channels = pe_channels
        self.embedding = nn.Embedding(num_frames, embed_dim)
        self.scene_cnn = nn.Sequential(
            nn.Conv2d(5, cnn_width, 5, padding=2), nn.ReLU(), nn.InstanceNorm2d(cnn_width),
            nn.Conv2d(cnn_width, cnn_width, 5, padding=2), nn.ReLU(), nn.InstanceNorm2d(cnn_width),
            nn.Conv2d(cnn_width, 32, 3, padding=1),
        )
        self.trunk = nn.Sequential(
            nn.Conv2d(32 + pe_channels + embed_dim, 64, 1, bias=False), nn.ReLU(),
            nn.Conv2d(64, 64, 1, bias=False), nn.ReLU(),
        )
        head_in = 64 + (5 if shortcut else 0)
        kk = kernel_size * kernel_size
        out = {"full": kk, "defocus": 1, "motion": 3}[kernel_type]
        self.kernel_head = nn.Conv2d(head_in, out, 1)
        self.mask_head = nn.Conv2d(head_in, 1, 1)
        self._init_heads(init_centre, init_mask)

    @property
    def max_radius(self) -> float:
        """Largest defocus radius: the disc's full-weight part just fits the K x K support."""
        return (self.kernel_size - 1) / 2

    @property
    def max_length(self) -> float:
        """Largest motion length: the segment just fits the K x K support."""
        return float(self.kernel_size - 1)

    def _init_heads(self, centre: float, mask: float) -> None:
        """Small kernels (full) or mid-range sizes (parametric) and a small mask at the start.

        Small weights keep the outputs nearly uniform over the image while still passing
        gradients to the trunk and the scene CNN. Biases: full -> centre logit so the softmax puts
        ``centre`` on the centre tap; defocus and motion -> pre-activation 0, i.e. radius
        ``max_radius / 2`` and length ``max_length / 2`` (direction (1, 0)), where the bounding
        sigmoid's slope is largest and no size is favoured. ``centre`` applies to ``full`` only: a
        parametric kernel with that centre weight is a fixed sub-pixel size (radius 0.25 px for
        centre 0.5), in the sigmoid's flat tail, far below the blur to be learnt; the mask sets
        how strongly the initial kernel blurs. mask -> sigmoid^-1(mask).
        """
        kk = self.kernel_size * self.kernel_size
        for head in (self.kernel_head, self.mask_head):
            nn.init.normal_(head.weight, std=1e-2)
            nn.init.zeros_(head.bias)
        with torch.no_grad():
            if self.kernel_type == "full" and kk > 1:
                self.kernel_head.bias[centre_index(self.kernel_size)] = math.log(centre * (kk - 1) / (1 - centre))
            elif self.kernel_type == "motion":
                self.kernel_head.bias[0] = 1.0
            self.mask_head.bias.fill_(math.log(mask / (1 - mask)))

    def forward(self, frame_index: torch.Tensor, rgb: torch.Tensor, depth: torch.Tensor,
                dyn_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, _, H, W = rgb.shape
        raw = torch.cat([rgb, normalise_depth(depth), dyn_mask], dim=1).detach()
        scene = self.scene_cnn(raw)
        # The 1x1 trunk and heads run as 2D matmuls W @ X on (C, B*H*W) column matrices (free
        # views of the NCHW maps for one image): the same maps as the Conv2d modules, whose
        # weights they use, without the im2col convolution path. The embedding is constant over
        # a view's pixels, so its share of the first layer is a per-view bias; the two heads are
        # one matmul.
        w1 = _linear_weight(self.trunk[0])
        n_scene = scene.shape[1]
        w_scene, w_pe, w_emb = w1.split([n_scene, self.pe_channels, w1.shape[1] - n_scene - self.pe_channels], 1)
        emb = self.embedding(frame_index.to(rgb.device).long())  # (B,E)
        per_view = (w_emb @ emb.t()).repeat_interleave(H * W, dim=1) if B > 1 else w_emb @ emb.t()
        x = w_scene @ _columns(scene) + (w_pe @ self._pixel_encoding(H, W, rgb)).repeat(1, B) + per_view
        x = torch.relu(x)
        x = torch.relu(_linear_weight(self.trunk[2]) @ x)
        if self.shortcut:
            x = torch.cat([x, _columns(raw)])
        w_heads = torch.cat([_linear_weight(self.kernel_head), _linear_weight(self.mask_head)])
        b_heads = torch.cat([self.kernel_head.bias, self.mask_head.bias])
        out = torch.addmm(b_heads[:, None], w_heads, x)  # (c+1, B*H*W)
        if self.kernel_type == "full":
            kernels, mask = full_heads(out)
            return _uncolumns(kernels, B, H, W), _uncolumns(mask, B, H, W)
        kernels = self._kernels(_uncolumns(out[:-1], B, H, W))
        return kernels, _uncolumns(torch.sigmoid(out[-1:]), B, H, W)

    def _pixel_encoding(self, H: int, W: int, like: torch.Tensor) -> torch.Tensor:
        """(pe,H*W) positional encoding, cached per size, device and dtype (it is a constant)."""
        key = (H, W, like.device, like.dtype)
        cache = self.__dict__.setdefault("_pe_cache", {})
        if key not in cache:
            pe = positional_encoding(H, W, self.pe_channels, like.device).to(like.dtype)
            cache.clear()
            cache[key] = pe.reshape(self.pe_channels, H * W).contiguous()
        return cache[key]

    def _kernels(self, out: torch.Tensor) -> torch.Tensor:
        """Head output -> (B,K*K,H,W) kernels of the configured family."""
        K = self.kernel_size
        if self.kernel_type == "full":
            return full_kernel(out)
        if self.kernel_type == "defocus":
            radius = self.max_radius * torch.sigmoid(out)
            return defocus_kernel(radius, K)
        length = self.max_length * torch.sigmoid(out[:, 2:3])
        return motion_kernel(out[:, :2], length, K)
