// Compiled EWA projection of 3D Gaussians, forward and hand-written backward, with the rules of
// bench/render/projection.py (gsplat 1.5.3's fused projection): covariance factor R S from the
// normalised quaternion and exp(log scales), near/far culling on camera z, perspective Jacobian
// at the mean clamped to 1.3x the field of view, eps2d on the 2D covariance diagonal, opacity
// sigmoid(logit) < 1/255 culled, opacity-aware per-axis radii, boxes off the image culled; and
// the view-dependent colour from spherical harmonics up to degree 3 (projection.py: sh_colors).
//
// The PyTorch formulation builds about a hundred small tensors per call and as many autograd
// nodes; here one pass per (camera, Gaussian) computes everything, and the backward pass
// recomputes the forward's intermediates instead of saving them. Determinism: the forward pass
// has one writer per output; the backward pass runs per Gaussian and sums its cameras in order.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr double kAlphaThreshold = 1.0 / 255.0;
constexpr double kMaxExtentSigmas = 3.33;

// One camera: world-to-camera rotation R (row-major) and translation, intrinsics and the
// clamping limits of x/z and y/z.
template <typename T>
struct Camera {
  T R[9], t[3], fx, fy, cx, cy, lim_x_pos, lim_x_neg, lim_y_pos, lim_y_neg;
};

template <typename T>
Camera<T> camera(const T* vm, const T* K, int64_t width, int64_t height) {
  Camera<T> c;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) c.R[3 * i + j] = vm[4 * i + j];
    c.t[i] = vm[4 * i + 3];
  }
  c.fx = K[0];
  c.fy = K[4];
  c.cx = K[2];
  c.cy = K[5];
  const T tan_x = T(0.5 * width) / c.fx, tan_y = T(0.5 * height) / c.fy;
  c.lim_x_pos = (T(width) - c.cx) / c.fx + T(0.3) * tan_x;
  c.lim_x_neg = c.cx / c.fx + T(0.3) * tan_x;
  c.lim_y_pos = (T(height) - c.cy) / c.fy + T(0.3) * tan_y;
  c.lim_y_neg = c.cy / c.fy + T(0.3) * tan_y;
  return c;
}

// Camera-independent values of one Gaussian: unit quaternion (w, x, y, z), its rotation matrix,
// scales, covariance factor F = rot diag(s) (row-major) and opacity.
template <typename T>
struct Shape {
  T q[4], inv_norm, rot[9], s[3], F[9], opac;
};

template <typename T>
Shape<T> shape(const T* quat, const T* log_scale, T logit) {
  Shape<T> g;
  const T norm = std::sqrt(quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3]);
  g.inv_norm = T(1) / norm;
  for (int k = 0; k < 4; ++k) g.q[k] = quat[k] / norm;
  const T w = g.q[0], x = g.q[1], y = g.q[2], z = g.q[3];
  const T r[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                  2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                  2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)};
  for (int k = 0; k < 3; ++k) g.s[k] = std::exp(log_scale[k]);
  for (int i = 0; i < 9; ++i) {
    g.rot[i] = r[i];
    g.F[i] = r[i] * g.s[i % 3];
  }
  g.opac = T(1) / (T(1) + std::exp(-logit));
  return g;
}

// Everything the forward pass computes for one (camera, Gaussian); the backward pass recomputes it.
template <typename T>
struct Projection {
  T x, y, z, zs, rz, u, v, tx, ty, a0, b0, a1, b1;
  T Fc[9], row0[3], row1[3];
  T mx, my, c00, c01, c11, det;
  bool in_range, visible;
  int32_t rx, ry;
};

