// Compiled CPU hot loops of the renderer: tile planning, compositing forward and its backward.
//
// Semantics are gsplat 1.5.3's rasteriser, as in bench/render/composite.py (the pure-PyTorch
// path): pixel centres at (j+0.5, i+0.5), Gaussians in depth order per tile,
// alpha = min(0.999, o exp(-sigma)), alpha < 1/255 skipped, and a pixel stops before the Gaussian
// that would bring its transmittance to 1e-4 or below. A Gaussian is evaluated only at the pixels
// of its box (mean +- radius) inside the tile: outside the box alpha is below 1/255 by
// construction of the opacity-aware radius, so this does not change the image.
//
// Determinism: tiles run in parallel, but every output (a pixel, a pair's gradient row) is
// written by the one thread that owns its tile, and per-Gaussian gradients are summed from the
// pair rows serially in pair order. Results do not depend on the thread count.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <tuple>
#include <utility>
#include <vector>

namespace {

constexpr double kAlphaThreshold = 1.0 / 255.0;
constexpr double kMaxAlpha = 0.999;
constexpr double kTEps = 1e-4;

// gsplat's radix sort on float bits: ascending positives, then negatives by ascending magnitude.
bool depth_before(double a, double b) {
  const bool na = a < 0, nb = b < 0;
  if (na != nb) return nb;
  return na ? (-a < -b) : (a < b);
}

// Whether some pixel centre of the tile rectangle may reach alpha >= 1/255 (the pure-PyTorch
// path's _reaches_tile, same formulas and margin): min of the convex 2 sigma over the rectangle.
bool reaches_tile(double mx, double my, double a, double b, double c, double reach, double tx,
                  double ty, int tile, int width, int height) {
  const double dx_lo = tx * tile + (0.5 - mx);
  const double dx_hi = std::min((tx + 1) * tile, double(width)) - (0.5 + mx);
  const double dy_lo = ty * tile + (0.5 - my);
  const double dy_hi = std::min((ty + 1) * tile, double(height)) - (0.5 + my);
  if (dx_lo <= 0 && dx_hi >= 0 && dy_lo <= 0 && dy_hi >= 0) return true;
  const double slope_y = -b / c, slope_x = -b / a;
  auto clamp = [](double v, double lo, double hi) { return std::min(std::max(v, lo), hi); };
  auto two_sigma = [&](double fx, double fy) { return (a * fx + 2.0 * b * fy) * fx + c * fy * fy; };
  double best = two_sigma(dx_lo, clamp(slope_y * dx_lo, dy_lo, dy_hi));
  best = std::min(best, two_sigma(dx_hi, clamp(slope_y * dx_hi, dy_lo, dy_hi)));
  best = std::min(best, two_sigma(clamp(slope_x * dy_lo, dx_lo, dx_hi), dy_lo));
  best = std::min(best, two_sigma(clamp(slope_x * dy_hi, dx_lo, dx_hi), dy_hi));
  return best <= 2.0 * reach + 2e-3 * (1.0 + std::abs(reach));
}

// Inclusive pixel range [lo, hi] of a box centred at m with half-size r, clipped to [0, size).
void box_range(double m, double r, int size, int& lo, int& hi) {
  lo = int(std::max(std::ceil(m - r - 0.5), 0.0));
  hi = int(std::min(std::floor(m + r - 0.5), double(size - 1)));
}

}  // namespace

// Bin visible Gaussians to tiles, depth-sorted within a tile.
// means2d (C,N,2), conics (C,N,3), opacities (C,N), radii (C,N,2) int32, depths (C,N), any float
// dtype (evaluated in float64). Returns pair_ids (P,) int64 flat camera*N + gaussian, grouped by
// tile (tile index camera*tiles_y*tiles_x + row*tiles_x + column) and depth-sorted in a tile, and
// offsets (C*tiles_y*tiles_x + 1,) int64 into pair_ids.
std::vector<torch::Tensor> plan_tiles(torch::Tensor means2d, torch::Tensor conics,
                                      torch::Tensor opacities, torch::Tensor radii,
                                      torch::Tensor depths, int64_t width, int64_t height,
                                      int64_t tile) {
  const int64_t C = depths.size(0), N = depths.size(1);
  auto m = means2d.to(torch::kFloat64).contiguous();
  auto q = conics.to(torch::kFloat64).contiguous();
  auto o = opacities.to(torch::kFloat64).contiguous();
  auto d = depths.to(torch::kFloat64).contiguous();
  auto r = radii.to(torch::kInt32).contiguous();
  const double* mp = m.data_ptr<double>();
  const double* qp = q.data_ptr<double>();
  const double* op = o.data_ptr<double>();
  const double* dp = d.data_ptr<double>();
  const int32_t* rp = r.data_ptr<int32_t>();
  const int tiles_x = int((width + tile - 1) / tile), tiles_y = int((height + tile - 1) / tile);
  const int64_t tiles_per_cam = int64_t(tiles_x) * tiles_y;
  const int64_t num_tiles = C * tiles_per_cam;

  // visible Gaussians in depth order (stable: ties keep camera-major Gaussian order)
  std::vector<int64_t> order;
  order.reserve(C * N);
  for (int64_t i = 0; i < C * N; ++i)
    if (rp[2 * i] > 0 && rp[2 * i + 1] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return depth_before(dp[a], dp[b]); });

  // candidate pairs in depth order; a stable counting sort by tile then keeps depth order
  std::vector<int64_t> pair_gauss, pair_tile;
  pair_gauss.reserve(order.size() * 4);
  pair_tile.reserve(order.size() * 4);
  for (int64_t g : order) {
    const double mx = mp[2 * g], my = mp[2 * g + 1];
    int x0, x1, y0, y1;
    box_range(mx, rp[2 * g], int(width), x0, x1);
    box_range(my, rp[2 * g + 1], int(height), y0, y1);
    if (x1 < x0 || y1 < y0) continue;
    const double a = qp[3 * g], b = qp[3 * g + 1], c = qp[3 * g + 2];
    const double reach = std::log(op[g] / kAlphaThreshold);
    const int64_t base = (g / N) * tiles_per_cam;
    for (int ty = y0 / int(tile); ty <= y1 / int(tile); ++ty)
      for (int tx = x0 / int(tile); tx <= x1 / int(tile); ++tx)
        if (reaches_tile(mx, my, a, b, c, reach, tx, ty, int(tile), int(width), int(height))) {
          pair_gauss.push_back(g);
          pair_tile.push_back(base + int64_t(ty) * tiles_x + tx);
        }
  }
  auto offsets = torch::zeros({num_tiles + 1}, torch::kInt64);
  int64_t* off = offsets.data_ptr<int64_t>();
  for (int64_t t : pair_tile) off[t + 1] += 1;
  for (int64_t t = 0; t < num_tiles; ++t) off[t + 1] += off[t];
  auto ids = torch::empty({int64_t(pair_gauss.size())}, torch::kInt64);
  int64_t* idp = ids.data_ptr<int64_t>();
  std::vector<int64_t> cursor(off, off + num_tiles);
  for (size_t k = 0; k < pair_gauss.size(); ++k) idp[cursor[pair_tile[k]]++] = pair_gauss[k];
  return {ids, offsets};
}

