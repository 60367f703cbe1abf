// Compiled motion-basis transform of dynamic Gaussians (bench/method/motion.py: MotionBases.apply),
// forward and hand-written backward.
//
// Per Gaussian: w = softmax(coefficient logits) over the B bases; its 6D rotation d6 = w @ rot
// and translation t = w @ trans; R = Gram-Schmidt(d6) (columns b1, b2, b1 x b2, as
// bench.method.geometry.rot6d_to_matrix with F.normalize's eps); mean_t = R mean + t;
// quat_t = quat(R) * quat, quat(R) by the largest-diagonal branch with w >= 0
// (geometry.matrix_to_quat). The PyTorch formulation runs about sixty small tensor operations
// forward and a hundred backward; here one pass per Gaussian does each. Determinism: per-Gaussian
// outputs have one writer; the bases' gradients are summed over fixed chunks of Gaussians, then
// over the chunks in order, whatever the thread count.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr double kNormEps = 1e-12;  // F.normalize's eps
constexpr double kSqFloor = 1e-12;  // matrix_to_quat's clamp of 4 q_i^2
constexpr int64_t kChunk = 256;     // Gaussians per partial sum of the bases' gradients

template <typename T>
T dot3(const T* a, const T* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// Intermediate values of one Gaussian's transform, recomputed by the backward pass.
template <typename T>
struct Motion {
  T w[64];                 // softmax weights (B <= 64)
  T d6[6], t[3];
  T n1, b1[3], s, p[3], n2, b2[3], b3[3];
  T R[9];                  // row-major, columns b1, b2, b3
  T sq[4], r;              // 4 q_i^2 (clamped) and 2|q_k| of the chosen branch k
  int k;                   // chosen branch
  T v[4], q_raw[4], nq, q[4];  // branch numerator, q_raw = v / (2 r), its norm, unit q
  bool flip;               // q was negated for w >= 0
};

template <typename T>
void transform(const T* logit, const T* rot, const T* trans, int64_t B, Motion<T>& m) {
  T top = logit[0];
  for (int64_t b = 1; b < B; ++b) top = std::max(top, logit[b]);
  T sum = 0;
  for (int64_t b = 0; b < B; ++b) sum += (m.w[b] = std::exp(logit[b] - top));
  for (int64_t b = 0; b < B; ++b) m.w[b] /= sum;
  for (int i = 0; i < 6; ++i) m.d6[i] = 0;
  for (int i = 0; i < 3; ++i) m.t[i] = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int i = 0; i < 6; ++i) m.d6[i] += m.w[b] * rot[6 * b + i];
    for (int i = 0; i < 3; ++i) m.t[i] += m.w[b] * trans[3 * b + i];
  }
  const T* a1 = m.d6;
  const T* a2 = m.d6 + 3;
  m.n1 = std::sqrt(dot3(a1, a1));
  for (int i = 0; i < 3; ++i) m.b1[i] = a1[i] / std::max(m.n1, T(kNormEps));
  m.s = dot3(m.b1, a2);
  for (int i = 0; i < 3; ++i) m.p[i] = a2[i] - m.s * m.b1[i];
  m.n2 = std::sqrt(dot3(m.p, m.p));
  for (int i = 0; i < 3; ++i) m.b2[i] = m.p[i] / std::max(m.n2, T(kNormEps));
  m.b3[0] = m.b1[1] * m.b2[2] - m.b1[2] * m.b2[1];
  m.b3[1] = m.b1[2] * m.b2[0] - m.b1[0] * m.b2[2];
  m.b3[2] = m.b1[0] * m.b2[1] - m.b1[1] * m.b2[0];
  for (int i = 0; i < 3; ++i) {
    m.R[3 * i] = m.b1[i];
    m.R[3 * i + 1] = m.b2[i];
    m.R[3 * i + 2] = m.b3[i];
  }
  const T* R = m.R;
  const T raw_sq[4] = {1 + R[0] + R[4] + R[8], 1 + R[0] - R[4] - R[8], 1 - R[0] + R[4] - R[8],
                       1 - R[0] - R[4] + R[8]};
  m.k = 0;
  for (int j = 0; j < 4; ++j) {
    m.sq[j] = std::max(raw_sq[j], T(kSqFloor));
    if (m.sq[j] > m.sq[m.k]) m.k = j;  // first maximum, as argmax
  }
  m.r = std::sqrt(m.sq[m.k]);
  const T d21 = R[7] - R[5], d02 = R[2] - R[6], d10 = R[3] - R[1];
  const T s01 = R[1] + R[3], s02 = R[2] + R[6], s12 = R[5] + R[7];
  const T rr = m.r * m.r;
  const T cand[4][4] = {{rr, d21, d02, d10}, {d21, rr, s01, s02}, {d02, s01, rr, s12}, {d10, s02, s12, rr}};
  for (int j = 0; j < 4; ++j) {
    m.v[j] = cand[m.k][j];
    m.q_raw[j] = m.v[j] / (2 * m.r);
  }
  m.nq = std::sqrt(m.q_raw[0] * m.q_raw[0] + m.q_raw[1] * m.q_raw[1] + m.q_raw[2] * m.q_raw[2] +
                   m.q_raw[3] * m.q_raw[3]);
  for (int j = 0; j < 4; ++j) m.q[j] = m.q_raw[j] / std::max(m.nq, T(kNormEps));
  m.flip = m.q[0] < 0;
  if (m.flip)
    for (int j = 0; j < 4; ++j) m.q[j] = -m.q[j];
}