template <typename T>
Projection<T> project_one(const Camera<T>& c, const T* mean, const Shape<T>& g, T near, T far,
                          T eps2d, int64_t width, int64_t height) {
  Projection<T> p;
  T mc[3];
  for (int i = 0; i < 3; ++i)
    mc[i] = c.R[3 * i] * mean[0] + c.R[3 * i + 1] * mean[1] + c.R[3 * i + 2] * mean[2] + c.t[i];
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k)
      p.Fc[3 * i + k] = c.R[3 * i] * g.F[k] + c.R[3 * i + 1] * g.F[3 + k] + c.R[3 * i + 2] * g.F[6 + k];
  p.x = mc[0];
  p.y = mc[1];
  p.z = mc[2];
  p.in_range = p.z >= near && p.z <= far;
  // culled Gaussians may sit at z <= 0; a safe z keeps their (discarded) values finite
  p.zs = p.in_range ? p.z : T(1);
  p.rz = T(1) / p.zs;
  p.u = std::min(c.lim_x_pos, std::max(-c.lim_x_neg, p.x * p.rz));
  p.v = std::min(c.lim_y_pos, std::max(-c.lim_y_neg, p.y * p.rz));
  p.tx = p.zs * p.u;
  p.ty = p.zs * p.v;
  // Jacobian rows (fx/z, 0, -fx tx/z^2) and (0, fy/z, -fy ty/z^2) times W R S
  p.a0 = c.fx * p.rz;
  p.b0 = c.fx * p.tx * p.rz * p.rz;
  p.a1 = c.fy * p.rz;
  p.b1 = c.fy * p.ty * p.rz * p.rz;
  for (int k = 0; k < 3; ++k) {
    p.row0[k] = p.a0 * p.Fc[k] - p.b0 * p.Fc[6 + k];
    p.row1[k] = p.a1 * p.Fc[3 + k] - p.b1 * p.Fc[6 + k];
  }
  p.mx = c.fx * p.x * p.rz + c.cx;
  p.my = c.fy * p.y * p.rz + c.cy;
  p.c00 = p.row0[0] * p.row0[0] + p.row0[1] * p.row0[1] + p.row0[2] * p.row0[2] + eps2d;
  p.c11 = p.row1[0] * p.row1[0] + p.row1[1] * p.row1[1] + p.row1[2] * p.row1[2] + eps2d;
  p.c01 = p.row0[0] * p.row1[0] + p.row0[1] * p.row1[1] + p.row0[2] * p.row1[2];
  p.det = p.c00 * p.c11 - p.c01 * p.c01;
  const bool ok = p.in_range && p.det > 0 && g.opac >= T(kAlphaThreshold);
  p.rx = p.ry = 0;
  if (ok) {
    const T extent = std::min(std::sqrt(T(2) * std::log(g.opac / T(kAlphaThreshold))), T(kMaxExtentSigmas));
    p.rx = int32_t(std::ceil(extent * std::sqrt(std::max(p.c00, T(0)))));
    p.ry = int32_t(std::ceil(extent * std::sqrt(std::max(p.c11, T(0)))));
  }
  const bool on_image = p.mx + p.rx > 0 && p.mx - p.rx < T(width) && p.my + p.ry > 0 &&
                        p.my - p.ry < T(height);
  p.visible = ok && p.rx > 0 && p.ry > 0 && on_image;  // radius_clip = 0 culls empty boxes
  if (!p.visible) p.rx = p.ry = 0;
  return p;
}

template <typename T>
void forward_impl(const T* means, const T* quats, const T* log_scales, const T* logits,
                  const T* viewmats, const T* Ks, int64_t C, int64_t N, int64_t width,
                  int64_t height, T near, T far, T eps2d, T* means2d, T* conics, T* depths,
                  T* opacities, int32_t* radii, bool* visible) {
  std::vector<Camera<T>> cams;
  for (int64_t c = 0; c < C; ++c) cams.push_back(camera(viewmats + 16 * c, Ks + 9 * c, width, height));
  at::parallel_for(0, N, 256, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const Shape<T> g = shape(quats + 4 * n, log_scales + 3 * n, logits[n]);
      for (int64_t c = 0; c < C; ++c) {
        const Projection<T> p = project_one(cams[c], means + 3 * n, g, near, far, eps2d, width, height);
        const int64_t k = c * N + n;
        const T inv_det = p.visible ? T(1) / p.det : T(0);
        means2d[2 * k] = p.visible ? p.mx : T(0);
        means2d[2 * k + 1] = p.visible ? p.my : T(0);
        conics[3 * k] = p.c11 * inv_det;
        conics[3 * k + 1] = -p.c01 * inv_det;
        conics[3 * k + 2] = p.c00 * inv_det;
        depths[k] = p.z;
        opacities[k] = g.opac;
        radii[2 * k] = p.rx;
        radii[2 * k + 1] = p.ry;
        visible[k] = p.visible;
      }
    }
  });
}