namespace {

// Per-Gaussian inputs of the compositor, flat over camera*N + gaussian.
template <typename scalar_t>
struct Gaussians {
  const scalar_t* means;    // (CN,2)
  const scalar_t* conics;   // (CN,3)
  const scalar_t* opac;     // (CN,)
  const scalar_t* feats;    // (CN,ch)
  const int32_t* radii;     // (CN,2)
  int64_t ch;
};

// A sigma above which alpha = o exp(-sigma) is surely below 1/255, so exp() can be skipped (it
// is the costly part, and slow where it underflows). The margin leaves the exact alpha test to
// decide every case near the threshold.
template <typename scalar_t>
scalar_t sigma_cutoff(scalar_t o) {
  const double reach = std::log(double(o) / kAlphaThreshold);
  return scalar_t(reach + 1e-3 * (1.0 + std::abs(reach)));
}

// Geometry shared by the forward and backward pass of one tile.
struct TileGeom {
  int x0, y0, x1, y1;  // pixel range [x0, x1) x [y0, y1) of the tile inside the image
  int tile;
};

TileGeom tile_geom(int64_t t_local, int tiles_x, int tile, int width, int height) {
  const int tx = int(t_local % tiles_x), ty = int(t_local / tiles_x);
  return {tx * tile, ty * tile, std::min((tx + 1) * tile, width), std::min((ty + 1) * tile, height),
          tile};
}

// The Gaussian's box clipped to the tile, inclusive-exclusive [bx0, bx1) x [by0, by1).
template <typename scalar_t>
bool clip_box(const Gaussians<scalar_t>& G, int64_t g, const TileGeom& tg, int& bx0, int& bx1,
              int& by0, int& by1) {
  int lo, hi;
  box_range(double(G.means[2 * g]), G.radii[2 * g], tg.x1, lo, hi);
  bx0 = std::max(lo, tg.x0);
  bx1 = std::min(hi + 1, tg.x1);
  box_range(double(G.means[2 * g + 1]), G.radii[2 * g + 1], tg.y1, lo, hi);
  by0 = std::max(lo, tg.y0);
  by1 = std::min(hi + 1, tg.y1);
  return bx0 < bx1 && by0 < by1;
}

// One Gaussian as the compositing loops read it: 2D mean, conic, opacity, its sigma cut-off, features.
template <typename scalar_t>
struct Splat {
  scalar_t mx, my, a, b, c, o, cutoff;
  const scalar_t* f;
};

template <typename scalar_t>
Splat<scalar_t> splat(const Gaussians<scalar_t>& G, int64_t g) {
  const scalar_t o = G.opac[g];
  return {G.means[2 * g], G.means[2 * g + 1], G.conics[3 * g], G.conics[3 * g + 1], G.conics[3 * g + 2], o,
          sigma_cutoff(o), G.feats + g * G.ch};
}

// Returns the pixels that went through exp(), counted per tile and summed in tile order.
template <typename scalar_t>
int64_t forward_kernel(const Gaussians<scalar_t> G, const int64_t* ids, const int64_t* off,
                       int64_t num_tiles, int tiles_x, int tiles_y, int tile, int width, int height,
                       scalar_t* out, scalar_t* t_final, int32_t* last) {
  const int64_t ch = G.ch, ch1 = ch + 1, per_cam = int64_t(tiles_x) * tiles_y;
  const scalar_t thresh = scalar_t(kAlphaThreshold), max_alpha = scalar_t(kMaxAlpha);
  const scalar_t t_eps = scalar_t(kTEps);
  std::vector<int64_t> evaluated(num_tiles, 0);
  at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
    const int pix = tile * tile;
    std::vector<scalar_t> T(pix), acc(pix * ch1);
    std::vector<int32_t> stop(pix);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t cam = t / per_cam;
      const TileGeom tg = tile_geom(t % per_cam, tiles_x, tile, width, height);
      const int64_t start = off[t], n = off[t + 1] - start;
      std::fill(T.begin(), T.end(), scalar_t(1));
      std::fill(acc.begin(), acc.end(), scalar_t(0));
      std::fill(stop.begin(), stop.end(), int32_t(n));
      int live = (tg.x1 - tg.x0) * (tg.y1 - tg.y0);
      for (int64_t i = 0; i < n && live > 0; ++i) {
        const int64_t g = ids[start + i];
        int bx0, bx1, by0, by1;
        if (!clip_box(G, g, tg, bx0, bx1, by0, by1)) continue;
        const auto [mx, my, a, b, c, o, cutoff, f] = splat(G, g);
        for (int y = by0; y < by1; ++y) {
          const scalar_t dy = scalar_t(y) + scalar_t(0.5) - my;
          for (int x = bx0; x < bx1; ++x) {
            const int p = (y - tg.y0) * tile + (x - tg.x0);
            if (stop[p] < n) continue;
            const scalar_t dx = scalar_t(x) + scalar_t(0.5) - mx;
            const scalar_t sigma = scalar_t(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy;
            if (sigma > cutoff) continue;
            ++evaluated[t];
            const scalar_t alpha = std::min(max_alpha, o * std::exp(-sigma));
            if (alpha < thresh) continue;
            const scalar_t next_t = T[p] * (scalar_t(1) - alpha);
            if (next_t <= t_eps) {
              stop[p] = int32_t(i);
              --live;
              continue;
            }
            const scalar_t w = alpha * T[p];
            scalar_t* ap = &acc[p * ch1];
            for (int64_t k = 0; k < ch; ++k) ap[k] += w * f[k];
            ap[ch] += w;
            T[p] = next_t;
          }
        }
      }
      for (int y = tg.y0; y < tg.y1; ++y)
        for (int x = tg.x0; x < tg.x1; ++x) {
          const int p = (y - tg.y0) * tile + (x - tg.x0);
          const int64_t px = (cam * height + y) * width + x;
          std::copy(&acc[p * ch1], &acc[p * ch1] + ch1, out + px * ch1);
          t_final[px] = T[p];
          last[px] = stop[p];
        }
    }
  });
  return std::accumulate(evaluated.begin(), evaluated.end(), int64_t(0));
}