// c = a * b (Hamilton, wxyz)
template <typename T>
void quat_mul(const T* a, const T* b, T* c) {
  c[0] = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
  c[1] = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2];
  c[2] = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1];
  c[3] = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0];
}

// Gradient of x / max(|x|, eps) (x of length n with norm `norm`, y the result) for upstream dy.
template <typename T>
void normalize_backward(const T* y, T norm, const T* dy, int n, T* dx) {
  if (norm > T(kNormEps)) {
    T along = 0;
    for (int i = 0; i < n; ++i) along += y[i] * dy[i];
    for (int i = 0; i < n; ++i) dx[i] = (dy[i] - y[i] * along) / norm;
  } else {
    for (int i = 0; i < n; ++i) dx[i] = dy[i] / T(kNormEps);
  }
}

// Gradient of quat(R) (matrix_to_quat) for upstream dq, added to dR (row-major 3x3).
template <typename T>
void matrix_to_quat_backward(const Motion<T>& m, const T* dq_in, T* dR) {
  T dq[4], dq_raw[4], dv[4];
  for (int j = 0; j < 4; ++j) dq[j] = m.flip ? -dq_in[j] : dq_in[j];
  T q_unflipped[4];
  for (int j = 0; j < 4; ++j) q_unflipped[j] = m.flip ? -m.q[j] : m.q[j];
  normalize_backward(q_unflipped, m.nq, dq, 4, dq_raw);
  // q_raw = v / (2 r), v[k] = r^2
  T dr = 0;
  for (int j = 0; j < 4; ++j) {
    dv[j] = dq_raw[j] / (2 * m.r);
    dr -= dq_raw[j] * m.v[j] / (2 * m.r * m.r);
  }
  dr += 2 * m.r * dv[m.k];
  // r = sqrt(sq_k); the clamp passes no gradient where it bit
  const T* R = m.R;
  const T raw = m.k == 0 ? 1 + R[0] + R[4] + R[8] : m.k == 1 ? 1 + R[0] - R[4] - R[8]
              : m.k == 2 ? 1 - R[0] + R[4] - R[8] : 1 - R[0] - R[4] + R[8];
  const T dsq = raw > T(kSqFloor) ? dr / (2 * m.r) : T(0);
  const T sign[4][3] = {{1, 1, 1}, {1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}};
  dR[0] += sign[m.k][0] * dsq;
  dR[4] += sign[m.k][1] * dsq;
  dR[8] += sign[m.k][2] * dsq;
  // the off-diagonal entries of v: d21 = R21 - R12, d02 = R02 - R20, d10 = R10 - R01,
  // s01 = R01 + R10, s02 = R02 + R20, s12 = R12 + R21, placed per branch
  T dd21 = 0, dd02 = 0, dd10 = 0, ds01 = 0, ds02 = 0, ds12 = 0;
  switch (m.k) {
    case 0: dd21 = dv[1]; dd02 = dv[2]; dd10 = dv[3]; break;
    case 1: dd21 = dv[0]; ds01 = dv[2]; ds02 = dv[3]; break;
    case 2: dd02 = dv[0]; ds01 = dv[1]; ds12 = dv[3]; break;
    default: dd10 = dv[0]; ds02 = dv[1]; ds12 = dv[2]; break;
  }
  dR[7] += dd21 + ds12;
  dR[5] += -dd21 + ds12;
  dR[2] += dd02 + ds02;
  dR[6] += -dd02 + ds02;
  dR[3] += dd10 + ds01;
  dR[1] += -dd10 + ds01;
}