template <typename T>
void backward_impl(const T* means, const T* quats, const T* log_scales, const T* logits,
                   const T* viewmats, const T* Ks, int64_t C, int64_t N, int64_t width,
                   int64_t height, T near, T far, T eps2d, const T* g_means2d, const T* g_conics,
                   const T* g_depths, const T* g_opac, T* d_means, T* d_quats, T* d_log_scales,
                   T* d_logits) {
  std::vector<Camera<T>> cams;
  for (int64_t c = 0; c < C; ++c) cams.push_back(camera(viewmats + 16 * c, Ks + 9 * c, width, height));
  at::parallel_for(0, N, 256, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const Shape<T> g = shape(quats + 4 * n, log_scales + 3 * n, logits[n]);
      T dmean[3] = {0, 0, 0}, dF[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, dopac = 0;
      for (int64_t c = 0; c < C; ++c) {
        const Camera<T>& cam = cams[c];
        const int64_t k = c * N + n;
        dopac += g_opac[k];
        T dmc[3] = {0, 0, g_depths[k]};
        const Projection<T> p = project_one(cam, means + 3 * n, g, near, far, eps2d, width, height);
        if (p.visible) {  // means2d and conics are zero (constant) for culled Gaussians
          const T* gc = g_conics + 3 * k;
          const T gmx = g_means2d[2 * k], gmy = g_means2d[2 * k + 1];
          // conic = (c11, -c01, c00) / det
          const T D = p.det, s = (gc[0] * p.c11 - gc[1] * p.c01 + gc[2] * p.c00) / (D * D);
          const T dA = gc[2] / D - s * p.c11, dC = gc[0] / D - s * p.c00;
          const T dB = -gc[1] / D + T(2) * s * p.c01;
          T drow0[3], drow1[3];
          for (int j = 0; j < 3; ++j) {
            drow0[j] = T(2) * dA * p.row0[j] + dB * p.row1[j];
            drow1[j] = T(2) * dC * p.row1[j] + dB * p.row0[j];
          }
          T dFc[9], da0 = 0, db0 = 0, da1 = 0, db1 = 0;
          for (int j = 0; j < 3; ++j) {
            dFc[j] = p.a0 * drow0[j];
            dFc[3 + j] = p.a1 * drow1[j];
            dFc[6 + j] = -p.b0 * drow0[j] - p.b1 * drow1[j];
            da0 += drow0[j] * p.Fc[j];
            db0 -= drow0[j] * p.Fc[6 + j];
            da1 += drow1[j] * p.Fc[3 + j];
            db1 -= drow1[j] * p.Fc[6 + j];
          }
          // mean2d = (fx x / z + cx, fy y / z + cy); a0 = fx rz, b0 = fx tx rz^2 (and row 1)
          T dx = gmx * cam.fx * p.rz, dy = gmy * cam.fy * p.rz;
          T drz = gmx * cam.fx * p.x + gmy * cam.fy * p.y + cam.fx * da0 + cam.fy * da1 +
                  T(2) * p.rz * (db0 * cam.fx * p.tx + db1 * cam.fy * p.ty);
          const T dtx = db0 * cam.fx * p.rz * p.rz, dty = db1 * cam.fy * p.rz * p.rz;
          // tx = zs clamp(x rz), ty = zs clamp(y rz)
          T dzs = dtx * p.u + dty * p.v;
          const T xr = p.x * p.rz, yr = p.y * p.rz;
          if (xr > -cam.lim_x_neg && xr < cam.lim_x_pos) {
            dx += dtx * p.zs * p.rz;
            drz += dtx * p.zs * p.x;
          }
          if (yr > -cam.lim_y_neg && yr < cam.lim_y_pos) {
            dy += dty * p.zs * p.rz;
            drz += dty * p.zs * p.y;
          }
          dzs -= drz * p.rz * p.rz;
          dmc[0] += dx;
          dmc[1] += dy;
          dmc[2] += dzs;  // visible implies in range: zs = z
          for (int i = 0; i < 3; ++i)  // Fc = R F
            for (int j = 0; j < 3; ++j)
              dF[3 * i + j] += cam.R[i] * dFc[j] + cam.R[3 + i] * dFc[3 + j] + cam.R[6 + i] * dFc[6 + j];
        }
        for (int i = 0; i < 3; ++i)  // mean_c = R mean + t
          dmean[i] += cam.R[i] * dmc[0] + cam.R[3 + i] * dmc[1] + cam.R[6 + i] * dmc[2];
      }
      for (int i = 0; i < 3; ++i) d_means[3 * n + i] = dmean[i];
      d_logits[n] = dopac * g.opac * (T(1) - g.opac);
      // F = rot diag(s): rotation and scale gradients
      T dr[9], ds[3] = {0, 0, 0};
      for (int i = 0; i < 9; ++i) {
        dr[i] = dF[i] * g.s[i % 3];
        ds[i % 3] += dF[i] * g.rot[i];
      }
      for (int k = 0; k < 3; ++k) d_log_scales[3 * n + k] = ds[k] * g.s[k];
      const T w = g.q[0], x = g.q[1], y = g.q[2], z = g.q[3];
      const T dq[4] = {
          T(2) * (-z * dr[1] + y * dr[2] + z * dr[3] - x * dr[5] - y * dr[6] + x * dr[7]),
          T(2) * (y * dr[1] + z * dr[2] + y * dr[3] - T(2) * x * dr[4] - w * dr[5] + z * dr[6] +
                  w * dr[7] - T(2) * x * dr[8]),
          T(2) * (-T(2) * y * dr[0] + x * dr[1] + w * dr[2] + x * dr[3] + z * dr[5] - w * dr[6] +
                  z * dr[7] - T(2) * y * dr[8]),
          T(2) * (-T(2) * z * dr[0] - w * dr[1] + x * dr[2] + w * dr[3] - T(2) * z * dr[4] +
                  y * dr[5] + x * dr[6] + y * dr[7])};
      // q_hat = q / |q|
      const T along = dq[0] * g.q[0] + dq[1] * g.q[1] + dq[2] * g.q[2] + dq[3] * g.q[3];
      for (int k = 0; k < 4; ++k) d_quats[4 * n + k] = (dq[k] - g.q[k] * along) * g.inv_norm;
    }
  });
}

}  // namespace