// Per-pair gradient rows (P, 6 + ch): d means2d (2), d conic (3), d opacity (1), d feats (ch).
template <typename scalar_t>
void backward_kernel(const Gaussians<scalar_t> G, const int64_t* ids, const int64_t* off,
                     int64_t num_tiles, int tiles_x, int tiles_y, int tile, int width, int height,
                     const scalar_t* g_out, const scalar_t* t_final, const int32_t* last,
                     scalar_t* g_pair) {
  const int64_t ch = G.ch, ch1 = ch + 1, row = 6 + ch, per_cam = int64_t(tiles_x) * tiles_y;
  const scalar_t thresh = scalar_t(kAlphaThreshold), max_alpha = scalar_t(kMaxAlpha);
  at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
    const int pix = tile * tile;
    std::vector<scalar_t> T(pix), later(pix), gp(pix * ch1), gf(ch);
    std::vector<int32_t> stop(pix);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t cam = t / per_cam;
      const TileGeom tg = tile_geom(t % per_cam, tiles_x, tile, width, height);
      const int64_t start = off[t];
      int32_t max_last = 0;
      for (int y = tg.y0; y < tg.y1; ++y)
        for (int x = tg.x0; x < tg.x1; ++x) {
          const int p = (y - tg.y0) * tile + (x - tg.x0);
          const int64_t px = (cam * height + y) * width + x;
          T[p] = t_final[px];
          later[p] = 0;
          stop[p] = last[px];
          max_last = std::max(max_last, last[px]);
          std::copy(g_out + px * ch1, g_out + px * ch1 + ch1, &gp[p * ch1]);
        }
      // back to front: T before Gaussian i is T after it / (1 - alpha_i), as in gsplat
      for (int64_t i = int64_t(max_last) - 1; i >= 0; --i) {
        const int64_t g = ids[start + i];
        int bx0, bx1, by0, by1;
        if (!clip_box(G, g, tg, bx0, bx1, by0, by1)) continue;
        const auto [mx, my, a, b, c, o, cutoff, f] = splat(G, g);
        scalar_t gmx = 0, gmy = 0, ga = 0, gb = 0, gc = 0, go = 0;
        std::fill(gf.begin(), gf.end(), scalar_t(0));
        for (int y = by0; y < by1; ++y) {
          const scalar_t dy = scalar_t(y) + scalar_t(0.5) - my;
          for (int x = bx0; x < bx1; ++x) {
            const int p = (y - tg.y0) * tile + (x - tg.x0);
            if (i >= stop[p]) continue;
            const scalar_t dx = scalar_t(x) + scalar_t(0.5) - mx;
            const scalar_t sigma = scalar_t(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy;
            if (sigma > cutoff) continue;
            const scalar_t vis = std::exp(-sigma);
            const scalar_t raw = o * vis;
            const scalar_t alpha = std::min(max_alpha, raw);
            if (alpha < thresh) continue;
            const scalar_t one_minus = scalar_t(1) - alpha;
            const scalar_t t_i = T[p] / one_minus;
            T[p] = t_i;
            const scalar_t w = alpha * t_i;
            const scalar_t* gpp = &gp[p * ch1];
            scalar_t fg = gpp[ch];  // the alpha channel composites a constant 1
            for (int64_t k = 0; k < ch; ++k) {
              fg += f[k] * gpp[k];
              gf[k] += w * gpp[k];
            }
            // dL/dalpha_i = T_i f_i.g - sum_{j>i} w_j f_j.g / (1 - alpha_i)
            const scalar_t g_alpha = t_i * fg - later[p] / one_minus;
            later[p] += w * fg;
            if (raw < max_alpha) {  // clamped alpha has zero slope
              go += g_alpha * vis;
              const scalar_t g_sigma = -g_alpha * alpha;
              ga += g_sigma * scalar_t(0.5) * dx * dx;
              gb += g_sigma * dx * dy;
              gc += g_sigma * scalar_t(0.5) * dy * dy;
              // sigma depends on the mean through dx = px - mx, dy = py - my
              gmx -= g_sigma * (a * dx + b * dy);
              gmy -= g_sigma * (b * dx + c * dy);
            }
          }
        }
        scalar_t* out_row = g_pair + (start + i) * row;
        out_row[0] = gmx;
        out_row[1] = gmy;
        out_row[2] = ga;
        out_row[3] = gb;
        out_row[4] = gc;
        out_row[5] = go;
        for (int64_t k = 0; k < ch; ++k) out_row[6 + k] = gf[k];
      }
    }
  });
}


