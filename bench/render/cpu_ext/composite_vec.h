// Float32 compositing kernels on 8-pixel chunks of tile rows (GCC vector extensions).
//
// Included twice by render_cpu.cpp, once compiled for AVX2 and once for baseline x86-64 (or any
// other target), each in its own namespace; the caller picks one at run time. This file must not
// instantiate std templates: an instantiation made here could be shared with the baseline code
// and carry AVX2 instructions into it.
//
// Same rules as the scalar kernels, evaluated on whole chunks of the rows the Gaussian's box
// covers (pixels of a chunk outside the box get alpha < 1/255, as in gsplat's full-tile loop).
// exp() is a range-reduced polynomial accurate to about 2 ulp, the same code in the forward and
// backward pass, so both make identical threshold and stopping decisions. Without FMA
// contraction the AVX2 and baseline builds give the same bits.

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

inline vf8 splat(float v) { return vf8{} + v; }
inline vi8 splat_i(int32_t v) { return vi8{} + v; }
inline vf8 vmin(vf8 a, vf8 b) { return a < b ? a : b; }

inline vf8 load(const float* p) {
  vf8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline vi8 load(const int32_t* p) {
  vi8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, vf8 v) { __builtin_memcpy(p, &v, sizeof(v)); }
inline void store(int32_t* p, vi8 v) { __builtin_memcpy(p, &v, sizeof(v)); }

inline bool any(vi8 m) {
#ifdef BENCH_VEC_AVX2
  return __builtin_ia32_movmskps256((vf8)m) != 0;  // one instruction instead of a store and loads
#else
  uint64_t w[4];
  __builtin_memcpy(w, &m, sizeof(w));
  return (w[0] | w[1] | w[2] | w[3]) != 0;
#endif
}

inline float hsum(vf8 v) {  // fixed lane order
  float s = 0.f;
  for (int k = 0; k < kLanes; ++k) s += v[k];
  return s;
}

// exp(x) for x in [-80, 80]: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial in r, times 2^n.
inline vf8 vexp(vf8 x) {
  x = x < splat(-80.f) ? splat(-80.f) : x;
  x = x > splat(80.f) ? splat(80.f) : x;
  const vf8 t = x * splat(1.44269504088896341f);
  const vi8 n = __builtin_convertvector(t + (t < splat(0.f) ? splat(-0.5f) : splat(0.5f)), vi8);
  const vf8 nf = __builtin_convertvector(n, vf8);
  // ln 2 split in a part exact in float and the rest, so r keeps its precision
  const vf8 r = (x - nf * splat(0.693359375f)) + nf * splat(2.12194440e-4f);
  vf8 p = splat(1.f / 5040.f);
  p = p * r + splat(1.f / 720.f);
  p = p * r + splat(1.f / 120.f);
  p = p * r + splat(1.f / 24.f);
  p = p * r + splat(1.f / 6.f);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.f);
  p = p * r + splat(1.f);
  const vi8 bits = (n + splat_i(127)) << 23;
  return p * (vf8)bits;
}

// Rows [y0, y1) and chunks [j0, j1) of the tile that the Gaussian's box touches.
inline bool box_chunks(const Gaussians<float>& G, int64_t g, const TileGeom& tg, int& y0, int& y1,
                       int& j0, int& j1) {
  int bx0, bx1;
  if (!clip_box(G, g, tg, bx0, bx1, y0, y1)) return false;
  j0 = (bx0 - tg.x0) / kLanes;
  j1 = (bx1 - 1 - tg.x0) / kLanes + 1;
  return true;
}

void forward_tile_vec(const Gaussians<float>& G, const int64_t* ids, int64_t n, const TileGeom& tg,
                      const VecTile& vt, float* T, float* acc, int32_t* stop) {
  const int64_t ch = G.ch, ch1 = ch + 1;
  const int plane = vt.rows * vt.stride;
  for (int y = 0; y < vt.rows; ++y)
    for (int l = 0; l < vt.stride; ++l) {
      const int p = y * vt.stride + l;
      T[p] = 1.f;
      // lanes outside the image never run: their stop index is -1, never equal to n
      stop[p] = (vt.active[l] && tg.y0 + y < tg.y1) ? int32_t(n) : -1;
    }
  for (int k = 0; k < plane * ch1; ++k) acc[k] = 0.f;
  const vi8 n_v = splat_i(int32_t(n));
  for (int64_t i = 0; i < n; ++i) {
    if ((i & 7) == 0) {  // every few Gaussians: stop when every pixel of the tile has stopped
      bool any = false;
      for (int p = 0; p < plane && !any; ++p) any = stop[p] == n;
      if (!any) break;
    }
    const int64_t g = ids[i];
    int y0, y1, j0, j1;
    if (!box_chunks(G, g, tg, y0, y1, j0, j1)) continue;
    const float mx = G.means[2 * g], my = G.means[2 * g + 1];
    const float a = G.conics[3 * g], b = G.conics[3 * g + 1], c = G.conics[3 * g + 2];
    const vf8 o = splat(G.opac[g]), half_a = splat(0.5f * a);
    const vf8 cutoff = splat(sigma_cutoff(G.opac[g]));
    const float* f = G.feats + g * ch;
    const vi8 i_v = splat_i(int32_t(i));
    for (int y = y0; y < y1; ++y) {
      const float dy = float(y) + 0.5f - my;
      const vf8 b_dy = splat(b * dy), c_term = splat(0.5f * c * dy * dy);
      for (int j = j0; j < j1; ++j) {
        const int p = (y - tg.y0) * vt.stride + j * kLanes;
        const vf8 dx = load(vt.xs + j * kLanes) - mx;
        const vf8 sigma = (half_a * dx + b_dy) * dx + c_term;
        const vi8 s = load(stop + p);
        // no running pixel of the chunk can reach alpha >= 1/255: skip exp and the update
        if (!any((s == n_v) & (sigma <= cutoff))) continue;
        const vf8 alpha = vmin(splat(0.999f), o * vexp(-sigma));
        const vf8 t = load(T + p);
        const vi8 run = (s == n_v) & (alpha >= splat(float(kAlphaThreshold)));
        const vf8 next_t = t * (splat(1.f) - alpha);
        const vi8 stopping = run & (next_t <= splat(float(kTEps)));
        const vi8 contrib = run & ~stopping;
        store(stop + p, stopping ? i_v : s);
        const vf8 w = contrib ? alpha * t : splat(0.f);
        for (int64_t k = 0; k < ch; ++k) store(acc + k * plane + p, load(acc + k * plane + p) + w * f[k]);
        store(acc + ch * plane + p, load(acc + ch * plane + p) + w);
        store(T + p, contrib ? next_t : t);
      }
    }
  }
}