// means (N,3), quats (N,4), log_scales (N,3), opacity_logits (N,), viewmats (C,4,4), Ks (C,3,3)
// contiguous, one float dtype. Returns means2d (C,N,2) and conics (C,N,3) (zero where not
// visible), depths (C,N) camera z, opacities (C,N), radii (C,N,2) int32 (0 = culled), visible (C,N).
std::vector<torch::Tensor> project_forward(torch::Tensor means, torch::Tensor quats,
                                           torch::Tensor log_scales, torch::Tensor logits,
                                           torch::Tensor viewmats, torch::Tensor Ks, int64_t width,
                                           int64_t height, double near, double far, double eps2d) {
  const int64_t N = means.size(0), C = viewmats.size(0);
  auto opts = means.options();
  auto means2d = torch::empty({C, N, 2}, opts), conics = torch::empty({C, N, 3}, opts);
  auto depths = torch::empty({C, N}, opts), opacities = torch::empty({C, N}, opts);
  auto radii = torch::empty({C, N, 2}, opts.dtype(torch::kInt32));
  auto visible = torch::empty({C, N}, opts.dtype(torch::kBool));
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_forward", [&] {
    forward_impl<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(),
                           log_scales.data_ptr<scalar_t>(), logits.data_ptr<scalar_t>(),
                           viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, width,
                           height, scalar_t(near), scalar_t(far), scalar_t(eps2d),
                           means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                           depths.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                           radii.data_ptr<int32_t>(), visible.data_ptr<bool>());
  });
  return {means2d, conics, depths, opacities, radii, visible};
}

// Gradients of project_forward's differentiable outputs (means2d, conics, depths, opacities; each
// (C,N,...) contiguous) with respect to means, quats, log_scales and opacity_logits.
std::vector<torch::Tensor> project_backward(torch::Tensor means, torch::Tensor quats,
                                            torch::Tensor log_scales, torch::Tensor logits,
                                            torch::Tensor viewmats, torch::Tensor Ks, int64_t width,
                                            int64_t height, double near, double far, double eps2d,
                                            torch::Tensor g_means2d, torch::Tensor g_conics,
                                            torch::Tensor g_depths, torch::Tensor g_opacities) {
  const int64_t N = means.size(0), C = viewmats.size(0);
  auto d_means = torch::empty_like(means), d_quats = torch::empty_like(quats);
  auto d_log_scales = torch::empty_like(log_scales), d_logits = torch::empty_like(logits);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_backward", [&] {
    backward_impl<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(),
                            log_scales.data_ptr<scalar_t>(), logits.data_ptr<scalar_t>(),
                            viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, width,
                            height, scalar_t(near), scalar_t(far), scalar_t(eps2d),
                            g_means2d.data_ptr<scalar_t>(), g_conics.data_ptr<scalar_t>(),
                            g_depths.data_ptr<scalar_t>(), g_opacities.data_ptr<scalar_t>(),
                            d_means.data_ptr<scalar_t>(), d_quats.data_ptr<scalar_t>(),
                            d_log_scales.data_ptr<scalar_t>(), d_logits.data_ptr<scalar_t>());
  });
  return {d_means, d_quats, d_log_scales, d_logits};
}