// ---- float32 kernels: composite_vec.h compiled per instruction set, picked at run time -------

// One Gaussian as the float32 vector kernels read it, prepared once per render: its 2D mean,
// half the conic's diagonal, its off-diagonal, opacity, sigma cut-off and the inclusive pixel box
// clipped to the image (x1 < x0 when culled or off-image).
struct Prepared {
  float mx, my, half_a, b, half_c, o, cutoff;
  int32_t x0, x1, y0, y1;
};

// Everything a tile kernel reads or writes; one tile's outputs have one writer.
struct VecInputs {
  const Prepared* pre;   // (CN,)
  const float* feats;    // (CN,ch)
  const int64_t* ids;    // (P,) pair ids from plan_tiles
  const int64_t* off;    // (tiles+1,)
  int tiles_x, tiles_y, tile, width, height;
  float* out;            // forward: (C,H,W,ch+1)
  float* t_final;        // forward: written; backward: read (C,H,W)
  int32_t* last;         // forward: written; backward: read (C,H,W)
  const float* g_out;    // backward: (C,H,W,ch+1)
  float* g_pair;         // backward: (P, 6+ch), zero-initialised
};

// A tile kernel: (inputs, tile index, float scratch, int scratch) -> pixel lanes through exp().
typedef int64_t (*TileFn)(const VecInputs&, int64_t, float*, int32_t*);

constexpr int kMinChannels = 4;  // rgb + depth
constexpr int kMaxChannels = 8;  // more channels take the scalar kernels
constexpr int kMaxBlockLanes = 32;
// scratch per tile: pixel centres, T, two more state planes and ch+1 gradient or sum planes;
// vector rectangles (4 per vector), stop indices and a vector list
int scratch_floats(int tile) { return (6 + kMaxChannels + 1) * (tile * tile + kMaxBlockLanes); }
int scratch_ints(int tile) { return 6 * (tile * tile + kMaxBlockLanes); }

template float sigma_cutoff<float>(float);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BENCH_HAVE_X86_BUILDS 1
#pragma GCC push_options
#pragma GCC target("avx512f,fma,avx2")
#define BENCH_VEC_ISA 2
namespace avx512 {
constexpr int kLanes = 16, kBlock = 2;
#include "composite_vec.h"
#include "method_vec.h"
}  // namespace avx512
#undef BENCH_VEC_ISA
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define BENCH_VEC_ISA 1
namespace avx2 {
constexpr int kLanes = 8, kBlock = 1;
#include "composite_vec.h"
#include "method_vec.h"
}  // namespace avx2
#undef BENCH_VEC_ISA
#pragma GCC pop_options
#endif
#define BENCH_VEC_ISA 0
namespace base {
constexpr int kLanes = 8, kBlock = 1;
#include "composite_vec.h"
#include "method_vec.h"
}  // namespace base
#undef BENCH_VEC_ISA

// Instruction sets of the float32 kernels, best first; "auto" picks the best this CPU runs.
enum class Isa { kAvx512 = 0, kAvx2 = 1, kBase = 2 };
const char* const kIsaNames[] = {"avx512", "avx2", "base"};

bool isa_supported(Isa isa) {
#ifdef BENCH_HAVE_X86_BUILDS
  if (isa == Isa::kAvx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  if (isa == Isa::kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true;
#else
  return isa == Isa::kBase;
#endif
}

Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2})
    if (isa_supported(isa)) return isa;
  return Isa::kBase;
}

Isa g_isa = best_isa();

std::pair<TileFn, TileFn> tile_kernels(int64_t ch) {
  switch (g_isa) {
#ifdef BENCH_HAVE_X86_BUILDS
    case Isa::kAvx512: return {avx512::forward_for(ch), avx512::backward_for(ch)};
    case Isa::kAvx2: return {avx2::forward_for(ch), avx2::backward_for(ch)};
#endif
    default: return {base::forward_for(ch), base::backward_for(ch)};
  }
}

typedef void (*HeadsForwardFn)(const float*, int64_t, int64_t, int64_t, int64_t, float*, float*);
typedef void (*HeadsBackwardFn)(const float*, const float*, const float*, const float*, int64_t,
                                int64_t, int64_t, int64_t, float*);

// The head activations of the selected instruction set and its lane count.
std::tuple<HeadsForwardFn, HeadsBackwardFn, int> heads_kernels() {
  switch (g_isa) {
#ifdef BENCH_HAVE_X86_BUILDS
    case Isa::kAvx512: return {&avx512::heads_forward_cols, &avx512::heads_backward_cols, avx512::kLanes};
    case Isa::kAvx2: return {&avx2::heads_forward_cols, &avx2::heads_backward_cols, avx2::kLanes};
#endif
    default: return {&base::heads_forward_cols, &base::heads_backward_cols, base::kLanes};
  }
}

