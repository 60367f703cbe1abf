// Compiled mean SSIM (bench/method/losses.py: ssim) with a hand-written backward.
//
// Per image plane: the five local statistics (means of a and b, of a^2, b^2 and ab) filtered by the
// separable Gaussian window over "valid" positions (the window fully inside the plane), SSIM per
// position from them, and its mean. The PyTorch formulation runs two grouped convolutions and
// about twenty elementwise maps forward, and as many again backward; here each pass is one set of
// row loops over the plane (contiguous, so they vectorise). The backward pass recomputes the
// statistics, forms each position's derivative with respect to them and applies the window's
// adjoint (the transposed row and column filters). Determinism: planes run in parallel into their
// own outputs; the mean sums the planes' partial sums in order.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

namespace {

constexpr double kC1 = 0.01 * 0.01;
constexpr double kC2 = 0.03 * 0.03;

constexpr int64_t kTaps = 11;  // losses.SSIM_WINDOW: a constant trip count lets the loops unroll

// The five filtered statistics of one plane: (5, Ho, Wo) row-major in `stats`.
template <typename T>
void statistics(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ g,
                int64_t H, int64_t W, T* __restrict__ rows, T* __restrict__ stats) {
  const int64_t Ho = H - kTaps + 1, Wo = W - kTaps + 1;
  T gt[kTaps];
  for (int64_t t = 0; t < kTaps; ++t) gt[t] = g[t];
  // row pass: (5, H, Wo)
  for (int64_t y = 0; y < H; ++y) {
    const T* ar = a + y * W;
    const T* br = b + y * W;
    T* r0 = rows + y * Wo;
    T* r1 = r0 + H * Wo;
    T* r2 = r1 + H * Wo;
    T* r3 = r2 + H * Wo;
    T* r4 = r3 + H * Wo;
    for (int64_t x = 0; x < Wo; ++x) {
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
      for (int64_t t = 0; t < kTaps; ++t) {
        const T av = ar[x + t], bv = br[x + t];
        s0 += gt[t] * av;
        s1 += gt[t] * bv;
        s2 += gt[t] * (av * av);
        s3 += gt[t] * (bv * bv);
        s4 += gt[t] * (av * bv);
      }
      r0[x] = s0;
      r1[x] = s1;
      r2[x] = s2;
      r3[x] = s3;
      r4[x] = s4;
    }
  }
  // column pass: (5, Ho, Wo)
  for (int k = 0; k < 5; ++k)
    for (int64_t y = 0; y < Ho; ++y) {
      T* __restrict__ out = stats + (k * Ho + y) * Wo;
      const T* in = rows + (k * H + y) * Wo;
      for (int64_t x = 0; x < Wo; ++x) {
        T sum = 0;
        for (int64_t t = 0; t < kTaps; ++t) sum += gt[t] * in[t * Wo + x];
        out[x] = sum;
      }
    }
}

// One plane's scratch: the row pass (5, H, Wo) and the statistics (5, Ho, Wo).
template <typename T>
struct Scratch {
  std::vector<T> rows, stats;
  Scratch(int64_t H, int64_t W) : rows(5 * H * (W - kTaps + 1)), stats(5 * (H - kTaps + 1) * (W - kTaps + 1)) {}
};

}  // namespace

// a, b (P, H, W) contiguous planes, one float dtype; taps (K,) the normalised 1D window. Returns
// the mean SSIM over every plane's valid positions as a 0-d tensor.
torch::Tensor ssim_forward(torch::Tensor a, torch::Tensor b, torch::Tensor taps) {
  const int64_t P = a.size(0), H = a.size(1), W = a.size(2), K = taps.size(0);
  TORCH_CHECK(K == kTaps && H >= K && W >= K, "ssim_forward: an ", kTaps, "-tap window on planes at least that large");
  const int64_t Ho = H - K + 1, Wo = W - K + 1;
  std::vector<double> sums(P, 0.0);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "ssim_forward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    const scalar_t* g = taps.data_ptr<scalar_t>();
    const scalar_t c1 = scalar_t(kC1), c2 = scalar_t(kC2);
    at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s(H, W);
      for (int64_t p = begin; p < end; ++p) {
        statistics(ap + p * H * W, bp + p * H * W, g, H, W, s.rows.data(), s.stats.data());
        const int64_t n = Ho * Wo;
        const scalar_t *mu_a = s.stats.data(), *mu_b = mu_a + n, *aa = mu_b + n, *bb = aa + n, *ab = bb + n;
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) {
          const scalar_t num = (2 * mu_a[i] * mu_b[i] + c1) * (2 * (ab[i] - mu_a[i] * mu_b[i]) + c2);
          const scalar_t den = (mu_a[i] * mu_a[i] + mu_b[i] * mu_b[i] + c1) *
                               ((aa[i] - mu_a[i] * mu_a[i]) + (bb[i] - mu_b[i] * mu_b[i]) + c2);
          sum += double(num / den);
        }
        sums[p] = sum;
      }
    });
  });
  double total = 0;
  for (double v : sums) total += v;
  return torch::tensor(total / double(P * Ho * Wo), a.options());
}

