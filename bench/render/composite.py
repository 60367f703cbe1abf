"""Tile-binned front-to-back alpha compositing in pure PyTorch, with a hand-written backward.

Semantics are gsplat 1.5.3's rasteriser: pixel centres at (j+0.5, i+0.5), Gaussians in depth order,
alpha = min(0.999, o exp(-sigma)), contributions with alpha < 1/255 skipped, and a pixel stops
before the Gaussian that would bring its transmittance to 1e-4 or below. A Gaussian only needs
evaluating at pixels of its box (mean +- radius): outside it alpha is below 1/255 by construction of
the opacity-aware radius, so the tiling does not change the image. Tiles where no pixel centre
reaches alpha >= 1/255 (exact ellipse-rectangle test) are dropped from a Gaussian's list as well.

Layout: (tile, Gaussian) pairs sorted by tile then depth. Tiles of TILE x TILE pixels are processed
in chunks of similar Gaussian counts, padded to dense (tiles, pixels, Gaussians) blocks. Per block,
the exponent ln(o) - sigma is one matmul of pixel monomials (1, u, v, u^2, uv, v^2) (relative to
the tile centre) against per-pair coefficients; transmittance is a cumprod along the Gaussian axis;
colours, depth, features and alpha (a channel of ones) are one bmm. The backward recomputes each
block rather than storing it and reduces pixel gradients to pair coefficients with matmuls; autograd
carries them from pair coefficients to Gaussians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.render.projection import ALPHA_THRESHOLD

TILE = 8  # pixels per tile side; any size gives the same image (see module docstring)
MAX_ALPHA = 0.999
T_EPS = 1e-4  # a pixel is done before the Gaussian that brings T to T_EPS or below
CHUNK_ELEMENTS = 1 << 18  # target size of one (tiles, pixels, Gaussians) block
CHUNK_LOAD_RATIO = 0.6  # tiles in one chunk carry at least this fraction of its largest count
# Exponent of padding slots: exp() of it is far below the 1/255 threshold.
_PAD_EXPONENT = -30.0
# Exponents below ln(1/255) are clamped here before exp(), whose underflow path is slow on CPU.
_EXPONENT_FLOOR = -6.0
# F.threshold keeps x > t; the largest double below 1/255 keeps alpha >= 1/255
_BELOW_THRESHOLD = math.nextafter(ALPHA_THRESHOLD, 0.0)


@dataclass
class TilePlan:
    """Depth-sorted (tile, Gaussian) pairs for C cameras.

    pair_ids (P,) int64 flat (camera*N + gaussian) ids, grouped by tile, depth-sorted in a tile;
    pair_tiles (P,) their tile; offsets (T,) and counts (T,) index pairs per tile,
    T = C * tiles_y * tiles_x; tile_x, tile_y (T,) tile column and row; chunks: list of
    (tile indices (t,) int64, padded Gaussian count); tiles_x, tiles_y, num_cameras sizes.
    """

    pair_ids: Tensor
    pair_tiles: Tensor
    offsets: Tensor
    counts: Tensor
    tile_x: Tensor
    tile_y: Tensor
    chunks: list[tuple[Tensor, int]]
    tiles_x: int
    tiles_y: int
    num_cameras: int

    def evaluations(self) -> int:
        """Gaussian-pixel evaluations the padded blocks perform (forward pass)."""
        return sum(int(t.numel()) * g * TILE * TILE for t, g in self.chunks)


@torch.no_grad()
def plan_tiles(
    means2d: Tensor, conics: Tensor, opacities: Tensor, radii: Tensor, depths: Tensor,
    width: int, height: int,
) -> TilePlan:
    """Bin visible Gaussians to tiles, depth-sorted, and group tiles into chunks.

    means2d (C,N,2), conics (C,N,3), opacities (C,N), radii (C,N,2) int (0 = culled), depths (C,N).
    A Gaussian goes to the tiles its box covers, minus those where no pixel centre can reach
    alpha >= 1/255. Ties in depth keep Gaussian order, and depths order as gsplat's radix sort of
    float bits does (negatives after positives).
    """
    C, N = depths.shape
    tiles_x, tiles_y = math.ceil(width / TILE), math.ceil(height / TILE)
    device = means2d.device
    flat_r = radii.reshape(-1, 2)
    vis = torch.nonzero((flat_r > 0).all(-1)).squeeze(-1)
    vis = vis[_depth_order(depths.reshape(-1)[vis])]

    # per visible Gaussian, in float64: mean, conic, ln(255 o) and box
    m = means2d.reshape(-1, 2)[vis].double()
    r = flat_r[vis].double()
    gauss = torch.cat([m, conics.reshape(-1, 3)[vis].double(),
                       torch.log(opacities.reshape(-1)[vis].double() / ALPHA_THRESHOLD)[:, None]], 1)
    # tiles holding the pixels whose centre j + 0.5 lies in the closed box [m - r, m + r]
    lo = torch.ceil(m - r - 0.5).clamp(min=0)
    hi = torch.minimum(torch.floor(m + r - 0.5), m.new_tensor([width - 1, height - 1]))
    t0 = torch.floor(lo / TILE)
    n_xy = torch.where(hi >= lo, torch.floor(hi / TILE) - t0 + 1, 0.0)
    n_per = (n_xy[:, 0] * n_xy[:, 1]).long()

    rep = torch.repeat_interleave(torch.arange(len(vis), device=device), n_per)
    k = (torch.arange(len(rep), device=device) - (torch.cumsum(n_per, 0) - n_per)[rep]).double()
    nx = n_xy[rep, 0]
    ky = torch.floor(k / nx)
    tx = t0[rep, 0] + (k - ky * nx)
    ty = t0[rep, 1] + ky
    keep = _reaches_tile(gauss[rep], tx, ty, width, height)
    cam = (vis // N).double()[rep]
    key = ((cam * tiles_y + ty) * tiles_x + tx)[keep].long()
    key_sorted, perm = torch.sort(key, stable=True)

    n_tiles = C * tiles_y * tiles_x
    counts = torch.bincount(key_sorted, minlength=n_tiles)
    tile_local = torch.arange(n_tiles, device=device) % (tiles_x * tiles_y)
    return TilePlan(
        pair_ids=vis[rep[keep][perm]],
        pair_tiles=key_sorted,
        offsets=torch.cumsum(counts, 0) - counts,
        counts=counts,
        tile_x=tile_local % tiles_x,
        tile_y=tile_local // tiles_x,
        chunks=_chunk_tiles(counts),
        tiles_x=tiles_x,
        tiles_y=tiles_y,
        num_cameras=C,
    )


def _depth_order(d: Tensor) -> Tensor:
    """Stable order of gsplat's radix sort on float bits: ascending positives, then negatives by
    ascending magnitude (only reachable with near < 0)."""
    if not bool((d < 0).any()):
        return torch.argsort(d, stable=True)
    order = torch.argsort(d.abs(), stable=True)
    return order[torch.argsort((d[order] < 0).to(torch.int8), stable=True)]


def _reaches_tile(gauss: Tensor, tx: Tensor, ty: Tensor, width: int, height: int) -> Tensor:
    """Whether some pixel centre of tile (tx, ty) may get alpha >= 1/255 from the Gaussian (P,) bool.

    gauss (P,6) float64 rows (mean x, mean y, conic a, b, c, ln(255 o)). The minimum of the convex
    sigma over the tile's pixel-centre rectangle is 0 when the mean is inside, else on one of the
    four edges (a clamped 1D minimum each). A margin keeps float32 rounding in the renderer from
    ever making a dropped pair contribute.
    """
    mx, my, a, b, c, reach = gauss.unbind(-1)
    dx_lo = tx * TILE + 0.5 - mx
    dx_hi = torch.clamp((tx + 1) * TILE, max=width) - 0.5 - mx
    dy_lo = ty * TILE + 0.5 - my
    dy_hi = torch.clamp((ty + 1) * TILE, max=height) - 0.5 - my
    best = None
    for fx in (dx_lo, dx_hi):
        fy = torch.minimum(torch.maximum(-b * fx / c, dy_lo), dy_hi)
        val = 0.5 * (a * fx * fx + c * fy * fy) + b * fx * fy
        best = val if best is None else torch.minimum(best, val)
    for fy in (dy_lo, dy_hi):
        fx = torch.minimum(torch.maximum(-b * fy / a, dx_lo), dx_hi)
        best = torch.minimum(best, 0.5 * (a * fx * fx + c * fy * fy) + b * fx * fy)
    inside = (dx_lo <= 0) & (dx_hi >= 0) & (dy_lo <= 0) & (dy_hi >= 0)
    return inside | (best <= reach + 1e-3 * (1.0 + reach.abs()))


def _chunk_tiles(counts: Tensor) -> list[tuple[Tensor, int]]:
    """Group non-empty tiles, heaviest first, into chunks of similar load and bounded size."""
    sorted_counts, tiles = torch.sort(counts, descending=True)
    values = sorted_counts.tolist()
    chunks = []
    i = 0
    pixels = TILE * TILE
    while i < len(values) and values[i] > 0:
        gmax = values[i]
        j = i + 1
        while (
            j < len(values)
            and values[j] > 0
            and values[j] >= CHUNK_LOAD_RATIO * gmax
            and (j - i + 1) * gmax * pixels <= CHUNK_ELEMENTS
        ):
            j += 1
        chunks.append((tiles[i:j], gmax))
        i = j
    return chunks


def _pixel_monomials(dtype: torch.dtype, device: torch.device) -> Tensor:
    """(TILE*TILE, 6) monomials (1, u, v, u^2, uv, v^2) of pixel centres relative to the tile centre."""
    c = torch.arange(TILE, dtype=dtype, device=device) + 0.5 - TILE / 2
    v, u = torch.meshgrid(c, c, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    return torch.stack([torch.ones_like(u), u, v, u * u, u * v, v * v], dim=-1)


def pair_coefficients(means2d: Tensor, conics: Tensor, opacities: Tensor, plan: TilePlan) -> Tensor:
    """(P,6) per-pair coefficients q with ln(o) - sigma = q . (1, u, v, u^2, uv, v^2), where (u, v)
    is the pixel centre minus the pair's tile centre. Inputs (C,N,2), (C,N,3), (C,N); differentiable."""
    ids = plan.pair_ids
    centre_x = (plan.tile_x[plan.pair_tiles] * TILE + TILE / 2).to(means2d.dtype)
    centre_y = (plan.tile_y[plan.pair_tiles] * TILE + TILE / 2).to(means2d.dtype)
    m = means2d.reshape(-1, 2)[ids]
    a, b, c = conics.reshape(-1, 3)[ids].unbind(-1)
    dx, dy = m[:, 0] - centre_x, m[:, 1] - centre_y
    lno = torch.log(opacities.reshape(-1)[ids])
    const = lno - 0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
    return torch.stack([const, a * dx + b * dy, b * dx + c * dy, -0.5 * a, -b, -0.5 * c], dim=-1)