// Column ranges of `lanes`-wide chunks for the vector code, and the remainder (padded into
// whole chunks through a scratch copy), each handed to `fn(begin, end)`; chunks run in parallel.
template <typename Fn>
void for_column_chunks(int64_t M, int lanes, const Fn& fn) {
  const int64_t full = M / lanes * lanes;
  at::parallel_for(0, full / lanes, 64, [&](int64_t b, int64_t e) { fn(b * lanes, e * lanes); });
  if (full < M) fn(full, M);
}

// Per-Gaussian values of the vector kernels; culled Gaussians get an empty box.
std::vector<Prepared> prepare(const Gaussians<float>& G, int64_t CN, int width, int height) {
  std::vector<Prepared> pre(CN);
  at::parallel_for(0, CN, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      Prepared& q = pre[g];
      q.mx = G.means[2 * g];
      q.my = G.means[2 * g + 1];
      q.half_a = 0.5f * G.conics[3 * g];
      q.b = G.conics[3 * g + 1];
      q.half_c = 0.5f * G.conics[3 * g + 2];
      q.o = G.opac[g];
      q.x0 = q.y0 = 0;
      q.x1 = q.y1 = -1;
      if (G.radii[2 * g] <= 0 || G.radii[2 * g + 1] <= 0) continue;  // never in a tile list
      q.cutoff = sigma_cutoff(q.o);
      box_range(double(q.mx), G.radii[2 * g], width, q.x0, q.x1);
      box_range(double(q.my), G.radii[2 * g + 1], height, q.y0, q.y1);
    }
  });
  return pre;
}

// Runs `fn` on every tile in parallel; returns the pixel lanes through exp(), summed per tile in
// tile order (each tile's count has one writer).
int64_t run_tiles(TileFn fn, const VecInputs& in, int64_t num_tiles) {
  std::vector<int64_t> lanes(num_tiles, 0);
  at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> fs(scratch_floats(in.tile));
    std::vector<int32_t> is(scratch_ints(in.tile));
    for (int64_t t = begin; t < end; ++t) lanes[t] = fn(in, t, fs.data(), is.data());
  });
  return std::accumulate(lanes.begin(), lanes.end(), int64_t(0));
}

template <typename scalar_t>
Gaussians<scalar_t> gaussians(const torch::Tensor& means2d, const torch::Tensor& conics,
                              const torch::Tensor& opac, const torch::Tensor& feats,
                              const torch::Tensor& radii) {
  return {means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), opac.data_ptr<scalar_t>(),
          feats.data_ptr<scalar_t>(), radii.data_ptr<int32_t>(), feats.size(-1)};
}

// Inputs of the vector kernels for float32 tensors with kMinChannels..kMaxChannels features.
VecInputs vec_inputs(const Gaussians<float>& G, const std::vector<Prepared>& pre,
                     const torch::Tensor& ids, const torch::Tensor& offsets, int64_t width,
                     int64_t height, int64_t tile) {
  VecInputs in{};
  in.pre = pre.data();
  in.feats = G.feats;
  in.ids = ids.data_ptr<int64_t>();
  in.off = offsets.data_ptr<int64_t>();
  in.tiles_x = int((width + tile - 1) / tile);
  in.tiles_y = int((height + tile - 1) / tile);
  in.tile = int(tile);
  in.width = int(width);
  in.height = int(height);
  return in;
}

bool vector_path(const torch::Tensor& means2d, int64_t ch) {
  return means2d.scalar_type() == torch::kFloat32 && ch >= kMinChannels && ch <= kMaxChannels;
}

}  // namespace

// Composite C images. means2d (CN,2), conics (CN,3), opacities (CN,), feats (CN,ch) contiguous,
// one float dtype; radii (CN,2) int32; ids, offsets from plan_tiles. Returns out (C,H,W,ch+1)
// holding sum_i w_i f_i and, last, alpha = sum_i w_i; T_final (C,H,W); last (C,H,W) int32 the
// index in its tile's list of the Gaussian that stopped the pixel (the list length if none); and
// lanes, a 0-d int64 tensor: pixel lanes that went through exp() (the kernel's real work).
std::vector<torch::Tensor> composite_forward(torch::Tensor means2d, torch::Tensor conics,
                                             torch::Tensor opacities, torch::Tensor feats,
                                             torch::Tensor radii, torch::Tensor ids,
                                             torch::Tensor offsets, int64_t C, int64_t width,
                                             int64_t height, int64_t tile) {
  const int tiles_x = int((width + tile - 1) / tile), tiles_y = int((height + tile - 1) / tile);
  const int64_t ch = feats.size(-1), num_tiles = offsets.size(0) - 1;
  auto opts = means2d.options();
  auto out = torch::empty({C, height, width, ch + 1}, opts);
  auto t_final = torch::empty({C, height, width}, opts);
  auto last = torch::empty({C, height, width}, opts.dtype(torch::kInt32));
  int64_t lanes = 0;
  if (vector_path(means2d, ch)) {
    const auto G = gaussians<float>(means2d, conics, opacities, feats, radii);
    const auto pre = prepare(G, means2d.size(0), int(width), int(height));
    VecInputs in = vec_inputs(G, pre, ids, offsets, width, height, tile);
    in.out = out.data_ptr<float>();
    in.t_final = t_final.data_ptr<float>();
    in.last = last.data_ptr<int32_t>();
    lanes = run_tiles(tile_kernels(ch).first, in, num_tiles);
  } else {
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "composite_forward", [&] {
      lanes = forward_kernel<scalar_t>(gaussians<scalar_t>(means2d, conics, opacities, feats, radii),
                                       ids.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(),
                                       num_tiles, tiles_x, tiles_y, int(tile), int(width),
                                       int(height), out.data_ptr<scalar_t>(),
                                       t_final.data_ptr<scalar_t>(), last.data_ptr<int32_t>());
    });
  }
  return {out, t_final, last, torch::tensor(lanes, torch::kInt64)};
}