// ---- view-dependent colour from spherical harmonics (projection.py: sh_colors) ------------------

namespace {

// Real SH basis up to degree 3 at the unit direction (x, y, z), gsplat's order and constants
// (projection.py: sh_basis), and, when `grad` is given, each function's gradient (B,3).
template <typename T>
void sh_basis3(int degree, T x, T y, T z, T* out, T* grad) {
  const T c0 = T(0.2820947917738781), c1 = T(0.48860251190292);
  const T a2 = T(0.5462742152960395), b2 = T(-1.092548430592079), c2 = T(0.9461746957575601),
          d2 = T(-0.3153915652525201);
  const T e3 = T(-0.5900435899266435), f3 = T(1.445305721320277), h3 = T(-2.285228997322329),
          k3 = T(0.4570457994644658), m3 = T(1.865881662950577), n3 = T(-1.119528997770346);
  auto set = [&](int b, T v, T gx, T gy, T gz) {
    out[b] = v;
    if (grad) {
      grad[3 * b] = gx;
      grad[3 * b + 1] = gy;
      grad[3 * b + 2] = gz;
    }
  };
  set(0, c0, 0, 0, 0);
  if (degree < 1) return;
  set(1, -c1 * y, 0, -c1, 0);
  set(2, c1 * z, 0, 0, c1);
  set(3, -c1 * x, -c1, 0, 0);
  if (degree < 2) return;
  const T fc1 = x * x - y * y, fs1 = 2 * x * y;
  set(4, a2 * fs1, 2 * a2 * y, 2 * a2 * x, 0);
  set(5, b2 * z * y, 0, b2 * z, b2 * y);
  set(6, c2 * z * z + d2, 0, 0, 2 * c2 * z);
  set(7, b2 * z * x, b2 * z, 0, b2 * x);
  set(8, a2 * fc1, 2 * a2 * x, -2 * a2 * y, 0);
  if (degree < 3) return;
  const T fc2 = x * fc1 - y * fs1, fs2 = x * fs1 + y * fc1, tc = h3 * z * z + k3;
  set(9, e3 * fs2, 6 * e3 * x * y, 3 * e3 * (x * x - y * y), 0);
  set(10, f3 * z * fs1, 2 * f3 * z * y, 2 * f3 * z * x, f3 * fs1);
  set(11, tc * y, 0, tc, 2 * h3 * z * y);
  set(12, z * (m3 * z * z + n3), 0, 0, 3 * m3 * z * z + n3);
  set(13, tc * x, tc, 0, 2 * h3 * z * x);
  set(14, f3 * z * fc1, 2 * f3 * z * x, -2 * f3 * z * y, f3 * fc1);
  set(15, e3 * fc2, 3 * e3 * (x * x - y * y), -6 * e3 * x * y, 0);
}

// Unit direction camera centre -> mean and its length (normalised with eps 1e-12, as F.normalize).
template <typename T>
T direction(const T* mean, const T* campos, T* dir) {
  T v[3];
  for (int i = 0; i < 3; ++i) v[i] = mean[i] - campos[i];
  const T norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  for (int i = 0; i < 3; ++i) dir[i] = v[i] / std::max(norm, T(1e-12));
  return norm;
}

}  // namespace

