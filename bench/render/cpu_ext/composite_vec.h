// Float32 compositing kernels for one instruction set, on vectors of kLanes pixels of a tile.
//
// Included once per instruction set by render_cpu.cpp, each time in its own namespace with
// kLanes (16 or 8), kBlock (vectors whose compositing state the forward pass keeps in registers)
// and BENCH_VEC_ISA (2 = AVX-512F, 1 = AVX2 + FMA, 0 = the compiler's baseline target) defined.
// The caller picks one set at run time. This file must not instantiate std templates: an
// instantiation made here could be shared with the baseline code and carry AVX instructions
// into it.
//
// Rules are those of the scalar kernels. A tile's pixels are laid out row-major in lanes
// (LaneTile); a Gaussian is evaluated on every vector whose pixel rectangle meets its box
// (pixels of such a vector outside the box get alpha < 1/255, as in gsplat's full-tile loop).
// sigma and alpha come from the same inline functions in the forward and backward pass, with
// explicit fused multiply-adds where the instruction set has them and no contraction anywhere
// else (-ffp-contract=off), so both passes make identical threshold and stopping decisions.
// Rounding differs between instruction sets (FMA, lane counts in reductions), never between runs
// or thread counts.

typedef float vf __attribute__((vector_size(4 * kLanes)));
typedef int32_t vi __attribute__((vector_size(4 * kLanes)));

inline vf splat(float v) { return vf{} + v; }
inline vi splat_i(int32_t v) { return vi{} + v; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }

inline vf load(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline vi load(const int32_t* p) {
  vi v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, vf v) { __builtin_memcpy(p, &v, sizeof(v)); }
inline void store(int32_t* p, vi v) { __builtin_memcpy(p, &v, sizeof(v)); }

// a * b + c, rounded once where the instruction set has FMA
inline vf fmadd(vf a, vf b, vf c) {
#if BENCH_VEC_ISA == 2
  return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif BENCH_VEC_ISA == 1
  return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

inline bool any(vi m) {
#if BENCH_VEC_ISA == 2
  return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
#elif BENCH_VEC_ISA == 1
  return _mm256_movemask_ps((__m256)m) != 0;
#else
  int32_t r = 0;
  for (int k = 0; k < kLanes; ++k) r |= m[k];
  return r != 0;
#endif
}

// Sum of the lanes as a fixed tree (halves added pairwise), the same order on every call.
inline float hsum(vf v) {
  typedef float v8 __attribute__((vector_size(32)));
  typedef float v4 __attribute__((vector_size(16)));
#if BENCH_VEC_ISA == 2
  const v8 h8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#else
  const v8 h8 = v;
#endif
  const v4 h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

// exp(x) for x in [-80, 80]: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial in r, times 2^n.
inline vf vexp(vf x) {
  x = vmax(vmin(x, splat(80.f)), splat(-80.f));
  const vf t = x * splat(1.44269504088896341f);
  const vi n = __builtin_convertvector(t + (t < splat(0.f) ? splat(-0.5f) : splat(0.5f)), vi);
  const vf nf = __builtin_convertvector(n, vf);
  // ln 2 split in a part exact in float and the rest, so r keeps its precision
  const vf r = fmadd(nf, splat(2.12194440e-4f), fmadd(nf, splat(-0.693359375f), x));
  vf p = splat(1.f / 5040.f);
  p = fmadd(p, r, splat(1.f / 720.f));
  p = fmadd(p, r, splat(1.f / 120.f));
  p = fmadd(p, r, splat(1.f / 24.f));
  p = fmadd(p, r, splat(1.f / 6.f));
  p = fmadd(p, r, splat(0.5f));
  p = fmadd(p, r, splat(1.f));
  p = fmadd(p, r, splat(1.f));
  const vi bits = (n + splat_i(127)) << 23;
  return p * (vf)bits;
}

// sigma = 0.5 (a dx^2 + c dy^2) + b dx dy at pixel centres (x, y) for the Gaussian q.
inline vf sigma_at(const Prepared& q, vf x, vf y) {
  const vf dx = x - q.mx, dy = y - q.my;
  return fmadd(fmadd(splat(q.half_a), dx, splat(q.b) * dy), dx, splat(q.half_c) * dy * dy);
}

// A tile's pixels in lanes: lane l is pixel (x0 + l % w, y0 + l / w) for l < count; the rest
// pad to whole blocks of kBlock vectors. Per vector, rect holds the inclusive pixel rectangle
// [x lo, x hi, y lo, y hi] its lanes cover.
struct LaneTile {
  int64_t cam;
  int x0, y0, w, h, count, vectors;
  float* xs;
  float* ys;
  int32_t* rect;
};

inline LaneTile lane_tile(const VecInputs& in, int64_t t, float* xs, float* ys, int32_t* rect) {
  const int64_t per_cam = int64_t(in.tiles_x) * in.tiles_y, local = t % per_cam;
  LaneTile L;
  L.cam = t / per_cam;
  L.x0 = int(local % in.tiles_x) * in.tile;
  L.y0 = int(local / in.tiles_x) * in.tile;
  L.w = (L.x0 + in.tile < in.width ? L.x0 + in.tile : in.width) - L.x0;
  L.h = (L.y0 + in.tile < in.height ? L.y0 + in.tile : in.height) - L.y0;
  L.count = L.w * L.h;
  const int per_block = kLanes * kBlock;
  L.vectors = (L.count + per_block - 1) / per_block * kBlock;
  L.xs = xs;
  L.ys = ys;
  L.rect = rect;
  for (int l = 0; l < L.vectors * kLanes; ++l) {
    const int k = l < L.count ? l : L.count - 1;  // padding lanes repeat the last pixel
    xs[l] = float(L.x0 + k % L.w) + 0.5f;
    ys[l] = float(L.y0 + k / L.w) + 0.5f;
  }
  for (int v = 0; v < L.vectors; ++v) {
    const int first = v * kLanes < L.count ? v * kLanes : L.count - 1;
    const int last = (v + 1) * kLanes - 1 < L.count ? (v + 1) * kLanes - 1 : L.count - 1;
    const bool one_row = first / L.w == last / L.w;
    rect[4 * v] = L.x0 + (one_row ? first % L.w : 0);
    rect[4 * v + 1] = L.x0 + (one_row ? last % L.w : L.w - 1);
    rect[4 * v + 2] = L.y0 + first / L.w;
    rect[4 * v + 3] = L.y0 + last / L.w;
  }
  return L;
}

// Whether the Gaussian's box meets the inclusive rectangle r.
inline bool meets(const Prepared& q, const int32_t* r) {
  return q.x0 <= r[1] && q.x1 >= r[0] && q.y0 <= r[3] && q.y1 >= r[2];
}

// Forward pass over one block of kBlock vectors, its state (T, sums, stop index) in registers.
// Writes the block's lanes of T (kBlock*kLanes), acc (CH+1 planes of `plane`) and stop.
template <int CH>
int64_t forward_block(const VecInputs& in, const int64_t* ids, int64_t n, const LaneTile& L,
                      int v0, float* T_out, float* acc_out, int32_t* stop_out, int plane) {
  vf x[kBlock], y[kBlock], T[kBlock], acc[kBlock][CH + 1];
  vi stop[kBlock];
  int32_t rect[4] = {L.rect[4 * v0], L.rect[4 * v0 + 1], L.rect[4 * v0 + 2],
                     L.rect[4 * (v0 + kBlock - 1) + 3]};  // the block's rectangle
  for (int b = 1; b < kBlock; ++b) {
    rect[0] = L.rect[4 * (v0 + b)] < rect[0] ? L.rect[4 * (v0 + b)] : rect[0];
    rect[1] = L.rect[4 * (v0 + b) + 1] > rect[1] ? L.rect[4 * (v0 + b) + 1] : rect[1];
  }
  const vi n_v = splat_i(int32_t(n));
  vi lane = splat_i(0);
  for (int k = 0; k < kLanes; ++k) lane[k] = k;
#pragma GCC unroll 4
  for (int b = 0; b < kBlock; ++b) {
    const int o = (v0 + b) * kLanes;
    x[b] = load(L.xs + o);
    y[b] = load(L.ys + o);
    T[b] = splat(1.f);
    for (int k = 0; k <= CH; ++k) acc[b][k] = splat(0.f);
    // lanes past the tile's pixels never run: their stop index is -1, never equal to n
    stop[b] = (lane + splat_i(o)) < splat_i(L.count) ? n_v : splat_i(-1);
  }
  int64_t lanes = 0;
  for (int64_t i = 0; i < n; ++i) {
    vi running = stop[0] == n_v;
#pragma GCC unroll 4
    for (int b = 1; b < kBlock; ++b) running |= stop[b] == n_v;
    if (!any(running)) break;
    const int64_t g = ids[i];
    const Prepared& q = in.pre[g];
    if (!meets(q, rect)) continue;
    const float* f = in.feats + g * CH;
    const vi i_v = splat_i(int32_t(i));
    // the block's vectors where some running pixel may reach alpha >= 1/255; if any, all of
    // them run, the others with no live lane (a skip per vector would be mispredicted often)
    vf sigma[kBlock];
    vi live[kBlock];
    int active = 0;
#pragma GCC unroll 4
    for (int b = 0; b < kBlock; ++b) {
      sigma[b] = sigma_at(q, x[b], y[b]);
      live[b] = stop[b] == n_v;
      const bool on = meets(q, L.rect + 4 * (v0 + b)) & any(live[b] & (sigma[b] <= splat(q.cutoff)));
      live[b] = on ? live[b] : splat_i(0);
      active += on;
    }
    if (active == 0) continue;
    lanes += kBlock * kLanes;
#pragma GCC unroll 4
    for (int b = 0; b < kBlock; ++b) {
      const vf alpha = vmin(splat(float(kMaxAlpha)), splat(q.o) * vexp(-sigma[b]));
      const vi run = live[b] & (alpha >= splat(float(kAlphaThreshold)));
      const vf next_t = T[b] * (splat(1.f) - alpha);
      const vi stopping = run & (next_t <= splat(float(kTEps)));
      const vi contrib = run & ~stopping;
      stop[b] = stopping ? i_v : stop[b];
      const vf w = contrib ? alpha * T[b] : splat(0.f);
      for (int k = 0; k < CH; ++k) acc[b][k] = fmadd(w, splat(f[k]), acc[b][k]);
      acc[b][CH] += w;
      T[b] = contrib ? next_t : T[b];
    }
  }
  for (int b = 0; b < kBlock; ++b) {
    const int o = (v0 + b) * kLanes;
    store(T_out + o, T[b]);
    store(stop_out + o, stop[b]);
    for (int k = 0; k <= CH; ++k) store(acc_out + k * plane + o, acc[b][k]);
  }
  return lanes;
}

// Forward pass of tile t: writes its pixels of out (C,H,W,CH+1), t_final and last; returns the
// pixel lanes that went through exp().
template <int CH>
int64_t forward_tile(const VecInputs& in, int64_t t, float* fs, int32_t* is) {
  const int cap = in.tile * in.tile + kLanes * kBlock;  // lanes of the largest tile
  LaneTile L = lane_tile(in, t, fs, fs + cap, is);
  float* T = fs + 2 * cap;
  float* acc = fs + 3 * cap;
  int32_t* stop = is + 4 * cap;
  const int64_t start = in.off[t], n = in.off[t + 1] - start;
  int64_t lanes = 0;
  for (int v = 0; v < L.vectors; v += kBlock)
    lanes += forward_block<CH>(in, in.ids + start, n, L, v, T, acc, stop, cap);
  for (int l = 0; l < L.count; ++l) {
    const int64_t px = (L.cam * in.height + L.y0 + l / L.w) * in.width + L.x0 + l % L.w;
    for (int k = 0; k <= CH; ++k) in.out[px * (CH + 1) + k] = acc[k * cap + l];
    in.t_final[px] = T[l];
    in.last[px] = stop[l];
  }
  return lanes;
}

// Backward pass of tile t: per-pair gradient rows (6 + CH) [d mean x, d mean y, d conic a, b, c,
// d opacity, d feats]. The tile's state (T, the later sum, gradients) stays in memory and each
// Gaussian's gradients in registers, summed over lanes once per pair.
template <int CH>
int64_t backward_tile(const VecInputs& in, int64_t t, float* fs, int32_t* is) {
  constexpr int CH1 = CH + 1, ROW = 6 + CH;
  const int cap = in.tile * in.tile + kLanes * kBlock;
  LaneTile L = lane_tile(in, t, fs, fs + cap, is);
  float* T = fs + 2 * cap;
  float* later = fs + 3 * cap;
  float* sig = fs + 4 * cap;
  float* gp = fs + 5 * cap;  // CH1 planes
  int32_t* stop = is + 4 * cap;
  int32_t* work = is + 5 * cap;
  int32_t max_last = 0;
  for (int l = 0; l < L.vectors * kLanes; ++l) {
    later[l] = 0.f;
    if (l >= L.count) {  // padding: finite, never live
      T[l] = 1.f;
      stop[l] = -1;
      for (int k = 0; k < CH1; ++k) gp[k * cap + l] = 0.f;
      continue;
    }
    const int64_t px = (L.cam * in.height + L.y0 + l / L.w) * in.width + L.x0 + l % L.w;
    T[l] = in.t_final[px];
    stop[l] = in.last[px];
    max_last = stop[l] > max_last ? stop[l] : max_last;
    for (int k = 0; k < CH1; ++k) gp[k * cap + l] = in.g_out[px * CH1 + k];
  }
  const int64_t start = in.off[t];
  int64_t lanes = 0;
  // back to front: T before Gaussian i is T after it / (1 - alpha_i), as in gsplat
  for (int64_t i = int64_t(max_last) - 1; i >= 0; --i) {
    const int64_t g = in.ids[start + i];
    const Prepared& q = in.pre[g];
    const float* f = in.feats + g * CH;
    const vi i_v = splat_i(int32_t(i));
    const vf o = splat(q.o), a = splat(q.half_a + q.half_a), b = splat(q.b);
    const vf c = splat(q.half_c + q.half_c);
    // the vectors where some live pixel may reach alpha >= 1/255 (as in the forward pass),
    // listed first without branches: the loop below then runs without mispredicted skips
    int count = 0;
    for (int v = 0; v < L.vectors; ++v) {
      const int p = v * kLanes;
      const vf sigma = sigma_at(q, load(L.xs + p), load(L.ys + p));
      store(sig + p, sigma);
      work[count] = v;
      count += meets(q, L.rect + 4 * v) & any((i_v < load(stop + p)) & (sigma <= splat(q.cutoff)));
    }
    if (count == 0) continue;  // the pair's row stays zero
    lanes += count * kLanes;
    vf gmx = {}, gmy = {}, ga2 = {}, gb = {}, gc2 = {}, go = {}, gf[CH] = {};
    for (int k = 0; k < count; ++k) {
      const int p = work[k] * kLanes;
      const vf xv = load(L.xs + p), yv = load(L.ys + p);
      const vf sigma = load(sig + p);
      const vi live = i_v < load(stop + p);
      const vf vis = vexp(-sigma);
      const vf raw = o * vis;
      const vf alpha = vmin(splat(float(kMaxAlpha)), raw);
      const vi valid = live & (alpha >= splat(float(kAlphaThreshold)));
      const vf inv_one_minus = splat(1.f) / (splat(1.f) - alpha);
      const vf t_old = load(T + p);
      const vf t_i = t_old * inv_one_minus;  // T before Gaussian i, as in gsplat
      store(T + p, valid ? t_i : t_old);
      const vf w = valid ? alpha * t_i : splat(0.f);
      vf fg = load(gp + CH * cap + p);  // the alpha channel composites a constant 1
      for (int k = 0; k < CH; ++k) {
        const vf gk = load(gp + k * cap + p);
        fg = fmadd(splat(f[k]), gk, fg);
        gf[k] = fmadd(w, gk, gf[k]);
      }
      const vf l = load(later + p);
      // dL/dalpha_i = T_i f_i.g - sum_{j>i} w_j f_j.g / (1 - alpha_i); clamped alpha: no slope
      const vf g_alpha = (valid & (raw < splat(float(kMaxAlpha)))) ? t_i * fg - l * inv_one_minus
                                                                   : splat(0.f);
      store(later + p, fmadd(w, fg, l));
      go = fmadd(g_alpha, vis, go);
      const vf g_sigma = g_alpha * alpha;  // dL/dsigma = -g_sigma
      const vf dx = xv - q.mx, dy = yv - q.my;
      const vf gs_dx = g_sigma * dx;
      ga2 = fmadd(gs_dx, dx, ga2);
      gb = fmadd(gs_dx, dy, gb);
      gc2 = fmadd(g_sigma * dy, dy, gc2);
      // sigma depends on the mean through dx = px - mx, dy = py - my
      gmx = fmadd(g_sigma, fmadd(a, dx, b * dy), gmx);
      gmy = fmadd(g_sigma, fmadd(b, dx, c * dy), gmy);
    }
    float* out_row = in.g_pair + (start + i) * ROW;
    out_row[0] = hsum(gmx);
    out_row[1] = hsum(gmy);
    out_row[2] = -0.5f * hsum(ga2);
    out_row[3] = -hsum(gb);
    out_row[4] = -0.5f * hsum(gc2);
    out_row[5] = hsum(go);
    for (int k = 0; k < CH; ++k) out_row[6 + k] = hsum(gf[k]);
  }
  return lanes;
}

// The kernels for CH feature channels, CH in [kMinChannels, kMaxChannels].
inline TileFn forward_for(int64_t ch) {
  switch (ch) {
    case 4: return &forward_tile<4>;
    case 5: return &forward_tile<5>;
    case 6: return &forward_tile<6>;
    case 7: return &forward_tile<7>;
    default: return &forward_tile<8>;
  }
}

inline TileFn backward_for(int64_t ch) {
  switch (ch) {
    case 4: return &backward_tile<4>;
    case 5: return &backward_tile<5>;
    case 6: return &backward_tile<6>;
    case 7: return &backward_tile<7>;
    default: return &backward_tile<8>;
  }
}