// Gradients of composite_forward for upstream g_out (C,H,W,ch+1): per-Gaussian d means2d (CN,2),
// d conics (CN,3), d opacities (CN,), d feats (CN,ch), summed over each Gaussian's pairs serially
// in pair order.
std::vector<torch::Tensor> composite_backward(torch::Tensor means2d, torch::Tensor conics,
                                              torch::Tensor opacities, torch::Tensor feats,
                                              torch::Tensor radii, torch::Tensor ids,
                                              torch::Tensor offsets, torch::Tensor g_out,
                                              torch::Tensor t_final, torch::Tensor last,
                                              int64_t width, int64_t height, int64_t tile) {
  const int tiles_x = int((width + tile - 1) / tile), tiles_y = int((height + tile - 1) / tile);
  const int64_t ch = feats.size(-1), P = ids.size(0), CN = means2d.size(0), row = 6 + ch;
  const int64_t num_tiles = offsets.size(0) - 1;
  auto g_pair = torch::zeros({P, row}, means2d.options());
  auto g_gauss = torch::zeros({CN, row}, means2d.options());
  AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "composite_backward", [&] {
    if (vector_path(means2d, ch)) {
      const auto G = gaussians<float>(means2d, conics, opacities, feats, radii);
      const auto pre = prepare(G, CN, int(width), int(height));
      VecInputs in = vec_inputs(G, pre, ids, offsets, width, height, tile);
      in.t_final = t_final.data_ptr<float>();
      in.last = last.data_ptr<int32_t>();
      in.g_out = g_out.data_ptr<float>();
      in.g_pair = g_pair.data_ptr<float>();
      run_tiles(tile_kernels(ch).second, in, num_tiles);
    } else {
      backward_kernel<scalar_t>(gaussians<scalar_t>(means2d, conics, opacities, feats, radii),
                                ids.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), num_tiles,
                                tiles_x, tiles_y, int(tile), int(width), int(height),
                                g_out.data_ptr<scalar_t>(), t_final.data_ptr<scalar_t>(),
                                last.data_ptr<int32_t>(), g_pair.data_ptr<scalar_t>());
    }
    const scalar_t* src = g_pair.data_ptr<scalar_t>();
    scalar_t* dst = g_gauss.data_ptr<scalar_t>();
    const int64_t* idp = ids.data_ptr<int64_t>();
    for (int64_t k = 0; k < P; ++k) {
      scalar_t* d = dst + idp[k] * row;
      const scalar_t* s = src + k * row;
      for (int64_t j = 0; j < row; ++j) d[j] += s[j];
    }
  });
  return {g_gauss.slice(1, 0, 2), g_gauss.slice(1, 2, 5), g_gauss.select(1, 5),
          g_gauss.slice(1, 6, row)};
}

// BP-Net head activations: logits (R, M) float32 contiguous -> kernels (R-1, M), a softmax over
// the rows of each column, and mask (1, M) = sigmoid(last row).
std::vector<torch::Tensor> heads_forward(torch::Tensor logits) {
  const int64_t R = logits.size(0), M = logits.size(1);
  auto kernels = torch::empty({R - 1, M}, logits.options());
  auto mask = torch::empty({1, M}, logits.options());
  const auto [fwd, bwd, lanes] = heads_kernels();
  const float* x = logits.data_ptr<float>();
  float* k = kernels.data_ptr<float>();
  float* m = mask.data_ptr<float>();
  for_column_chunks(M, lanes, [&](int64_t begin, int64_t end) {
    if ((end - begin) % lanes == 0) return fwd(x, R, M, begin, end, k, m);
    // the last columns: a zero-padded copy of whole chunks
    const int64_t w = end - begin;
    std::vector<float> xin(R * lanes, 0.f), kout((R - 1) * lanes), mout(lanes);
    for (int64_t r = 0; r < R; ++r) std::copy(x + r * M + begin, x + r * M + end, &xin[r * lanes]);
    fwd(xin.data(), R, lanes, 0, lanes, kout.data(), mout.data());
    for (int64_t r = 0; r < R - 1; ++r) std::copy(&kout[r * lanes], &kout[r * lanes] + w, k + r * M + begin);
    std::copy(mout.begin(), mout.begin() + w, m + begin);
  });
  return {kernels, mask};
}

// Gradient of heads_forward's logits from its outputs and their gradients (all contiguous).
torch::Tensor heads_backward(torch::Tensor kernels, torch::Tensor mask, torch::Tensor g_kernels,
                             torch::Tensor g_mask) {
  const int64_t R = kernels.size(0) + 1, M = kernels.size(1);
  auto g_logits = torch::empty({R, M}, kernels.options());
  const auto [fwd, bwd, lanes] = heads_kernels();
  const float *k = kernels.data_ptr<float>(), *m = mask.data_ptr<float>();
  const float *gk = g_kernels.data_ptr<float>(), *gm = g_mask.data_ptr<float>();
  float* g = g_logits.data_ptr<float>();
  for_column_chunks(M, lanes, [&](int64_t begin, int64_t end) {
    if ((end - begin) % lanes == 0) return bwd(k, m, gk, gm, R, M, begin, end, g);
    const int64_t w = end - begin;
    std::vector<float> kin((R - 1) * lanes, 0.f), gkin((R - 1) * lanes, 0.f), m_in(lanes, 0.f),
        gm_in(lanes, 0.f), gout(R * lanes);
    for (int64_t r = 0; r < R - 1; ++r) {
      std::copy(k + r * M + begin, k + r * M + end, &kin[r * lanes]);
      std::copy(gk + r * M + begin, gk + r * M + end, &gkin[r * lanes]);
    }
    std::copy(m + begin, m + end, m_in.begin());
    std::copy(gm + begin, gm + end, gm_in.begin());
    bwd(kin.data(), m_in.data(), gkin.data(), gm_in.data(), R, lanes, 0, lanes, gout.data());
    for (int64_t r = 0; r < R; ++r) std::copy(&gout[r * lanes], &gout[r * lanes] + w, g + r * M + begin);
  });
  return g_logits;
}

