// Float32 method kernels for one instruction set: BP-Net's head activations and the per-pixel
// blur's multiply-add row. Included after composite_vec.h, in the same namespace, so it shares
// its vector type, exp() and FMA.
//
// The heads' matmul gives logits (R, M): R-1 kernel taps and one mask row per pixel column.
// Kernels are a softmax over the taps of each column, the mask a sigmoid. Columns run in blocks
// of kHeadChunks vectors: each pass walks the rows of one block, whose R short contiguous row
// pieces stay in cache between passes, where whole strided columns would not.

constexpr int kHeadChunks = 16;

// kernels (R-1, M) and mask (1, M) from logits (R, M), columns [begin, end), end - begin a
// multiple of kLanes.
inline void heads_forward_cols(const float* logits, int64_t R, int64_t M, int64_t begin, int64_t end,
                               float* kernels, float* mask) {
  vf top[kHeadChunks], sum[kHeadChunks];
  for (int64_t j0 = begin; j0 < end; j0 += kHeadChunks * kLanes) {
    const int n = (end - j0) / kLanes < kHeadChunks ? int((end - j0) / kLanes) : kHeadChunks;
    for (int c = 0; c < n; ++c) top[c] = load(logits + j0 + c * kLanes);
    for (int64_t r = 1; r < R - 1; ++r)
      for (int c = 0; c < n; ++c) top[c] = vmax(top[c], load(logits + r * M + j0 + c * kLanes));
    for (int c = 0; c < n; ++c) sum[c] = splat(0.f);
    for (int64_t r = 0; r < R - 1; ++r)
      for (int c = 0; c < n; ++c) {
        const int64_t at = r * M + j0 + c * kLanes;
        const vf e = vexp(load(logits + at) - top[c]);
        store(kernels + at, e);
        sum[c] += e;
      }
    for (int c = 0; c < n; ++c) sum[c] = splat(1.f) / sum[c];
    for (int64_t r = 0; r < R - 1; ++r)
      for (int c = 0; c < n; ++c) {
        const int64_t at = r * M + j0 + c * kLanes;
        store(kernels + at, load(kernels + at) * sum[c]);
      }
    for (int c = 0; c < n; ++c) {
      const int64_t at = j0 + c * kLanes;
      store(mask + at, splat(1.f) / (splat(1.f) + vexp(-load(logits + (R - 1) * M + at))));
    }
  }
}

// g_logits (R, M) from the outputs and their gradients, columns as above.
inline void heads_backward_cols(const float* kernels, const float* mask, const float* g_kernels,
                                const float* g_mask, int64_t R, int64_t M, int64_t begin,
                                int64_t end, float* g_logits) {
  vf dot[kHeadChunks];
  for (int64_t j0 = begin; j0 < end; j0 += kHeadChunks * kLanes) {
    const int n = (end - j0) / kLanes < kHeadChunks ? int((end - j0) / kLanes) : kHeadChunks;
    for (int c = 0; c < n; ++c) dot[c] = splat(0.f);
    for (int64_t r = 0; r < R - 1; ++r)
      for (int c = 0; c < n; ++c) {
        const int64_t at = r * M + j0 + c * kLanes;
        dot[c] = fmadd(load(g_kernels + at), load(kernels + at), dot[c]);
      }
    for (int64_t r = 0; r < R - 1; ++r)
      for (int c = 0; c < n; ++c) {
        const int64_t at = r * M + j0 + c * kLanes;
        store(g_logits + at, load(kernels + at) * (load(g_kernels + at) - dot[c]));
      }
    for (int c = 0; c < n; ++c) {
      const int64_t at = j0 + c * kLanes;
      const vf s = load(mask + at);
      store(g_logits + (R - 1) * M + at, load(g_mask + at) * s * (splat(1.f) - s));
    }
  }
}

// out[x] += a[x] * b[x] for x < n (the per-pixel blur kernels' inner loop), vectorised by the
// compiler for this instruction set; a multiply and an add, never fused (-ffp-contract=off).
inline void multiply_add(float* __restrict__ out, const float* __restrict__ a,
                         const float* __restrict__ b, int64_t n) {
  for (int64_t x = 0; x < n; ++x) out[x] += a[x] * b[x];
}