void backward_tile_vec(const Gaussians<float>& G, const int64_t* ids, const TileGeom& tg,
                       const VecTile& vt, float* T, float* later, const float* gp, const int32_t* stop,
                       int32_t max_last, float* g_rows) {
  const int64_t ch = G.ch, row = 6 + ch;
  const int plane = vt.rows * vt.stride;
  for (int64_t i = int64_t(max_last) - 1; i >= 0; --i) {
    const int64_t g = ids[i];
    int y0, y1, j0, j1;
    if (!box_chunks(G, g, tg, y0, y1, j0, j1)) continue;
    const float mx = G.means[2 * g], my = G.means[2 * g + 1];
    const float a = G.conics[3 * g], b = G.conics[3 * g + 1], c = G.conics[3 * g + 2];
    const vf8 o = splat(G.opac[g]), half_a = splat(0.5f * a), av = splat(a), bv = splat(b);
    const vf8 cutoff = splat(sigma_cutoff(G.opac[g]));
    const float* f = G.feats + g * ch;
    const vi8 i_v = splat_i(int32_t(i));
    vf8 gmx = {}, gmy = {}, ga = {}, gb = {}, gc = {}, go = {}, gf[kMaxChannels] = {};
    for (int y = y0; y < y1; ++y) {
      const float dy = float(y) + 0.5f - my;
      const vf8 dyv = splat(dy), b_dy = splat(b * dy), c_dy = splat(c * dy);
      const vf8 c_term = splat(0.5f * c * dy * dy), half_dy2 = splat(0.5f * dy * dy);
      for (int j = j0; j < j1; ++j) {
        const int p = (y - tg.y0) * vt.stride + j * kLanes;
        const vf8 dx = load(vt.xs + j * kLanes) - mx;
        const vf8 sigma = (half_a * dx + b_dy) * dx + c_term;
        const vi8 live = i_v < load(stop + p);
        if (!any(live & (sigma <= cutoff))) continue;  // as in the forward pass: nothing reached
        const vf8 vis = vexp(-sigma);
        const vf8 raw = o * vis;
        const vf8 alpha = vmin(splat(0.999f), raw);
        const vi8 valid = live & (alpha >= splat(float(kAlphaThreshold)));
        const vf8 inv_one_minus = splat(1.f) / (splat(1.f) - alpha);
        const vf8 t_i = load(T + p) * inv_one_minus;  // T before Gaussian i, as in gsplat
        store(T + p, valid ? t_i : load(T + p));
        const vf8 w = valid ? alpha * t_i : splat(0.f);
        vf8 fg = load(gp + ch * plane + p);  // the alpha channel composites a constant 1
        for (int64_t k = 0; k < ch; ++k) {
          const vf8 gk = load(gp + k * plane + p);
          fg += f[k] * gk;
          gf[k] += w * gk;
        }
        const vf8 l = load(later + p);
        // dL/dalpha_i = T_i f_i.g - sum_{j>i} w_j f_j.g / (1 - alpha_i); clamped alpha: no slope
        const vf8 g_alpha = (valid & (raw < splat(0.999f))) ? t_i * fg - l * inv_one_minus : splat(0.f);
        store(later + p, l + w * fg);
        go += g_alpha * vis;
        const vf8 g_sigma = -(g_alpha * alpha);
        ga += g_sigma * splat(0.5f) * dx * dx;
        gb += g_sigma * dx * dyv;
        gc += g_sigma * half_dy2;
        gmx -= g_sigma * (av * dx + b_dy);
        gmy -= g_sigma * (bv * dx + c_dy);
      }
    }
    float* out_row = g_rows + i * row;
    out_row[0] = hsum(gmx);
    out_row[1] = hsum(gmy);
    out_row[2] = hsum(ga);
    out_row[3] = hsum(gb);
    out_row[4] = hsum(gc);
    out_row[5] = hsum(go);
    for (int64_t k = 0; k < ch; ++k) out_row[6 + k] = hsum(gf[k]);
  }
}