template <typename T>
void forward_impl(const T* means, const T* quats, const T* logits, const T* rot, const T* trans,
                  const bool* moving, int64_t N, int64_t B, T* means_t, T* quats_t) {
  at::parallel_for(0, N, 128, [&](int64_t begin, int64_t end) {
    Motion<T> m;
    for (int64_t n = begin; n < end; ++n) {
      if (!moving[n]) {  // a static Gaussian stays where it is
        std::copy(means + 3 * n, means + 3 * n + 3, means_t + 3 * n);
        std::copy(quats + 4 * n, quats + 4 * n + 4, quats_t + 4 * n);
        continue;
      }
      transform(logits + B * n, rot, trans, B, m);
      const T* x = means + 3 * n;
      for (int i = 0; i < 3; ++i)
        means_t[3 * n + i] = m.R[3 * i] * x[0] + m.R[3 * i + 1] * x[1] + m.R[3 * i + 2] * x[2] + m.t[i];
      quat_mul(m.q, quats + 4 * n, quats_t + 4 * n);
    }
  });
}

template <typename T>
void backward_impl(const T* means, const T* quats, const T* logits, const T* rot, const T* trans,
                   const bool* moving, int64_t N, int64_t B, const T* g_means, const T* g_quats,
                   T* d_means, T* d_quats, T* d_logits, T* d_rot, T* d_trans) {
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  std::vector<T> partial(chunks * B * 9, T(0));  // per chunk: d rot (B,6), d trans (B,3)
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    Motion<T> m;
    T dw[64];
    for (int64_t c = c0; c < c1; ++c) {
      T* pr = partial.data() + c * B * 9;
      for (int64_t n = c * kChunk; n < std::min(N, (c + 1) * kChunk); ++n) {
        if (!moving[n]) {  // identity: the gradient passes through, the coefficients get none
          std::copy(g_means + 3 * n, g_means + 3 * n + 3, d_means + 3 * n);
          std::copy(g_quats + 4 * n, g_quats + 4 * n + 4, d_quats + 4 * n);
          std::fill(d_logits + B * n, d_logits + B * n + B, T(0));
          continue;
        }
        transform(logits + B * n, rot, trans, B, m);
        const T* x = means + 3 * n;
        const T* q = quats + 4 * n;
        const T* gm = g_means + 3 * n;
        const T* gq = g_quats + 4 * n;
        // mean_t = R x + t
        T dR[9];
        for (int i = 0; i < 3; ++i) {
          d_means[3 * n + i] = m.R[i] * gm[0] + m.R[3 + i] * gm[1] + m.R[6 + i] * gm[2];
          for (int j = 0; j < 3; ++j) dR[3 * i + j] = gm[i] * x[j];
        }
        // quat_t = qR * q
        const T* a = m.q;
        T da[4];
        da[0] = gq[0] * q[0] + gq[1] * q[1] + gq[2] * q[2] + gq[3] * q[3];
        da[1] = -gq[0] * q[1] + gq[1] * q[0] - gq[2] * q[3] + gq[3] * q[2];
        da[2] = -gq[0] * q[2] + gq[1] * q[3] + gq[2] * q[0] - gq[3] * q[1];
        da[3] = -gq[0] * q[3] - gq[1] * q[2] + gq[2] * q[1] + gq[3] * q[0];
        d_quats[4 * n] = gq[0] * a[0] + gq[1] * a[1] + gq[2] * a[2] + gq[3] * a[3];
        d_quats[4 * n + 1] = -gq[0] * a[1] + gq[1] * a[0] + gq[2] * a[3] - gq[3] * a[2];
        d_quats[4 * n + 2] = -gq[0] * a[2] - gq[1] * a[3] + gq[2] * a[0] + gq[3] * a[1];
        d_quats[4 * n + 3] = -gq[0] * a[3] + gq[1] * a[2] - gq[2] * a[1] + gq[3] * a[0];
        matrix_to_quat_backward(m, da, dR);
        // Gram-Schmidt: R = [b1 b2 b3], b3 = b1 x b2
        T db1[3], db2[3], db3[3];
        for (int i = 0; i < 3; ++i) {
          db1[i] = dR[3 * i];
          db2[i] = dR[3 * i + 1];
          db3[i] = dR[3 * i + 2];
        }
        db1[0] += m.b2[1] * db3[2] - m.b2[2] * db3[1];
        db1[1] += m.b2[2] * db3[0] - m.b2[0] * db3[2];
        db1[2] += m.b2[0] * db3[1] - m.b2[1] * db3[0];
        db2[0] += db3[1] * m.b1[2] - db3[2] * m.b1[1];
        db2[1] += db3[2] * m.b1[0] - db3[0] * m.b1[2];
        db2[2] += db3[0] * m.b1[1] - db3[1] * m.b1[0];
        T dp[3], da1[3], dd6[6];
        normalize_backward(m.b2, m.n2, db2, 3, dp);
        // p = a2 - s b1, s = b1 . a2
        const T* a2 = m.d6 + 3;
        const T ds = -dot3(dp, m.b1);
        for (int i = 0; i < 3; ++i) {
          dd6[3 + i] = dp[i] + ds * m.b1[i];
          db1[i] += -m.s * dp[i] + ds * a2[i];
        }
        normalize_backward(m.b1, m.n1, db1, 3, da1);
        for (int i = 0; i < 3; ++i) dd6[i] = da1[i];
        // d6 = w @ rot, t = w @ trans; softmax
        T mean_dw = 0;
        for (int64_t b = 0; b < B; ++b) {
          dw[b] = 0;
          for (int i = 0; i < 6; ++i) {
            dw[b] += rot[6 * b + i] * dd6[i];
            pr[9 * b + i] += m.w[b] * dd6[i];
          }
          for (int i = 0; i < 3; ++i) {
            dw[b] += trans[3 * b + i] * gm[i];
            pr[9 * b + 6 + i] += m.w[b] * gm[i];
          }
          mean_dw += m.w[b] * dw[b];
        }
        for (int64_t b = 0; b < B; ++b) d_logits[B * n + b] = m.w[b] * (dw[b] - mean_dw);
      }
    }
  });
  for (int64_t b = 0; b < B; ++b) {
    for (int i = 0; i < 6; ++i) d_rot[6 * b + i] = 0;
    for (int i = 0; i < 3; ++i) d_trans[3 * b + i] = 0;
  }
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t b = 0; b < B; ++b) {
      const T* pr = partial.data() + (c * B + b) * 9;
      for (int i = 0; i < 6; ++i) d_rot[6 * b + i] += pr[i];
      for (int i = 0; i < 3; ++i) d_trans[3 * b + i] += pr[6 + i];
    }
}

}  // namespace

