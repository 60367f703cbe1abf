"""Tile-binned front-to-back alpha compositing in pure PyTorch, with a hand-written backward.

Semantics are gsplat 1.5.3's rasteriser: pixel centres at (j+0.5, i+0.5), Gaussians in depth order,
alpha = min(0.999, o exp(-sigma)), contributions with alpha < 1/255 skipped, and a pixel stops
before the Gaussian that would bring its transmittance to 1e-4 or below. A Gaussian only needs
evaluating at pixels of its box (mean +- radius): outside it alpha is below 1/255 by construction of
the opacity-aware radius, so the tiling does not change the image. Tiles where no pixel centre
reaches alpha >= 1/255 (exact ellipse-rectangle test) are dropped from a Gaussian's list as well.

Layout: (tile, Gaussian) pairs sorted by tile then depth. Tiles of TILE x TILE pixels with similar
Gaussian counts are padded into dense (tiles, pixels, Gaussians) blocks. Per block, the exponent
ln(o) - sigma is one matmul of pixel monomials (1, u, v, u^2, uv, v^2) (relative to the tile
centre) against per-pair coefficients; transmittance is a cumprod along the Gaussian axis; colour,
depth, features and alpha (a channel of ones) are one bmm. Blocks run in depth segments, and tiles
whose pixels have all stopped skip the remaining segments. The backward pass walks the segments back
to front, reusing the forward's alpha and T (or recomputing them above SAVE_BYTES), and reduces pixel
gradients to pair coefficients with matmuls; autograd carries them on to the Gaussians.

Float rounding differs from the CUDA kernels in two places that are exact in real arithmetic:
alpha is sum_i w_i rather than 1 - T_final, and gsplat's "sigma < 0: skip" test, which only
round-off can trigger for a positive-definite conic, is not reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import Tensor

from bench.render.projection import ALPHA_THRESHOLD

TILE = 8  # pixels per tile side; any size gives the same image (see module docstring)
MAX_ALPHA = 0.999
T_EPS = 1e-4  # a pixel is done before the Gaussian that brings T to T_EPS or below
BLOCK_ELEMENTS = 1 << 18  # target size of one (tiles, pixels, Gaussians) block
SAVE_BYTES = 1 << 29  # keep block state for the backward pass up to this size, else recompute
FIRST_SEGMENT = 128  # Gaussians of a block's first depth segment; later segments double
BLOCK_LOAD_RATIO = 0.6  # tiles in one block carry at least this fraction of its largest count
# Exponent of padding slots: exp() of it is far below the 1/255 threshold.
_PAD_EXPONENT = -30.0
# Exponents below ln(1/255) are clamped here before exp(), whose underflow path is slow on CPU.
_EXPONENT_FLOOR = -6.0
# nnf.threshold keeps x > t; the largest double below 1/255 keeps alpha >= 1/255
_BELOW_THRESHOLD = math.nextafter(ALPHA_THRESHOLD, 0.0)


@dataclass
class TilePlan:
    """Depth-sorted (tile, Gaussian) pairs for C cameras, grouped into padded blocks.

    pair_ids (P,) int64 flat (camera*N + gaussian) ids, grouped by tile, depth-sorted in a tile;
    pair_centres (P,2) float64 pixel centre of each pair's tile; blocks: list of (tiles (t,) int64
    tile indices, slots (t,G) int64 pair indices with P marking padding); slot_of_pair (P,)
    position of each pair in the blocks' slots concatenated and flattened; num_tiles = C * tiles_y
    * tiles_x; tiles_x, tiles_y, num_cameras sizes.
    """

    pair_ids: Tensor
    pair_centres: Tensor
    blocks: list[tuple[Tensor, Tensor]]
    slot_of_pair: Tensor
    num_tiles: int
    tiles_x: int
    tiles_y: int
    num_cameras: int

    def evaluations(self) -> int:
        """Gaussian-pixel evaluations the padded blocks perform (forward pass)."""
        return sum(int(slots.numel()) * TILE * TILE for _, slots in self.blocks)


@torch.no_grad()
def plan_tiles(
    means2d: Tensor, conics: Tensor, opacities: Tensor, radii: Tensor, depths: Tensor,
    width: int, height: int,
) -> TilePlan:
    """Bin visible Gaussians to tiles, depth-sorted, and group tiles into padded blocks.

    means2d (C,N,2), conics (C,N,3), opacities (C,N), radii (C,N,2) int (0 = culled), depths (C,N).
    A Gaussian goes to the tiles its box covers, minus those where no pixel centre can reach
    alpha >= 1/255. Ties in depth keep Gaussian order, and depths order as gsplat's radix sort of
    float bits does (negatives after positives).
    """
    C, N = depths.shape
    tiles_x, tiles_y = math.ceil(width / TILE), math.ceil(height / TILE)
    flat_r = radii.reshape(-1, 2)
    vis = torch.nonzero((flat_r > 0).all(-1)).squeeze(-1)
    vis = vis.index_select(0, _depth_order(depths.reshape(-1).index_select(0, vis)))
    gauss, cand, tx, ty = _candidate_pairs(
        means2d.reshape(-1, 2).index_select(0, vis).double(), flat_r.index_select(0, vis).double(),
        conics.reshape(-1, 3).index_select(0, vis).double(),
        opacities.reshape(-1).index_select(0, vis).double(), (vis // N).double(), width, height)
    keep = torch.nonzero(_reaches_tile(cand[1:], tx, ty, width, height)).squeeze(-1)
    # stable sort by (camera, tile) keeps depth order within a tile
    key = ((cand[0] * tiles_y + ty) * tiles_x + tx).index_select(0, keep).long()
    key_sorted, perm = torch.sort(key, stable=True)

    n_tiles = C * tiles_y * tiles_x
    counts = torch.bincount(key_sorted, minlength=n_tiles)
    blocks = _blocks(counts, torch.cumsum(counts, 0) - counts, len(key_sorted))
    tile_local = key_sorted % (tiles_x * tiles_y)
    centres = torch.stack([tile_local % tiles_x, tile_local // tiles_x], -1).double() * TILE + TILE / 2
    return TilePlan(
        pair_ids=vis.index_select(0, gauss.index_select(0, keep).index_select(0, perm)),
        pair_centres=centres,
        blocks=blocks,
        slot_of_pair=_slot_of_pair(blocks, len(key_sorted), means2d.device),
        num_tiles=n_tiles,
        tiles_x=tiles_x,
        tiles_y=tiles_y,
        num_cameras=C,
    )


def _candidate_pairs(m: Tensor, r: Tensor, conic: Tensor, opac: Tensor, cam: Tensor,
                     width: int, height: int) -> tuple[Tensor, list[Tensor], Tensor, Tensor]:
    """Every (Gaussian, tile) pair whose tile holds a pixel centre j + 0.5 inside the Gaussian's
    closed box [m - r, m + r], Gaussians in input order. Inputs per Gaussian, float64: means (V,2),
    radii (V,2), conics (V,3), opacities (V,), camera index (V,).

    Returns the Gaussian index (P,), per-pair rows [camera, mean x, mean y, conic a, b, c, -b/c,
    -b/a, ln(255 o)] (each (P,)), and the tile column and row (P,) as float64.
    """
    lo = torch.ceil(m - r - 0.5).clamp(min=0)
    hi = torch.minimum(torch.floor(m + r - 0.5), m.new_tensor([width - 1, height - 1]))
    t0 = torch.floor(lo / TILE)
    n_xy = torch.where(hi >= lo, torch.floor(hi / TILE) - t0 + 1, 0.0)
    n_per = (n_xy[:, 0] * n_xy[:, 1]).long()
    a, b, c = conic.T
    # one gather of every per-Gaussian quantity to the pairs
    per_gauss = torch.stack([n_xy[:, 0], t0[:, 0], t0[:, 1], cam, m[:, 0], m[:, 1], a, b, c,
                             -b / c, -b / a, torch.log(opac / ALPHA_THRESHOLD)])
    gauss = torch.repeat_interleave(torch.arange(len(m), device=m.device), n_per)
    nx, tx0, ty0, *cand = [row.index_select(0, gauss) for row in per_gauss]
    # k-th tile of a Gaussian's nx-wide rectangle of tiles
    k = torch.arange(len(gauss), device=m.device) - (torch.cumsum(n_per, 0) - n_per).index_select(0, gauss)
    ky = torch.floor(k.double() / nx)
    return gauss, cand, tx0 + (k - ky * nx), ty0 + ky


def _depth_order(d: Tensor) -> Tensor:
    """Stable order of gsplat's radix sort on float bits: ascending positives, then negatives by
    ascending magnitude (only reachable with near < 0)."""
    if not bool((d < 0).any()):
        return torch.argsort(d, stable=True)
    order = torch.argsort(d.abs(), stable=True)
    return order[torch.argsort((d[order] < 0).to(torch.int8), stable=True)]


def _reaches_tile(cand: list[Tensor], tx: Tensor, ty: Tensor, width: int, height: int) -> Tensor:
    """Whether some pixel centre of tile (tx, ty) may get alpha >= 1/255 from the Gaussian (P,) bool.

    cand: float64 (P,) rows mean x, mean y, conic a, b, c, -b/c, -b/a, ln(255 o). The minimum of the
    convex sigma over the tile's pixel-centre rectangle is 0 when the mean is inside, else on one of
    the four edges (a clamped 1D minimum each). A margin keeps float32 rounding in the renderer from
    ever making a dropped pair contribute.
    """
    mx, my, a, b, c, slope_y, slope_x, reach = cand
    dx_lo = tx * TILE + (0.5 - mx)
    dx_hi = torch.clamp((tx + 1) * TILE, max=width) - (0.5 + mx)
    dy_lo = ty * TILE + (0.5 - my)
    dy_hi = torch.clamp((ty + 1) * TILE, max=height) - (0.5 + my)
    best = None
    for fx, fy in (
        (dx_lo, (slope_y * dx_lo).clamp_(dy_lo, dy_hi)),
        (dx_hi, (slope_y * dx_hi).clamp_(dy_lo, dy_hi)),
        ((slope_x * dy_lo).clamp_(dx_lo, dx_hi), dy_lo),
        ((slope_x * dy_hi).clamp_(dx_lo, dx_hi), dy_hi),
    ):
        val = (a * fx + 2.0 * b * fy).mul_(fx).addcmul_(c * fy, fy)  # 2 sigma
        best = val if best is None else torch.minimum(best, val, out=best)
    inside = (dx_lo <= 0) & (dx_hi >= 0) & (dy_lo <= 0) & (dy_hi >= 0)
    return inside | (best <= 2.0 * reach + 2e-3 * (1.0 + reach.abs()))


def _blocks(counts: Tensor, offsets: Tensor, num_pairs: int) -> list[tuple[Tensor, Tensor]]:
    """Group non-empty tiles, heaviest first, into blocks of similar load and bounded size:
    (tiles (t,), slots (t,G)) with slots indexing pairs and num_pairs marking padding."""
    sorted_counts, tiles = torch.sort(counts, descending=True)
    values = sorted_counts.tolist()
    blocks = []
    i = 0
    pixels = TILE * TILE
    while i < len(values) and values[i] > 0:
        gmax = values[i]
        j = i + 1
        while (
            j < len(values)
            and values[j] > 0
            and values[j] >= BLOCK_LOAD_RATIO * gmax
            and (j - i + 1) * gmax * pixels <= BLOCK_ELEMENTS
        ):
            j += 1
        block_tiles = tiles[i:j]
        ar = torch.arange(gmax, device=counts.device)
        slots = torch.where(ar < counts[block_tiles, None], offsets[block_tiles, None] + ar, num_pairs)
        blocks.append((block_tiles, slots))
        i = j
    return blocks


def _slot_of_pair(blocks: list[tuple[Tensor, Tensor]], num_pairs: int, device: torch.device) -> Tensor:
    """(P,) position of every pair in the flattened concatenation of all blocks' slots."""
    if not blocks:
        return torch.zeros(0, dtype=torch.long, device=device)
    flat = torch.cat([slots.reshape(-1) for _, slots in blocks])
    where = torch.nonzero(flat < num_pairs).squeeze(-1)
    out = torch.empty(num_pairs, dtype=torch.long, device=flat.device)
    out[flat[where]] = where
    return out


