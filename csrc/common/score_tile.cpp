// Compiled twice (see CMakeLists.txt): HARDNEG_ISA=generic and HARDNEG_ISA=avx2 (-mavx2 -mfma).
// GCC vector extensions keep the 6x16 accumulator block in 12 ymm registers in the AVX2 build.
#include <cmath>
#include <cstring>
#include <limits>

#include "common/common.h"
#include "common/score_tile.h"

#ifndef HARDNEG_ISA
#error "HARDNEG_ISA must be defined"
#endif
#define HN_CAT2(a, b) a##b
#define HN_CAT(a, b) HN_CAT2(a, b)

namespace hardneg {
namespace HARDNEG_ISA {

typedef float f8 __attribute__((vector_size(32)));
static inline f8 load8(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
static inline void store8(float* p, f8 v) { std::memcpy(p, &v, sizeof(v)); }

static void pack(const float* c, int64_t ldc, int nc, int d, int metric, float* packed, float* caux) {
  const int np = (nc + kNR - 1) / kNR;
  for (int p = 0; p < np; ++p) {
    float* dst = packed + static_cast<int64_t>(p) * d * kNR;
    const int j0 = p * kNR;
    const int nj = nc - j0 < kNR ? nc - j0 : kNR;
    if (nj < kNR) std::memset(dst, 0, sizeof(float) * d * kNR);
    for (int j = 0; j < nj; ++j) {
      const float* src = c + static_cast<int64_t>(j0 + j) * ldc;
      for (int k = 0; k < d; ++k) dst[k * kNR + j] = src[k];
    }
  }
  if (metric == kCos || metric == kL2) {
    for (int j = 0; j < nc; ++j) {
      const float* src = c + static_cast<int64_t>(j) * ldc;
      float acc = 0.f;
      for (int k = 0; k < d; ++k) acc += src[k] * src[k];
      caux[j] = metric == kCos ? 1.0f / std::fmax(std::sqrt(acc), kNormEps) : acc;
    }
    for (int j = nc; j < np * kNR; ++j) caux[j] = 0.f;
  }
}

// 6 query rows x 16 candidates, inner products over d.
static inline void dot_panel(const float* q, int64_t ldq, int d, const float* b, float* s, int lds) {
  f8 c[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) c[r][0] = c[r][1] = f8{};
  for (int k = 0; k < d; ++k) {
    const f8 b0 = load8(b + k * kNR), b1 = load8(b + k * kNR + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const float a = q[r * ldq + k];
      c[r][0] += a * b0;
      c[r][1] += a * b1;
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    store8(s + r * lds, c[r][0]);
    store8(s + r * lds + 8, c[r][1]);
  }
}

// -sum_k |q_k - c_k|, and the RotatE form -sum_j |(qr_j - cr_j) + i (qi_j - ci_j)|: plain loops over the
// 16 lanes, which the compiler vectorises (vsqrtps / andps) since -fno-math-errno is set.
static inline void l1_panel(const float* q, int64_t ldq, int d, const float* b, float* s, int lds) {
  float acc[kMR][kNR] = {};
  for (int k = 0; k < d; ++k) {
    const float* bk = b + k * kNR;
    for (int r = 0; r < kMR; ++r) {
      const float a = q[r * ldq + k];
      for (int j = 0; j < kNR; ++j) acc[r][j] += std::fabs(a - bk[j]);
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < kNR; ++j) s[r * lds + j] = -acc[r][j];
}

static inline void rotate_panel(const float* q, int64_t ldq, int d, const float* b, float* s, int lds) {
  const int m = d / 2;
  float acc[kMR][kNR] = {};
  for (int k = 0; k < m; ++k) {
    const float* br = b + k * kNR;
    const float* bi = b + (k + m) * kNR;
    for (int r = 0; r < kMR; ++r) {
      const float qr = q[r * ldq + k], qi = q[r * ldq + k + m];
      for (int j = 0; j < kNR; ++j) {
        const float dr = qr - br[j], di = qi - bi[j];
        acc[r][j] += std::sqrt(dr * dr + di * di);
      }
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < kNR; ++j) s[r * lds + j] = -acc[r][j];
}

static void scores(const float* qbuf, int64_t ldq, const float* qaux, const float* packed, const float* caux,
                   int ncpad, int d, int metric, float* s) {
  const int np = ncpad / kNR;
  for (int p = 0; p < np; ++p) {
    const float* b = packed + static_cast<int64_t>(p) * d * kNR;
    float* sp = s + p * kNR;
    switch (metric) {
      case kL1: l1_panel(qbuf, ldq, d, b, sp, ncpad); break;
      case kRotate: rotate_panel(qbuf, ldq, d, b, sp, ncpad); break;
      default: dot_panel(qbuf, ldq, d, b, sp, ncpad); break;
    }
  }
  if (metric == kCos) {
    for (int r = 0; r < kMR; ++r) {
      const float qa = qaux[r];
      float* sr = s + r * ncpad;
      for (int j = 0; j < ncpad; ++j) sr[j] *= qa * caux[j];
    }
  } else if (metric == kL2) {
    for (int r = 0; r < kMR; ++r) {
      const float qa = qaux[r];
      float* sr = s + r * ncpad;
      for (int j = 0; j < ncpad; ++j) sr[j] = 2.0f * sr[j] - qa - caux[j];
    }
  }
}

// 6 query rows x 16 candidates of the MLP decoder: w_k * relu(q_k + c_k) summed over k in order, the hidden
// layer never stored (an [rows, N, d] tensor in torch).
static inline void mlp_panel(const float* q, int64_t ldq, const float* w, int d, const float* b, float* s,
                             int lds) {
  f8 c[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) c[r][0] = c[r][1] = f8{};
  const f8 zero{};
  for (int k = 0; k < d; ++k) {
    const f8 b0 = load8(b + k * kNR), b1 = load8(b + k * kNR + 8);
    const float wk = w[k];
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const float a = q[r * ldq + k];
      const f8 h0 = a + b0, h1 = a + b1;
      c[r][0] += wk * (h0 > zero ? h0 : zero);
      c[r][1] += wk * (h1 > zero ? h1 : zero);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    store8(s + r * lds, c[r][0]);
    store8(s + r * lds + 8, c[r][1]);
  }
}

static void mlp_scores(const float* qbuf, int64_t ldq, const float* weight, const float* packed, int ncpad, int d,
                       float* s) {
  const int np = ncpad / kNR;
  for (int p = 0; p < np; ++p) mlp_panel(qbuf, ldq, weight, d, packed + static_cast<int64_t>(p) * d * kNR,
                                         s + p * kNR, ncpad);
}

// Float exp/log on 8 lanes (Cephes-style polynomials, ~2 ulp), written with GCC vector types so that both
// builds vectorise them (the auto-vectoriser left a scalar path hot: 8 ns/candidate measured).
typedef int32_t i8 __attribute__((vector_size(32)));

static inline f8 splat(float v) { return f8{} + v; }

static inline f8 vexp8(f8 x) {
  // below -103 the result is 0, not the clamp's 1.4e-45: a floor weight on every far-away candidate made the
  // sampler's jump walk fire on candidates whose true weight is e^-1000 (logit spans > ~745, e.g. T = 0.01)
  const i8 under = x < -103.0f;
  x = x < -103.0f ? splat(-103.0f) : x;
  x = x > 88.7f ? splat(88.7f) : x;
  const f8 t = x * 1.44269504088896341f + 0.5f;
  f8 fx = __builtin_convertvector(__builtin_convertvector(t, i8), f8);
  fx = fx > t ? fx - 1.0f : fx;  // floor
  const f8 r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  f8 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const i8 n = __builtin_convertvector(fx, i8);
  const i8 n1 = n >> 1, n2 = n - n1;  // 2^n as two factors: n down to -150 stays representable
  const f8 s1 = (f8)((n1 + 127) << 23), s2 = (f8)((n2 + 127) << 23);
  return under ? f8{} : p * s1 * s2;
}

static inline f8 vlog8(f8 x) {  // x > 0, finite
  i8 bits = (i8)x;
  i8 e = ((bits >> 23) & 0xff) - 126;
  bits = (bits & 0x807fffff) | 0x3f000000;  // mantissa in [0.5, 1)
  f8 m = (f8)bits;
  const i8 small = m < 0.707106781186547524f;  // -1 where true
  e = e + small;
  m = small ? m + m - 1.0f : m - 1.0f;
  const f8 z = m * m;
  f8 y = splat(7.0376836292e-2f);
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const f8 fe = __builtin_convertvector(e, f8);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return m + y + 0.693359375f * fe;
}

static inline f8 load_pad(const float* p, int n, float pad) {  // first n lanes from p, the rest `pad`
  float tmp[8];
  for (int i = 0; i < 8; ++i) tmp[i] = i < n ? p[i] : pad;
  return load8(tmp);
}
static inline void store_n(float* p, f8 v, int n) {
  float tmp[8];
  store8(tmp, v);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}
static inline float hmax(f8 v) {
  float t[8];
  store8(t, v);
  float m = t[0];
  for (int i = 1; i < 8; ++i) m = t[i] > m ? t[i] : m;
  return m;
}
static inline float hsum(f8 v) {
  float t[8];
  store8(t, v);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

static inline f8 logits8(f8 x, int weighting, float inv_temp) {
  const float ninf = -std::numeric_limits<float>::infinity();
  if (weighting == 0) return x * inv_temp;  // -inf stays -inf
  // log(softplus(x)) / T; softplus(x) = max(x,0) + log1p(exp(-|x|)), log1p via log(u) t / (u - 1)
  const f8 ax = (f8)((i8)x & 0x7fffffff);
  const f8 t = vexp8(-ax);
  const f8 u = 1.0f + t;
  const i8 one = u == 1.0f;
  const f8 l1p = one ? t : vlog8(u) * t / (one ? splat(1.0f) : u - 1.0f);
  f8 sp = (x > 0.0f ? x : splat(0.0f)) + l1p;
  sp = sp > 1e-38f ? sp : splat(1e-38f);
  f8 v = x < -15.0f ? x : vlog8(sp);  // below -15: log(softplus(x)) = x to float precision
  v = v * inv_temp;
  return x == ninf ? splat(ninf) : v;
}

static float logits(const float* s, int n, int weighting, float inv_temp, float* l) {
  const float ninf = -std::numeric_limits<float>::infinity();
  f8 mx = splat(ninf);
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const f8 v = logits8(load8(s + j), weighting, inv_temp);
    store8(l + j, v);
    mx = v > mx ? v : mx;
  }
  if (j < n) {
    const f8 v = logits8(load_pad(s + j, n - j, ninf), weighting, inv_temp);
    store_n(l + j, v, n - j);
    mx = v > mx ? v : mx;
  }
  return hmax(mx);
}

static double exp_sum(const float* l, int n, float m, float* w) {
  const float ninf = -std::numeric_limits<float>::infinity();
  double acc = 0.0;
  f8 part = f8{};
  int j = 0, cnt = 0;
  for (; j + 8 <= n; j += 8) {
    const f8 x = load8(l + j);
    const f8 v = x == ninf ? f8{} : vexp8(x - m);
    store8(w + j, v);
    part += v;
    if (++cnt == 32) {  // 256 terms (each <= 1) in float, then double
      acc += hsum(part);
      part = f8{};
      cnt = 0;
    }
  }
  if (j < n) {
    const f8 x = load_pad(l + j, n - j, ninf);
    const f8 v = x == ninf ? f8{} : vexp8(x - m);
    store_n(w + j, v, n - j);
    part += v;
  }
  return acc + hsum(part);
}

}  // namespace HARDNEG_ISA

extern const TileKernels HN_CAT(tile_kernels_, HARDNEG_ISA);
const TileKernels HN_CAT(tile_kernels_, HARDNEG_ISA) = {&HARDNEG_ISA::pack, &HARDNEG_ISA::scores, &HARDNEG_ISA::mlp_scores, &HARDNEG_ISA::logits, &HARDNEG_ISA::exp_sum,
#define HN_STR2(x) #x
#define HN_STR(x) HN_STR2(x)
                                                         HN_STR(HARDNEG_ISA)};
}  // namespace hardneg