// The instruction set of the float32 kernels: "auto" (the best this CPU runs), "avx512", "avx2"
// or "base". Returns the one now in use; raises for a name this CPU or build cannot run.
std::string set_isa(const std::string& name) {
  if (name == "auto") {
    g_isa = best_isa();
  } else {
    int k = 0;
    while (k < 3 && name != kIsaNames[k]) ++k;
    TORCH_CHECK(k < 3, "instruction set '", name, "': expected auto, avx512, avx2 or base");
    TORCH_CHECK(isa_supported(Isa(k)), "instruction set '", name, "' is not supported here");
    g_isa = Isa(k);
  }
  return kIsaNames[int(g_isa)];
}

// Instruction sets this CPU and build can run, best first.
std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (int k = 0; k < 3; ++k)
    if (isa_supported(Isa(k))) names.push_back(kIsaNames[k]);
  return names;
}

// out[x] += a[x] * b[x], x < n: the inner loop of every per-pixel kernel pass. Float32 rows run
// the loop compiled for the selected instruction set (method_vec.h's multiply_add); without
// contraction every set rounds each element alike, so the results do not depend on it.
inline void multiply_add_row(double* __restrict__ out, const double* __restrict__ a,
                             const double* __restrict__ b, int64_t n) {
  for (int64_t x = 0; x < n; ++x) out[x] += a[x] * b[x];
}

inline void multiply_add_row(float* __restrict__ out, const float* __restrict__ a,
                             const float* __restrict__ b, int64_t n) {
  switch (g_isa) {
#ifdef BENCH_HAVE_X86_BUILDS
    case Isa::kAvx512: return avx512::multiply_add(out, a, b, n);
    case Isa::kAvx2: return avx2::multiply_add(out, a, b, n);
#endif
    default: return base::multiply_add(out, a, b, n);
  }
}

// ---- per-pixel kernel application (bench/method/kernels.py: apply_kernels) ---------------------
//
// out[b,c,y,x] = sum_k kernels[b,k,y,x] * padded[b,c,y+dy_k,x+dx_k], k = dy_k * K + dx_k, summed
// in ascending k like the PyTorch shifted-view sum. Loops run along image rows (contiguous in
// every operand, so they vectorise); rows run in parallel, and the backward pass gathers rather
// than scatters, so every output element has one writer.

template <typename scalar_t>
void blur_forward_impl(const scalar_t* pad, const scalar_t* ker, scalar_t* out, int64_t B,
                       int64_t C, int64_t H, int64_t W, int64_t K) {
  const int64_t Hp = H + K - 1, Wp = W + K - 1, KK = K * K;
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t by = begin; by < end; ++by) {
      const int64_t b = by / H, y = by % H;
      for (int64_t c = 0; c < C; ++c) {
        scalar_t* __restrict__ o = out + ((b * C + c) * H + y) * W;
        for (int64_t x = 0; x < W; ++x) o[x] = 0;
        for (int64_t k = 0; k < KK; ++k) {
          const scalar_t* __restrict__ p = pad + ((b * C + c) * Hp + y + k / K) * Wp + k % K;
          const scalar_t* __restrict__ w = ker + ((b * KK + k) * H + y) * W;
          multiply_add_row(o, p, w, W);
        }
      }
    }
  });
}

template <typename scalar_t>
void blur_backward_impl(const scalar_t* grad, const scalar_t* pad, const scalar_t* ker,
                        scalar_t* g_pad, scalar_t* g_ker, int64_t B, int64_t C, int64_t H,
                        int64_t W, int64_t K) {
  const int64_t Hp = H + K - 1, Wp = W + K - 1, KK = K * K;
  if (g_ker != nullptr)
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      for (int64_t by = begin; by < end; ++by) {
        const int64_t b = by / H, y = by % H;
        for (int64_t k = 0; k < KK; ++k) {
          scalar_t* __restrict__ gk = g_ker + ((b * KK + k) * H + y) * W;
          for (int64_t x = 0; x < W; ++x) gk[x] = 0;
          for (int64_t c = 0; c < C; ++c) {
            const scalar_t* __restrict__ g = grad + ((b * C + c) * H + y) * W;
            const scalar_t* __restrict__ p = pad + ((b * C + c) * Hp + y + k / K) * Wp + k % K;
            multiply_add_row(gk, g, p, W);
          }
        }
      }
    });
  if (g_pad != nullptr)
    at::parallel_for(0, B * Hp, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bY = begin; bY < end; ++bY) {
        const int64_t b = bY / Hp, Y = bY % Hp;
        for (int64_t c = 0; c < C; ++c) {
          scalar_t* __restrict__ gp = g_pad + ((b * C + c) * Hp + Y) * Wp;
          for (int64_t X = 0; X < Wp; ++X) gp[X] = 0;
          // padded pixel (Y, X) feeds output (Y - dy, X - dx) through tap (dy, dx)
          for (int64_t k = 0; k < KK; ++k) {
            const int64_t dy = k / K, dx = k % K, y = Y - dy;
            if (y < 0 || y >= H) continue;
            const scalar_t* __restrict__ g = grad + ((b * C + c) * H + y) * W;
            const scalar_t* __restrict__ w = ker + ((b * KK + k) * H + y) * W;
            scalar_t* __restrict__ dst = gp + dx;
            multiply_add_row(dst, g, w, W);
          }
        }
      }
    });
}

