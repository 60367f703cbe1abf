"""Tile-binned front-to-back alpha compositing in pure PyTorch, with a hand-written backward.

Semantics are gsplat 1.5.3's rasteriser: pixel centres at (j+0.5, i+0.5), Gaussians in depth order,
alpha = min(0.999, o exp(-sigma)), contributions with alpha < 1/255 skipped, and a pixel stops
before the Gaussian that would bring its transmittance to 1e-4 or below. A Gaussian is evaluated
at every pixel of its box (mean +- radius); outside the box its alpha is below 1/255 by
construction of the opacity-aware radius, so the tiling does not change the image.

Layout: image tiles of TILE x TILE pixels are processed in chunks of tiles with similar Gaussian
counts, padded to a dense (tiles, pixels, Gaussians) block. Per block, the exponent ln(o) - sigma
is one small matmul of pixel monomials (1, u, v, u^2, uv, v^2) against per-(tile, Gaussian)
coefficients, the transmittance is a cumprod along the Gaussian axis, and colours are one bmm.
The backward recomputes each block instead of storing it, and reduces the per-pixel gradient back
to Gaussians with matmuls against the same monomials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.render.projection import ALPHA_THRESHOLD

TILE = 8  # pixels per tile side; any size gives the same image (see module docstring)
MAX_ALPHA = 0.999
T_EPS = 1e-4  # a pixel is done before the Gaussian that brings T to T_EPS or below
CHUNK_ELEMENTS = 1 << 19  # target size of one (tiles, pixels, Gaussians) block
CHUNK_LOAD_RATIO = 0.6  # tiles in one chunk carry at least this fraction of its largest count
# ln(opacity) of padding slots: exp() of it is far below the 1/255 threshold.
_PAD_LOG_OPACITY = -30.0


@dataclass
class TilePlan:
    """Depth-sorted Gaussian lists per tile for C cameras.

    ids (I,) int64 flat (camera*N + gaussian) ids, grouped by tile and depth-sorted in a tile;
    offsets (T,) and counts (T,) index ids per tile, T = C * tiles_y * tiles_x; tile_x, tile_y (T,)
    tile column and row; chunks: list of (tile indices (t,) int64, padded Gaussian count);
    tiles_x, tiles_y, num_cameras, num_flat (= C*N) sizes.
    """

    ids: Tensor
    offsets: Tensor
    counts: Tensor
    tile_x: Tensor
    tile_y: Tensor
    chunks: list[tuple[Tensor, int]]
    tiles_x: int
    tiles_y: int
    num_cameras: int
    num_flat: int

    def evaluations(self) -> int:
        """Gaussian-pixel evaluations the padded blocks perform (forward pass)."""
        return sum(int(t.numel()) * g * TILE * TILE for t, g in self.chunks)


@torch.no_grad()
def plan_tiles(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int) -> TilePlan:
    """Bin visible Gaussians to tiles, depth-sorted, and group tiles into chunks.

    means2d (C,N,2), radii (C,N,2) int (0 = culled), depths (C,N). Ties in depth keep Gaussian
    order and depths order as gsplat's radix sort of float bits does (negatives after positives).
    """
    C, N = depths.shape
    tiles_x, tiles_y = math.ceil(width / TILE), math.ceil(height / TILE)
    device = means2d.device
    flat_r = radii.reshape(-1, 2)
    vis = torch.nonzero((flat_r > 0).all(-1)).squeeze(-1)
    m = means2d.reshape(-1, 2)[vis].double()
    r = flat_r[vis].double()
    # pixels whose centre j + 0.5 lies in the closed box [m - r, m + r]
    lo_x = torch.ceil(m[:, 0] - r[:, 0] - 0.5).clamp(min=0).long()
    hi_x = torch.floor(m[:, 0] + r[:, 0] - 0.5).clamp(max=width - 1).long()
    lo_y = torch.ceil(m[:, 1] - r[:, 1] - 0.5).clamp(min=0).long()
    hi_y = torch.floor(m[:, 1] + r[:, 1] - 0.5).clamp(max=height - 1).long()
    tx0, ty0 = lo_x // TILE, lo_y // TILE
    nx = torch.where(hi_x >= lo_x, hi_x // TILE - tx0 + 1, 0)
    ny = torch.where(hi_y >= lo_y, hi_y // TILE - ty0 + 1, 0)

    d = depths.reshape(-1)[vis]
    order = torch.argsort(d.abs(), stable=True)
    order = order[torch.argsort((d[order] < 0).to(torch.int8), stable=True)]
    vis, tx0, ty0, nx, ny = vis[order], tx0[order], ty0[order], nx[order], ny[order]

    n_per = nx * ny
    total = int(n_per.sum())
    rep = torch.repeat_interleave(torch.arange(len(vis), device=device), n_per)
    start = torch.cumsum(n_per, 0) - n_per
    k = torch.arange(total, device=device) - start[rep]
    cam = vis[rep] // N
    key = (cam * tiles_y + ty0[rep] + k // nx[rep]) * tiles_x + tx0[rep] + k % nx[rep]
    key_sorted, perm = torch.sort(key, stable=True)
    ids = vis[rep][perm]

    n_tiles = C * tiles_y * tiles_x
    counts = torch.bincount(key_sorted, minlength=n_tiles)
    offsets = torch.cumsum(counts, 0) - counts
    tile_local = torch.arange(n_tiles, device=device) % (tiles_x * tiles_y)
    return TilePlan(
        ids=ids,
        offsets=offsets,
        counts=counts,
        tile_x=tile_local % tiles_x,
        tile_y=tile_local // tiles_x,
        chunks=_chunk_tiles(counts),
        tiles_x=tiles_x,
        tiles_y=tiles_y,
        num_cameras=C,
        num_flat=C * N,
    )


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


@dataclass
class _Block:
    """Per-chunk gathered inputs: ids (t,G) flat ids (num_flat = padding), dx, dy (t,G) mean minus
    tile centre, conic a, b, c (t,G), log opacity (t,G), features (t,G,ch)."""

    ids: Tensor
    dx: Tensor
    dy: Tensor
    a: Tensor
    b: Tensor
    c: Tensor
    lno: Tensor
    feats: Tensor


def _gather_block(plan: TilePlan, tiles: Tensor, gmax: int, tables: tuple[Tensor, ...]) -> _Block:
    """Gather the padded (t, gmax) Gaussian lists of `tiles` from padded per-Gaussian tables."""
    means2d, conics, lno, feats = tables
    ar = torch.arange(gmax, device=tiles.device)
    pos = plan.offsets[tiles, None] + ar
    inside = ar < plan.counts[tiles, None]
    ids = torch.where(inside, plan.ids[pos.clamp(max=max(len(plan.ids) - 1, 0))], plan.num_flat)
    cx = (plan.tile_x[tiles] * TILE + TILE / 2).to(means2d.dtype)[:, None]
    cy = (plan.tile_y[tiles] * TILE + TILE / 2).to(means2d.dtype)[:, None]
    mxy, con = means2d[ids], conics[ids]
    return _Block(
        ids=ids,
        dx=mxy[..., 0] - cx,
        dy=mxy[..., 1] - cy,
        a=con[..., 0],
        b=con[..., 1],
        c=con[..., 2],
        lno=lno[ids],
        feats=feats[ids],
    )


def _coefficients(blk: _Block) -> Tensor:
    """(t,6,G) coefficients so that monomials @ coefficients = ln(o) - sigma per pixel."""
    a, b, c, dx, dy = blk.a, blk.b, blk.c, blk.dx, blk.dy
    const = blk.lno - 0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
    return torch.stack(
        [const, a * dx + b * dy, b * dx + c * dy, -0.5 * a, -b, -0.5 * c], dim=1
    )


def _alphas(mono: Tensor, blk: _Block) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Recomputable per-block state: raw alpha o exp(-sigma), used alpha, 1 - alpha,
    T before each Gaussian padded with the final entry (t,p,G+1), stop mask (t,p,G)."""
    raw = torch.matmul(mono, _coefficients(blk)).exp_()
    alpha = raw.clamp_max(MAX_ALPHA)
    alpha.masked_fill_(raw < ALPHA_THRESHOLD, 0.0)
    one_minus = 1.0 - alpha
    trans = torch.empty(alpha.shape[:-1] + (alpha.shape[-1] + 1,), dtype=alpha.dtype, device=alpha.device)
    trans[..., 0] = 1.0
    torch.cumprod(one_minus, dim=-1, out=trans[..., 1:])
    stopped = trans[..., 1:] <= T_EPS  # a suffix along the Gaussian axis: T only decreases
    return raw, alpha, one_minus, trans, stopped