// means (N,3), quats (N,4), coefficient logits (N,B), bases at the frame rot (B,6) and trans
// (B,3), contiguous, one float dtype, B <= 64; moving (N,) bool, the rows to move (the others are
// copied). Returns means_t (N,3), quats_t (N,4).
std::vector<torch::Tensor> motion_forward(torch::Tensor means, torch::Tensor quats,
                                          torch::Tensor logits, torch::Tensor rot,
                                          torch::Tensor trans, torch::Tensor moving) {
  const int64_t N = means.size(0), B = rot.size(0);
  TORCH_CHECK(B <= 64, "motion_forward: at most 64 motion bases, got ", B);
  auto means_t = torch::empty_like(means), quats_t = torch::empty_like(quats);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "motion_forward", [&] {
    forward_impl<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(),
                           logits.data_ptr<scalar_t>(), rot.data_ptr<scalar_t>(),
                           trans.data_ptr<scalar_t>(), moving.data_ptr<bool>(), N, B,
                           means_t.data_ptr<scalar_t>(),
                           quats_t.data_ptr<scalar_t>());
  });
  return {means_t, quats_t};
}

// Gradients of motion_forward for upstream g_means (N,3), g_quats (N,4): d means, d quats,
// d logits, d rot (B,6), d trans (B,3).
std::vector<torch::Tensor> motion_backward(torch::Tensor means, torch::Tensor quats,
                                           torch::Tensor logits, torch::Tensor rot,
                                           torch::Tensor trans, torch::Tensor moving,
                                           torch::Tensor g_means, torch::Tensor g_quats) {
  const int64_t N = means.size(0), B = rot.size(0);
  auto d_means = torch::empty_like(means), d_quats = torch::empty_like(quats);
  auto d_logits = torch::empty_like(logits), d_rot = torch::empty_like(rot);
  auto d_trans = torch::empty_like(trans);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "motion_backward", [&] {
    backward_impl<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(),
                            logits.data_ptr<scalar_t>(), rot.data_ptr<scalar_t>(),
                            trans.data_ptr<scalar_t>(), moving.data_ptr<bool>(), N, B,
                            g_means.data_ptr<scalar_t>(),
                            g_quats.data_ptr<scalar_t>(), d_means.data_ptr<scalar_t>(),
                            d_quats.data_ptr<scalar_t>(), d_logits.data_ptr<scalar_t>(),
                            d_rot.data_ptr<scalar_t>(), d_trans.data_ptr<scalar_t>());
  });
  return {d_means, d_quats, d_logits, d_rot, d_trans};
}