// padded (B,C,H+K-1,W+K-1), kernels (B,K*K,H,W) contiguous, one float dtype -> (B,C,H,W).
torch::Tensor blur_forward(torch::Tensor padded, torch::Tensor kernels, int64_t K) {
  const int64_t B = padded.size(0), C = padded.size(1), H = kernels.size(2), W = kernels.size(3);
  auto out = torch::empty({B, C, H, W}, padded.options());
  AT_DISPATCH_FLOATING_TYPES(padded.scalar_type(), "blur_forward", [&] {
    blur_forward_impl<scalar_t>(padded.data_ptr<scalar_t>(), kernels.data_ptr<scalar_t>(),
                                out.data_ptr<scalar_t>(), B, C, H, W, K);
  });
  return out;
}

// Gradients with respect to padded (B,C,H+K-1,W+K-1) and kernels (B,K*K,H,W); each is
// undefined when not needed.
std::vector<torch::Tensor> blur_backward(torch::Tensor grad, torch::Tensor padded,
                                         torch::Tensor kernels, int64_t K, bool need_padded,
                                         bool need_kernels) {
  const int64_t B = padded.size(0), C = padded.size(1), H = kernels.size(2), W = kernels.size(3);
  auto g_pad = need_padded ? torch::empty_like(padded) : torch::Tensor();
  auto g_ker = need_kernels ? torch::empty_like(kernels) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(padded.scalar_type(), "blur_backward", [&] {
    blur_backward_impl<scalar_t>(grad.data_ptr<scalar_t>(), padded.data_ptr<scalar_t>(),
                                 kernels.data_ptr<scalar_t>(),
                                 need_padded ? g_pad.data_ptr<scalar_t>() : nullptr,
                                 need_kernels ? g_ker.data_ptr<scalar_t>() : nullptr, B, C, H, W, K);
  });
  return {g_pad, g_ker};
}

// project_cpu.cpp
std::vector<torch::Tensor> project_forward(torch::Tensor means, torch::Tensor quats,
                                           torch::Tensor log_scales, torch::Tensor logits,
                                           torch::Tensor viewmats, torch::Tensor Ks, int64_t width,
                                           int64_t height, double near, double far, double eps2d);
std::vector<torch::Tensor> project_backward(torch::Tensor means, torch::Tensor quats,
                                            torch::Tensor log_scales, torch::Tensor logits,
                                            torch::Tensor viewmats, torch::Tensor Ks, int64_t width,
                                            int64_t height, double near, double far, double eps2d,
                                            torch::Tensor g_means2d, torch::Tensor g_conics,
                                            torch::Tensor g_depths, torch::Tensor g_opacities);
torch::Tensor sh_forward(torch::Tensor coeffs, torch::Tensor means, torch::Tensor campos, int64_t degree);
std::vector<torch::Tensor> sh_backward(torch::Tensor coeffs, torch::Tensor means, torch::Tensor campos,
                                       int64_t degree, torch::Tensor g_rgb);

// motion_cpu.cpp
std::vector<torch::Tensor> motion_forward(torch::Tensor means, torch::Tensor quats,
                                          torch::Tensor logits, torch::Tensor rot,
                                          torch::Tensor trans, torch::Tensor moving);
std::vector<torch::Tensor> motion_backward(torch::Tensor means, torch::Tensor quats,
                                           torch::Tensor logits, torch::Tensor rot,
                                           torch::Tensor trans, torch::Tensor moving,
                                           torch::Tensor g_means, torch::Tensor g_quats);

// ssim_cpu.cpp
torch::Tensor ssim_forward(torch::Tensor a, torch::Tensor b, torch::Tensor taps);
std::vector<torch::Tensor> ssim_backward(torch::Tensor a, torch::Tensor b, torch::Tensor taps,
                                         double grad, bool need_b);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ssim_forward", &ssim_forward, "mean SSIM, forward");
  m.def("ssim_backward", &ssim_backward, "mean SSIM, backward");
  m.def("motion_forward", &motion_forward, "motion-basis transform, forward");
  m.def("motion_backward", &motion_backward, "motion-basis transform, backward");
  m.def("project_forward", &project_forward, "EWA projection, forward");
  m.def("project_backward", &project_backward, "EWA projection, backward");
  m.def("sh_forward", &sh_forward, "SH colours, forward");
  m.def("sh_backward", &sh_backward, "SH colours, backward");
  m.def("plan_tiles", &plan_tiles, "depth-sorted (tile, Gaussian) pairs");
  m.def("composite_forward", &composite_forward, "tile compositing, forward");
  m.def("composite_backward", &composite_backward, "tile compositing, backward");
  m.def("blur_forward", &blur_forward, "per-pixel kernel application, forward");
  m.def("blur_backward", &blur_backward, "per-pixel kernel application, backward");
  m.def("heads_forward", &heads_forward, "BP-Net head activations, forward");
  m.def("heads_backward", &heads_backward, "BP-Net head activations, backward");
  m.def("set_isa", &set_isa, "instruction set of the float32 kernels");
  m.def("supported_isas", &supported_isas, "instruction sets this CPU runs, best first");
}
