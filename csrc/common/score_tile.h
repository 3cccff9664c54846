// Tiled similarity scores for the mining family, shared by topk_mine and sample_by_score.
// Candidates are packed per tile into panels [ceil(nc/NR)][d][NR] so that a 6x16 register-blocked
// micro-kernel streams them with 32-byte loads; queries are broadcast scalars. Two builds of the same
// source (baseline x86-64 and AVX2+FMA) are picked at run time by cpu_dispatch.cpp.
#pragma once
#include <cstdint>

namespace hardneg {

constexpr int kMR = 6;   // query rows per micro-kernel call
constexpr int kNR = 16;  // candidates per packed panel (two AVX2 vectors)
constexpr float kNormEps = 1e-12f;  // cos: 1 / max(|x|, eps), as torch.nn.functional.normalize

struct TileKernels {
  // Pack nc candidate rows (row stride ldc, dim d) into panels; caux[j] gets the per-candidate term the
  // metric needs (cos: inverse norm, l2: squared norm). Padding lanes are zero.
  void (*pack)(const float* c, int64_t ldc, int nc, int d, int metric, float* packed, float* caux);
  // Scores of kMR query rows (row r at qbuf + r * ldq, qaux [kMR]) against a packed tile of ncpad
  // candidates (a multiple of kNR). Writes s[r * ncpad + j], float32 accumulation.
  void (*scores)(const float* qbuf, int64_t ldq, const float* qaux, const float* packed, const float* caux,
                 int ncpad, int d, int metric, float* s);
  // The MLP link decoder's scores of kMR query rows against a packed tile: s[r * ncpad + j] =
  // sum_k weight[k] * max(q[r][k] + c[j][k], 0), float32 accumulation in k order (metric kMlp).
  void (*mlp_scores)(const float* qbuf, int64_t ldq, const float* weight, const float* packed, int ncpad, int d,
                     float* s);
  // Sampling weights of one tile: l[j] = logit of s[j] (weighting 0: s/T; 1: log(softplus(s))/T); -inf stays
  // -inf. Returns max_j l[j] (-inf if none).
  float (*logits)(const float* s, int n, int weighting, float inv_temp, float* l);
  // w[j] = exp(l[j] - m) (0 for -inf); returns sum_j w[j] accumulated in double.
  double (*exp_sum)(const float* l, int n, float m, float* w);
  const char* isa;
};

const TileKernels& tile_kernels();  // best for this CPU (HARDNEG_ISA=generic|avx2 forces one)
float query_aux(const float* q, int d, int metric);
}  // namespace hardneg