// Gradients of ssim_forward for upstream grad (0-d): d a, and d b where need_b (else undefined).
std::vector<torch::Tensor> ssim_backward(torch::Tensor a, torch::Tensor b, torch::Tensor taps,
                                         double grad, bool need_b) {
  const int64_t P = a.size(0), H = a.size(1), W = a.size(2), K = taps.size(0);
  TORCH_CHECK(K == kTaps && H >= K && W >= K, "ssim_backward: an ", kTaps, "-tap window on planes at least that large");
  const int64_t Ho = H - K + 1, Wo = W - K + 1, n = Ho * Wo;
  auto da = torch::empty_like(a);
  auto db = need_b ? torch::empty_like(b) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "ssim_backward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    const scalar_t* g = taps.data_ptr<scalar_t>();
    const scalar_t c1 = scalar_t(kC1), c2 = scalar_t(kC2), scale = scalar_t(grad / double(P * n));
    at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> s(H, W);
      // Each statistic's derivative map (Ho, Wo) with K-1 zero rows above and below, so that the
      // column adjoint is an 11-tap filter everywhere; then that adjoint (H, Wo); then one row of
      // it with K-1 zeros either side for the row adjoint.
      const int64_t Hp = Ho + 2 * (kTaps - 1), Wp = Wo + 2 * (kTaps - 1);
      std::vector<scalar_t> dpad(5 * Hp * Wo, scalar_t(0)), cols(5 * H * Wo), rowpad(Wp, scalar_t(0));
      std::vector<scalar_t> adj(5 * W);
      scalar_t gt[kTaps];
      for (int64_t t = 0; t < kTaps; ++t) gt[t] = g[t];
      for (int64_t p = begin; p < end; ++p) {
        const scalar_t* pa = ap + p * H * W;
        const scalar_t* pb = bp + p * H * W;
        statistics(pa, pb, g, H, W, s.rows.data(), s.stats.data());
        const scalar_t *mu_a = s.stats.data(), *mu_b = mu_a + n, *aa = mu_b + n, *bb = aa + n, *ab = bb + n;
        scalar_t* d[5];
        for (int k = 0; k < 5; ++k) d[k] = dpad.data() + (k * Hp + kTaps - 1) * Wo;
        for (int64_t i = 0; i < n; ++i) {
          const scalar_t A1 = 2 * mu_a[i] * mu_b[i] + c1, A2 = 2 * (ab[i] - mu_a[i] * mu_b[i]) + c2;
          const scalar_t B1 = mu_a[i] * mu_a[i] + mu_b[i] * mu_b[i] + c1;
          const scalar_t B2 = (aa[i] - mu_a[i] * mu_a[i]) + (bb[i] - mu_b[i] * mu_b[i]) + c2;
          const scalar_t den = B1 * B2, ssim = A1 * A2 / den;
          const scalar_t spread = ssim * (1 / B1 - 1 / B2);
          d[0][i] = scale * (2 * mu_b[i] * (A2 - A1) / den - 2 * mu_a[i] * spread);
          d[1][i] = scale * (2 * mu_a[i] * (A2 - A1) / den - 2 * mu_b[i] * spread);
          d[2][i] = d[3][i] = -scale * ssim / B2;
          d[4][i] = scale * 2 * A1 / den;
        }
        // adjoint of the column pass: cols[k][y] = sum_t g[t] d[k][y - t]
        for (int k = 0; k < 5; ++k)
          for (int64_t y = 0; y < H; ++y) {
            scalar_t* __restrict__ out = cols.data() + (k * H + y) * Wo;
            const scalar_t* in = dpad.data() + (k * Hp + y + kTaps - 1) * Wo;
            for (int64_t x = 0; x < Wo; ++x) {
              scalar_t sum = 0;
              for (int64_t t = 0; t < kTaps; ++t) sum += gt[t] * in[x - t * Wo];
              out[x] = sum;
            }
          }
        // adjoint of the row pass, then of the statistics' maps (a, b, a^2, b^2, ab)
        scalar_t* pda = da.data_ptr<scalar_t>() + p * H * W;
        scalar_t* pdb = need_b ? db.data_ptr<scalar_t>() + p * H * W : nullptr;
        for (int64_t y = 0; y < H; ++y) {
          for (int k = 0; k < 5; ++k) {
            const scalar_t* in = cols.data() + (k * H + y) * Wo;
            for (int64_t x = 0; x < Wo; ++x) rowpad[kTaps - 1 + x] = in[x];
            scalar_t* __restrict__ out = adj.data() + k * W;
            const scalar_t* padded = rowpad.data() + kTaps - 1;
            for (int64_t x = 0; x < W; ++x) {
              scalar_t sum = 0;
              for (int64_t t = 0; t < kTaps; ++t) sum += gt[t] * padded[x - t];
              out[x] = sum;
            }
          }
          const scalar_t *ra = pa + y * W, *rb = pb + y * W;
          for (int64_t x = 0; x < W; ++x) {
            pda[y * W + x] = adj[x] + 2 * ra[x] * adj[2 * W + x] + rb[x] * adj[4 * W + x];
            if (need_b) pdb[y * W + x] = adj[W + x] + 2 * rb[x] * adj[3 * W + x] + ra[x] * adj[4 * W + x];
          }
        }
      }
    });
  });
  return {da, db};
}