def _pixel_monomials(dtype: torch.dtype, device: torch.device) -> Tensor:
    """(TILE*TILE, 6) monomials (1, u, v, u^2, uv, v^2) of pixel centres relative to the tile centre."""
    c = torch.arange(TILE, dtype=dtype, device=device) + 0.5 - TILE / 2
    v, u = torch.meshgrid(c, c, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    return torch.stack([torch.ones_like(u), u, v, u * u, u * v, v * v], dim=-1)


def pair_tables(means2d: Tensor, conics: Tensor, opacities: Tensor, feats: Tensor,
                plan: TilePlan) -> tuple[Tensor, Tensor]:
    """Per-pair inputs of the compositor, differentiable: coefficients q (P,6) with
    ln(o) - sigma = q . (1, u, v, u^2, uv, v^2), (u, v) = pixel centre minus the pair's tile centre,
    and channels f (P,ch). Inputs are (C,N,2), (C,N,3), (C,N), (C,N,ch)."""
    C, N = opacities.shape
    table = torch.cat([means2d, conics, opacities[..., None], feats], -1)
    rows = table.reshape(C * N, table.shape[-1]).index_select(0, plan.pair_ids)
    centres = plan.pair_centres.to(rows.dtype)
    dx, dy = rows[:, 0] - centres[:, 0], rows[:, 1] - centres[:, 1]
    a, b, c, o = rows[:, 2:6].unbind(-1)
    lno = torch.log(o)  # paired Gaussians have o >= 1/255
    const = lno - 0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
    q = torch.stack([const, a * dx + b * dy, b * dx + c * dy, -0.5 * a, -b, -0.5 * c], dim=-1)
    return q, rows[:, 6:]


def _segments(length: int) -> list[tuple[int, int]]:
    """Depth segments [start, end) of a block's Gaussian axis: FIRST_SEGMENT, then doubling sizes.
    Tiles whose pixels have all stopped after a segment skip the rest."""
    bounds, start, size = [], 0, FIRST_SEGMENT
    while start < length:
        end = length if length - start < 1.5 * size else start + size
        bounds.append((start, end))
        start, size = end, 2 * size
    return bounds


def _segment_state(mono: Tensor, q: Tensor, t_in: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Compositing state (t,p,S) of one segment from coefficients q (t,S,6) and the transmittance
    entering it t_in (t,p) (None = 1): alpha as composited, 1 - alpha, T before each Gaussian
    (0 from the stopping Gaussian on), and T leaving the segment (t,p) (0 where stopped)."""
    alpha = torch.matmul(mono, q.transpose(1, 2)).clamp_(min=_EXPONENT_FLOOR).exp_()
    alpha = nnf.threshold(alpha, _BELOW_THRESHOLD, 0.0).clamp_max_(MAX_ALPHA)
    one_minus = 1.0 - alpha
    if t_in is None:
        t_after = torch.cumprod(one_minus, dim=-1)
    else:
        # same product order as a pixel's running T = T * (1 - alpha)
        t_after = one_minus.clone()
        t_after[..., 0] *= t_in
        t_after.cumprod_(dim=-1)
    # T only decreases, so zeroing T <= 1e-4 zeroes exactly the stopping Gaussian and all after it
    t_after = nnf.threshold(t_after, T_EPS, 0.0, inplace=True)
    t_out = t_after[..., -1].clone()
    return alpha, one_minus, t_after.div_(one_minus), t_out


@dataclass
class _Segment:
    """One depth segment of a block as run forward: live (a,) block-local indices of the tiles
    still compositing, Gaussian range [start, end), entering transmittance t_in (a,p) or None,
    and, when kept, alpha and T before each Gaussian (a,p,end-start)."""

    live: Tensor
    start: int
    end: int
    t_in: Tensor | None
    alpha: Tensor | None = None
    t_before: Tensor | None = None


class _Composite(torch.autograd.Function):
    """Pair coefficients q (P,6) and channels f (P,ch) -> tile-layout images (T, TILE*TILE, ch+1)
    holding sum_i w_i f_i and, last, alpha = sum_i w_i, with w_i = alpha_i T_i.

    Blocks run in depth segments; a tile whose pixels have all stopped skips the later segments.
    The segments' alpha and T are kept for the backward pass when they fit in SAVE_BYTES, and
    recomputed otherwise."""

    @staticmethod
    def forward(ctx, q, f, plan: TilePlan):
        q_pad, f_pad = _padded(q, f)
        mono = _pixel_monomials(q.dtype, q.device)
        out = q.new_zeros(plan.num_tiles, f_pad.shape[-1], TILE * TILE)
        keep = any(ctx.needs_input_grad[:2]) and 2 * plan.evaluations() * q.element_size() <= SAVE_BYTES
        ctx.segments = [
            _block_forward(mono, _rows(q_pad, slots), _rows(f_pad, slots), tiles, out, keep)
            for tiles, slots in plan.blocks
        ]
        ctx.plan = plan
        ctx.save_for_backward(q, f)
        return out.transpose(1, 2)

    @staticmethod
    def backward(ctx, g_out):
        q, f = ctx.saved_tensors
        plan: TilePlan = ctx.plan
        if not plan.blocks:
            return torch.zeros_like(q), torch.zeros_like(f), None
        q_pad, f_pad = _padded(q, f)
        mono = _pixel_monomials(q.dtype, q.device)
        g_out_t = g_out.transpose(1, 2).contiguous()  # (T,ch+1,p)
        g_qs, g_fs = [], []
        for (tiles, slots), segments in zip(plan.blocks, ctx.segments):
            g_qb, g_fb = _block_backward(
                mono, _rows(q_pad, slots), _rows(f_pad, slots), g_out_t.index_select(0, tiles), segments)
            g_qs.append(g_qb.reshape(-1, 6))
            g_fs.append(g_fb.reshape(-1, g_fb.shape[-1]))
        g_q = torch.cat(g_qs).index_select(0, plan.slot_of_pair)
        g_f = torch.cat(g_fs).index_select(0, plan.slot_of_pair)[:, :-1]
        return g_q, g_f, None


def _block_forward(mono: Tensor, q: Tensor, f: Tensor, tiles: Tensor, out: Tensor,
                   keep: bool) -> list[_Segment]:
    """Composite one block (q (t,G,6), f (t,G,ch+1)) into out[tiles] (T,ch+1,p), segment by segment."""
    live = torch.arange(len(tiles), device=tiles.device)
    t_in = None
    segments = []
    for start, end in _segments(q.shape[1]):
        if len(live) < len(tiles):
            qs, fs = q.index_select(0, live)[:, start:end], f.index_select(0, live)[:, start:end]
        else:
            qs, fs = q[:, start:end], f[:, start:end]
        alpha, _, t_before, t_out = _segment_state(mono, qs, t_in)
        w = alpha * t_before
        seg = _Segment(live, start, end, t_in, *((alpha, t_before) if keep else ()))
        segments.append(seg)
        # (t,ch,S) @ (t,S,p): several times faster on CPU than w @ f with this small ch
        out.index_add_(0, tiles.index_select(0, live),
                       torch.bmm(fs.transpose(1, 2).contiguous(), w.transpose(1, 2)))
        if end == q.shape[1]:
            break
        going = torch.nonzero((t_out > 0).any(-1)).squeeze(-1)
        if len(going) == 0:
            break
        live, t_in = live.index_select(0, going), t_out.index_select(0, going)
    return segments


def _rows(table: Tensor, index: Tensor) -> Tensor:
    """table (R,K) rows at index (t,G) -> (t,G,K); index_select is much faster than table[index]."""
    return table.index_select(0, index.reshape(-1)).reshape(index.shape + (table.shape[-1],))


def _padded(q: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
    """Tables with a trailing padding row that never contributes, and a ones channel on f."""
    pad_q = q.new_zeros(1, 6)
    pad_q[0, 0] = _PAD_EXPONENT
    f_pad = torch.cat([f, f.new_ones(len(f), 1)], dim=1)
    return torch.cat([q, pad_q]), torch.cat([f_pad, f_pad.new_zeros(1, f_pad.shape[1])])


def _block_backward(mono: Tensor, q: Tensor, f: Tensor, g_out: Tensor,
                    segments: list[_Segment]) -> tuple[Tensor, Tensor]:
    """Per-pair gradients of one block (t,G,6) and (t,G,ch+1), segments back to front.

    q (t,G,6), f (t,G,ch+1), g_out (t,ch+1,p) the upstream gradient of the block's pixels.
    Skipped (tile, segment) parts get zero gradient: nothing there reached the image.
    """
    t, length = q.shape[:2]
    g_q = q.new_zeros(t, length, 6)
    g_f = f.new_zeros(t, length, f.shape[-1])
    # sum over later segments of w_j f_j . dL/dpixel, per pixel
    later = q.new_zeros(t, TILE * TILE)
    for seg in reversed(segments):
        qs = q.index_select(0, seg.live)[:, seg.start:seg.end]
        fs = f.index_select(0, seg.live)[:, seg.start:seg.end]
        if seg.alpha is None:
            alpha, one_minus, t_before, _ = _segment_state(mono, qs, seg.t_in)
        else:
            alpha, one_minus, t_before = seg.alpha, 1.0 - seg.alpha, seg.t_before
        g_qs, g_fs, total = _segment_backward(
            mono, alpha, one_minus, t_before, fs, g_out.index_select(0, seg.live),
            later.index_select(0, seg.live))
        later.index_add_(0, seg.live, total)
        g_q[:, seg.start:seg.end].index_copy_(0, seg.live, g_qs)
        g_f[:, seg.start:seg.end].index_copy_(0, seg.live, g_fs)
    return g_q, g_f


def _segment_backward(mono: Tensor, alpha: Tensor, one_minus: Tensor, t_before: Tensor, f: Tensor,
                      g_out: Tensor, later: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of one segment: coefficients (a,S,6), channels (a,S,ch+1), and the segment's
    sum of w_j f_j . dL/dpixel (a,p) for the segments before it.

    alpha, one_minus, t_before (a,p,S) segment state (not modified), f (a,S,ch+1), g_out (a,ch+1,p)
    upstream pixel gradient, later (a,p) the same sum over the segments after this one.
    """
    w = alpha * t_before
    g_f = torch.bmm(g_out, w).transpose(1, 2)
    cg = torch.bmm(g_out.transpose(1, 2), f.transpose(1, 2))  # (a,p,S): f_i . dL/dpixel
    # dL/dalpha_i = T_i f_i.g - sum_{j>i} w_j f_j.g / (1 - alpha_i); the ones channel covers
    # alpha = 1 - T_final. Past the stop both terms are exactly 0 (w_j = 0, T_i = 0 there).
    g_alpha = torch.cumsum(w.mul_(cg), dim=-1)
    total = g_alpha[..., -1].clone()
    g_alpha.sub_((total + later)[..., None]).div_(one_minus).addcmul_(t_before, cg)
    # d alpha / d(ln o - sigma) = alpha, but 0 where alpha is clamped at 0.999 (or skipped)
    neg_slope = nnf.threshold(torch.neg(alpha), -MAX_ALPHA, 0.0)
    g_expo = g_alpha.mul_(neg_slope)  # negated dL/d exponent
    g_q = torch.matmul(mono.transpose(0, 1), g_expo).transpose(1, 2).neg()  # (a,S,6)
    return g_q, g_f, total


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