def _weights(alpha: Tensor, trans: Tensor, stopped: Tensor) -> Tensor:
    """Compositing weights alpha * T (t,p,G), zero from the stopping Gaussian on."""
    return (alpha * trans[..., :-1]).masked_fill_(stopped, 0.0)


def _final_transmittance(trans: Tensor, stopped: Tensor) -> Tensor:
    """T after the last contributing Gaussian (t,p): T before the stopping one, else the last."""
    n_used = stopped.shape[-1] - stopped.sum(-1, keepdim=True)
    return trans.gather(-1, n_used)[..., 0]


class _Composite(torch.autograd.Function):
    """(means2d (M,2), conics (M,3), opacities (M,), feats (M,ch)) -> tile-layout images
    fg (T, TILE*TILE, ch) = sum_i w_i f_i and final transmittance (T, TILE*TILE)."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, feats, plan: TilePlan):
        tables = _padded_tables(means2d, conics, opacities, feats)
        mono = _pixel_monomials(means2d.dtype, means2d.device)
        n_tiles, pixels, ch = len(plan.counts), TILE * TILE, feats.shape[-1]
        fg = torch.zeros(n_tiles, pixels, ch, dtype=feats.dtype, device=feats.device)
        t_final = torch.ones(n_tiles, pixels, dtype=feats.dtype, device=feats.device)
        for tiles, gmax in plan.chunks:
            blk = _gather_block(plan, tiles, gmax, tables)
            _, alpha, _, trans, stopped = _alphas(mono, blk)
            fg[tiles] = torch.bmm(_weights(alpha, trans, stopped), blk.feats)
            t_final[tiles] = _final_transmittance(trans, stopped)
        ctx.plan = plan
        ctx.save_for_backward(means2d, conics, opacities, feats, t_final)
        return fg, t_final

    @staticmethod
    def backward(ctx, g_fg, g_t):
        means2d, conics, opacities, feats, t_final = ctx.saved_tensors
        plan: TilePlan = ctx.plan
        tables = _padded_tables(means2d, conics, opacities, feats)
        mono = _pixel_monomials(means2d.dtype, means2d.device)
        m1 = plan.num_flat + 1
        grads = torch.zeros(m1, 6 + feats.shape[-1], dtype=feats.dtype, device=feats.device)
        g_fg = g_fg.contiguous()
        # dT_final/dalpha_i = -T_final / (1 - alpha_i): the per-pixel part of it
        g_tail = -(t_final * g_t)[..., None]
        for tiles, gmax in plan.chunks:
            blk = _gather_block(plan, tiles, gmax, tables)
            g_pair = _block_backward(mono, blk, g_fg[tiles], g_tail[tiles])
            grads.index_add_(0, blk.ids.reshape(-1), g_pair.reshape(-1, g_pair.shape[-1]))
        grads = grads[:-1]
        g_means2d = grads[:, 0:2]
        g_conics = grads[:, 2:5]
        g_opac = grads[:, 5] / opacities.clamp(min=ALPHA_THRESHOLD)
        g_feats = grads[:, 6:]
        return g_means2d, g_conics, g_opac, g_feats, None


def _padded_tables(means2d, conics, opacities, feats) -> tuple[Tensor, ...]:
    """Per-Gaussian tables with one trailing padding row that never contributes."""
    pad_lno = torch.full((1,), _PAD_LOG_OPACITY, dtype=opacities.dtype, device=opacities.device)
    lno = torch.cat([torch.log(opacities.clamp(min=ALPHA_THRESHOLD)), pad_lno])
    return (
        torch.cat([means2d, means2d.new_zeros(1, 2)]),
        torch.cat([conics, conics.new_zeros(1, 3)]),
        lno,
        torch.cat([feats, feats.new_zeros(1, feats.shape[-1])]),
    )


def _block_backward(mono: Tensor, blk: _Block, g_fg: Tensor, g_tail: Tensor) -> Tensor:
    """Gradients per (tile, Gaussian) pair (t,G,6+ch): means2d x,y, conic a,b,c, ln(o), features.

    g_fg (t,p,ch) upstream gradient of fg, g_tail (t,p,1) = -T_final * dL/dT_final.
    """
    raw, alpha, one_minus, trans, stopped = _alphas(mono, blk)
    w = _weights(alpha, trans, stopped)
    g_feats = torch.bmm(w.transpose(1, 2), g_fg)  # (t,G,ch)
    cg = torch.bmm(g_fg, blk.feats.transpose(1, 2))  # (t,p,G): f_i . dL/dC
    # dL/dalpha_i = T_i f_i.g - (sum_{j>i} w_j f_j.g + T_final dL/dT_final) / (1 - alpha_i)
    after = torch.cumsum(w.mul_(cg), dim=-1)
    after.sub_(after[..., -1:] - g_tail)
    g_alpha = after.div_(one_minus).addcmul_(trans[..., :-1], cg, value=1.0)
    # d alpha / d(ln o - sigma) = alpha where it is neither skipped, clamped, nor past the stop
    g_exp = g_alpha.mul_(alpha).masked_fill_(stopped | (alpha != raw), 0.0)
    g_q = torch.matmul(mono.transpose(0, 1), g_exp)  # (t,6,G)
    return torch.cat([_coefficient_backward(blk, g_q), g_feats], dim=-1)


def _coefficient_backward(blk: _Block, g_q: Tensor) -> Tensor:
    """Chain (t,6,G) coefficient gradients to (t,G,6): mean x,y, conic a,b,c, ln(o)."""
    g0, gu, gv, guu, guv, gvv = g_q.unbind(1)
    a, b, c, dx, dy = blk.a, blk.b, blk.c, blk.dx, blk.dy
    # sum_p e (u - dx) and sum_p e (v - dy), e = dL/d exponent
    su = gu - g0 * dx
    sv = gv - g0 * dy
    g_a = -0.5 * guu + gu * dx - 0.5 * g0 * dx * dx
    g_b = -guv + gu * dy + gv * dx - g0 * dx * dy
    g_c = -0.5 * gvv + gv * dy - 0.5 * g0 * dy * dy
    return torch.stack([a * su + b * sv, b * su + c * sv, g_a, g_b, g_c, g0], dim=-1)


def composite(
    means2d: Tensor, conics: Tensor, opacities: Tensor, feats: Tensor, plan: TilePlan, width: int, height: int
) -> tuple[Tensor, Tensor]:
    """Composite C images. means2d (C,N,2), conics (C,N,3), opacities (C,N), feats (C,N,ch).

    Returns fg (C,H,W,ch) = sum_i w_i f_i (no background) and final transmittance (C,H,W,1).
    """
    C, N = opacities.shape
    ch = feats.shape[-1]
    fg, t_final = _Composite.apply(
        means2d.reshape(C * N, 2),
        conics.reshape(C * N, 3),
        opacities.reshape(C * N),
        feats.reshape(C * N, ch),
        plan,
    )
    return _untile(fg, plan, width, height), _untile(t_final[..., None], plan, width, height)


def _untile(x: Tensor, plan: TilePlan, width: int, height: int) -> Tensor:
    """(C*ty*tx, TILE*TILE, ch) tile layout -> (C,H,W,ch) image."""
    ch = x.shape[-1]
    x = x.reshape(plan.num_cameras, plan.tiles_y, plan.tiles_x, TILE, TILE, ch)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(
        plan.num_cameras, plan.tiles_y * TILE, plan.tiles_x * TILE, ch
    )
    return x[:, :height, :width]