def _gather_block(plan: TilePlan, tiles: Tensor, gmax: int, q: Tensor, f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Padded pair lists of `tiles`: pair index (t,G) (P = padding), coefficients (t,G,6) and
    channels (t,G,ch) from tables q (P+1,6), f (P+1,ch) whose last row is the padding."""
    ar = torch.arange(gmax, device=tiles.device)
    pos = plan.offsets[tiles, None] + ar
    idx = torch.where(ar < plan.counts[tiles, None], pos, len(q) - 1)
    return idx, q[idx], f[idx]


def _alphas(mono: Tensor, q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Recomputable per-block state (t,p,G) from coefficients q (t,G,6): alpha as composited,
    1 - alpha, and T_kept = transmittance after each Gaussian, 0 from the stopping one on."""
    alpha = torch.matmul(mono, q.transpose(1, 2)).clamp_(min=_EXPONENT_FLOOR).exp_()
    alpha = F.threshold(alpha, _BELOW_THRESHOLD, 0.0).clamp_max_(MAX_ALPHA)
    one_minus = 1.0 - alpha
    # T only decreases, so zeroing T <= 1e-4 zeroes exactly the stopping Gaussian and all after it
    t_kept = F.threshold(torch.cumprod(one_minus, dim=-1), T_EPS, 0.0, inplace=True)
    return alpha, one_minus, t_kept


class _Composite(torch.autograd.Function):
    """Pair coefficients q (P,6) and channels f (P,ch) -> tile-layout images (T, TILE*TILE, ch+1)
    holding sum_i w_i f_i and, last, alpha = sum_i w_i, with w_i = alpha_i T_i."""

    @staticmethod
    def forward(ctx, q, f, plan: TilePlan):
        q_pad, f_pad = _padded(q, f)
        mono = _pixel_monomials(q.dtype, q.device)
        out = q.new_zeros(len(plan.counts), f_pad.shape[-1], TILE * TILE)
        for tiles, gmax in plan.chunks:
            _, qb, fb = _gather_block(plan, tiles, gmax, q_pad, f_pad)
            alpha, one_minus, t_kept = _alphas(mono, qb)
            # w_i = alpha_i T_before_i = alpha_i T_after_i / (1 - alpha_i); 0 from the stop on
            w = t_kept.div_(one_minus).mul_(alpha)
            # (t,ch,G) @ (t,G,p): several times faster on CPU than w @ f with this small ch
            out[tiles] = torch.bmm(fb.transpose(1, 2).contiguous(), w.transpose(1, 2))
        ctx.plan = plan
        ctx.save_for_backward(q, f)
        return out.transpose(1, 2)

    @staticmethod
    def backward(ctx, g_out):
        q, f = ctx.saved_tensors
        plan: TilePlan = ctx.plan
        q_pad, f_pad = _padded(q, f)
        mono = _pixel_monomials(q.dtype, q.device)
        g_q = torch.zeros_like(q_pad)
        g_f = torch.zeros_like(f_pad)
        g_out_t = g_out.transpose(1, 2).contiguous()  # (T,ch+1,p)
        for tiles, gmax in plan.chunks:
            idx, qb, fb = _gather_block(plan, tiles, gmax, q_pad, f_pad)
            g_qb, g_fb = _block_backward(mono, qb, fb, g_out_t[tiles])
            g_q[idx] = g_qb  # each real pair appears once; padding rows are dropped below
            g_f[idx] = g_fb
        return g_q[:-1], g_f[:-1, :-1], None


def _padded(q: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
    """Tables with a trailing padding row that never contributes, and a ones channel on f."""
    pad_q = q.new_zeros(1, 6)
    pad_q[0, 0] = _PAD_EXPONENT
    f_pad = torch.cat([f, f.new_ones(len(f), 1)], dim=1)
    return torch.cat([q, pad_q]), torch.cat([f_pad, f_pad.new_zeros(1, f_pad.shape[1])])


def _block_backward(mono: Tensor, q: Tensor, f: Tensor, g_out: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pair gradients of one block: coefficients (t,G,6) and channels (t,G,ch+1).

    q (t,G,6), f (t,G,ch+1), g_out (t,ch+1,p) the upstream gradient of the block's pixels.
    """
    alpha, one_minus, t_kept = _alphas(mono, q)
    t_before = t_kept.div_(one_minus)  # T_i where kept, else 0
    w = alpha * t_before
    g_f = torch.bmm(g_out, w).transpose(1, 2)
    cg = torch.bmm(g_out.transpose(1, 2), f.transpose(1, 2))  # (t,p,G): f_i . dL/dpixel
    # dL/dalpha_i = T_i f_i.g - sum_{j>i} w_j f_j.g / (1 - alpha_i); the ones channel covers
    # alpha = 1 - T_final. Past the stop both terms are exactly 0 (w_j = 0, T_i = 0 there).
    g_alpha = torch.cumsum(w.mul_(cg), dim=-1)
    g_alpha.sub_(g_alpha[..., -1:].clone()).div_(one_minus).addcmul_(t_before, cg)
    # d alpha / d(ln o - sigma) = alpha, but 0 where alpha is clamped at 0.999 (or skipped)
    neg_slope = F.threshold(alpha.neg_(), -MAX_ALPHA, 0.0)
    g_expo = g_alpha.mul_(neg_slope)  # negated dL/d exponent
    g_q = torch.matmul(mono.transpose(0, 1), g_expo).transpose(1, 2).neg()  # (t,G,6)
    return g_q, g_f


def composite(q: Tensor, f: Tensor, plan: TilePlan, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Composite C images from pair coefficients q (P,6) and pair channels f (P,ch).

    Returns fg (C,H,W,ch) = sum_i w_i f_i (no background) and alpha (C,H,W,1) = sum_i w_i.
    """
    out = _untile(_Composite.apply(q, f, plan), plan, width, height)
    return out[..., :-1], out[..., -1:]


def _untile(x: Tensor, plan: TilePlan, width: int, height: int) -> Tensor:
    """(C*ty*tx, TILE*TILE, ch) tile layout -> (C,H,W,ch) image."""
    ch = x.shape[-1]
    x = x.reshape(plan.num_cameras, plan.tiles_y, plan.tiles_x, TILE, TILE, ch)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(
        plan.num_cameras, plan.tiles_y * TILE, plan.tiles_x * TILE, ch
    )
    return x[:, :height, :width]