// coeffs (N,K,3) with K >= (degree+1)^2, means (N,3), camera centres (C,3) contiguous, degree 0..3.
// Returns rgb (C,N,3) = max(sum_b Y_b(dir) coeffs[:, b] + 0.5, 0), dir the unit vector from the
// camera centre to the mean.
torch::Tensor sh_forward(torch::Tensor coeffs, torch::Tensor means, torch::Tensor campos, int64_t degree) {
  const int64_t N = coeffs.size(0), K = coeffs.size(1), C = campos.size(0);
  const int nb = int((degree + 1) * (degree + 1));
  TORCH_CHECK(degree >= 0 && degree <= 3 && K >= nb, "sh_forward: degree 0..3 with enough coefficients");
  auto rgb = torch::empty({C, N, 3}, coeffs.options());
  AT_DISPATCH_FLOATING_TYPES(coeffs.scalar_type(), "sh_forward", [&] {
    const scalar_t* cf = coeffs.data_ptr<scalar_t>();
    const scalar_t* mp = means.data_ptr<scalar_t>();
    const scalar_t* cp = campos.data_ptr<scalar_t>();
    scalar_t* out = rgb.data_ptr<scalar_t>();
    at::parallel_for(0, N, 512, [&](int64_t begin, int64_t end) {
      scalar_t dir[3], basis[16];
      for (int64_t n = begin; n < end; ++n)
        for (int64_t c = 0; c < C; ++c) {
          direction(mp + 3 * n, cp + 3 * c, dir);
          sh_basis3<scalar_t>(int(degree), dir[0], dir[1], dir[2], basis, nullptr);
          for (int k = 0; k < 3; ++k) {
            scalar_t sum = 0;
            for (int b = 0; b < nb; ++b) sum += basis[b] * cf[(n * K + b) * 3 + k];
            out[(c * N + n) * 3 + k] = std::max(sum + scalar_t(0.5), scalar_t(0));
          }
        }
    });
  });
  return rgb;
}

// Gradients of sh_forward for upstream g_rgb (C,N,3): d coeffs (N,K,3) (zero past the degree's
// coefficients) and d means (N,3), each Gaussian's cameras summed in order.
std::vector<torch::Tensor> sh_backward(torch::Tensor coeffs, torch::Tensor means, torch::Tensor campos,
                                       int64_t degree, torch::Tensor g_rgb) {
  const int64_t N = coeffs.size(0), K = coeffs.size(1), C = campos.size(0);
  const int nb = int((degree + 1) * (degree + 1));
  auto d_coeffs = torch::zeros_like(coeffs), d_means = torch::empty_like(means);
  AT_DISPATCH_FLOATING_TYPES(coeffs.scalar_type(), "sh_backward", [&] {
    const scalar_t* cf = coeffs.data_ptr<scalar_t>();
    const scalar_t* mp = means.data_ptr<scalar_t>();
    const scalar_t* cp = campos.data_ptr<scalar_t>();
    const scalar_t* g = g_rgb.data_ptr<scalar_t>();
    scalar_t* dc = d_coeffs.data_ptr<scalar_t>();
    scalar_t* dm = d_means.data_ptr<scalar_t>();
    at::parallel_for(0, N, 512, [&](int64_t begin, int64_t end) {
      scalar_t dir[3], basis[16], grad[48];
      for (int64_t n = begin; n < end; ++n) {
        scalar_t dmean[3] = {0, 0, 0};
        for (int64_t c = 0; c < C; ++c) {
          const scalar_t norm = direction(mp + 3 * n, cp + 3 * c, dir);
          sh_basis3<scalar_t>(int(degree), dir[0], dir[1], dir[2], basis, grad);
          scalar_t g_basis[16] = {};
          for (int k = 0; k < 3; ++k) {
            scalar_t sum = 0;
            for (int b = 0; b < nb; ++b) sum += basis[b] * cf[(n * K + b) * 3 + k];
            // max(v, 0) passes the gradient where v >= 0, as torch's clamp_min
            const scalar_t gk = sum + scalar_t(0.5) >= 0 ? g[(c * N + n) * 3 + k] : scalar_t(0);
            for (int b = 0; b < nb; ++b) {
              dc[(n * K + b) * 3 + k] += basis[b] * gk;
              g_basis[b] += cf[(n * K + b) * 3 + k] * gk;
            }
          }
          scalar_t ddir[3] = {0, 0, 0};
          for (int b = 0; b < nb; ++b)
            for (int i = 0; i < 3; ++i) ddir[i] += g_basis[b] * grad[3 * b + i];
          // dir = v / max(|v|, eps), v = mean - campos
          if (norm > scalar_t(1e-12)) {
            const scalar_t along = ddir[0] * dir[0] + ddir[1] * dir[1] + ddir[2] * dir[2];
            for (int i = 0; i < 3; ++i) dmean[i] += (ddir[i] - dir[i] * along) / norm;
          } else {
            for (int i = 0; i < 3; ++i) dmean[i] += ddir[i] / scalar_t(1e-12);
          }
        }
        for (int i = 0; i < 3; ++i) dm[3 * n + i] = dmean[i];
      }
    });
  });
  return {d_coeffs, d_means};
}
