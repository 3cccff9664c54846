// time_encode: the cosine time encoding of TGAT / TGN / PyG's TimeEncoder, out[i, j] = cos(p_ij) with the phase
// p_ij = fl(fl(dt_i * w_j) + b_j) formed in float32 exactly as torch.nn.Linear(1, tau) forms it (a rounded
// product, then a rounded sum), and sin(p_ij) too when asked (the backward's derivative). The phase is reduced
// in float64 (|p| reaches 1e7 for time gaps of months at w = 1), which is exact for a float32 phase, and cos
// and sin come from one polynomial pair on [-pi/4, pi/4]: about 1 ulp from the float64 reference. Rows whose
// phases may exceed 2^35 (or are NaN / Inf) go through libm's double cos / sin instead.
#pragma once
#include <cstdint>

#include "common/common.h"

namespace hardneg {

struct TimeEncodeArgs {
  const float* dt = nullptr;  // [rows]
  const float* w = nullptr;   // [dim]
  const float* b = nullptr;   // [dim] or null (no bias)
  float* out_cos = nullptr;   // [rows, dim]
  float* out_sin = nullptr;   // [rows, dim] or null
  int64_t rows = 0, dim = 0;
  double max_w = 0.0, max_b = 0.0;  // set by time_encode_cpu: the bounds that send a row to the libm path
};

void time_encode_cpu(const TimeEncodeArgs& A, int num_threads);

}  // namespace hardneg
