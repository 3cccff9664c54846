// time_encode, CPU (time_encode.h): rows split into blocks across OpenMP threads; each block runs an AVX2+FMA copy
// of the loop when the CPU has both (the loop is plain C++ that the compiler vectorises over j: a float64 phase
// reduction against pi/2 in 16-bit parts, the sin / cos polynomials, quadrant selects without branches).
#include <cmath>
#include <cstdint>

#include <omp.h>

#include "temporal/time_encode.h"

namespace hardneg {
namespace {

constexpr double kTwoOverPi = 0.636619772367581343075535053490057448;
// pi / 2 = kP1 + kP2 + kP3 + kP4 + kP5, the first four of 16 significant bits each: q * kPi is exact for
// |q| < 2^37 (phases up to ~1e11), so the reduction needs no FMA (it vectorises on the baseline build too)
constexpr double kP1 = 0x1.921ep+0;
constexpr double kP2 = 0x1.b544p-16;
constexpr double kP3 = 0x1.0b46p-34;
constexpr double kP4 = 0x1.1a62p-54;
constexpr double kP5 = 3.2820035428735005e-22;
constexpr int64_t kBlock = 64;                           // rows per work item

// Round-to-nearest by the 1.5 * 2^52 trick: (x + kMagic) - kMagic = round(x) for |x| < 2^51. Plain additions,
// which vectorise on every build (nearbyint / floor and a double -> int64 conversion do not, on SSE2 or AVX2).
constexpr double kMagic = 6755399441055744.0;
// Rows whose phases may reach this bound (|q| near 2^37) take libm's cos / sin instead of the reduction above
constexpr double kExactBelow = 0x1p35;

template <bool kSin, bool kBias>
inline void encode_rows(const TimeEncodeArgs& A, int64_t i0, int64_t i1) {
  const int64_t D = A.dim;
  const float* __restrict w = A.w;
  const float* __restrict b = A.b;
  for (int64_t i = i0; i < i1; ++i) {
    const double dt = A.dt[i];
    float* __restrict oc = A.out_cos + i * D;
    float* __restrict os = kSin ? A.out_sin + i * D : nullptr;
    if (!(std::fabs(dt) * A.max_w + A.max_b < kExactBelow)) {  // huge (or NaN / Inf) phases: libm, per element
      for (int64_t j = 0; j < D; ++j) {
        float p = static_cast<float>(dt * static_cast<double>(w[j]));
        if (kBias) p = p + b[j];
        oc[j] = static_cast<float>(std::cos(static_cast<double>(p)));
        if (kSin) os[j] = static_cast<float>(std::sin(static_cast<double>(p)));
      }
      continue;
    }
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      // the float32 phase of Linear(1, tau): the product rounded (exact in float64 first), then the sum rounded
      float p = static_cast<float>(dt * static_cast<double>(w[j]));
      if (kBias) p = p + b[j];
      const double pd = p;
      const double q = (pd * kTwoOverPi + kMagic) - kMagic;  // round(p * 2 / pi)
      const double m = ((q + 0.5) * 0.25 - 0.5 + kMagic) - kMagic;  // floor(q / 4): (q + 0.5) / 4 is never a half
      const double n = q - 4.0 * m;  // the quadrant, 0..3: cos(r + n pi/2), sin(r + n pi/2)
      const double r = (((pd - q * kP1) - q * kP2) - q * kP3) - q * kP4 - q * kP5;  // |r| <= pi/4 + ulp
      const double z = r * r;
      // Cephes sinf / cosf minimax polynomials on [-pi/4, pi/4] (float accuracy), evaluated in float64
      const double sr = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
      const double cr = 1.0 - 0.5 * z +
                        z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
      const bool odd = n == 1.0 || n == 3.0;
      const double cs = odd ? sr : cr;
      oc[j] = static_cast<float>(n == 1.0 || n == 2.0 ? -cs : cs);
      if (kSin) {
        const double sn = odd ? cr : sr;
        os[j] = static_cast<float>(n >= 2.0 ? -sn : sn);
      }
    }
  }
}

inline void encode_block(const TimeEncodeArgs& A, int64_t i0, int64_t i1) {
  if (A.out_sin) {
    A.b ? encode_rows<true, true>(A, i0, i1) : encode_rows<true, false>(A, i0, i1);
  } else {
    A.b ? encode_rows<false, true>(A, i0, i1) : encode_rows<false, false>(A, i0, i1);
  }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("avx2,fma"), flatten)) void encode_block_avx2(const TimeEncodeArgs& A, int64_t i0, int64_t i1) {
  encode_block(A, i0, i1);
}
#define HN_TE_AVX2 1
#endif

}  // namespace

void time_encode_cpu(const TimeEncodeArgs& A, int num_threads) {
  HN_CHECK(A.rows >= 0 && A.dim >= 0, "time_encode: rows and dim must be >= 0");
  if (A.rows == 0 || A.dim == 0) return;
  HN_CHECK(A.dt && A.w && A.out_cos, "time_encode: null dt, weight or output");
  TimeEncodeArgs B = A;  // the bounds of |w| and |b| (a row's phases are below |dt| max|w| + max|b| + rounding)
  for (int64_t j = 0; j < A.dim; ++j) {
    B.max_w = std::fmax(B.max_w, std::fabs(static_cast<double>(A.w[j])));
    if (A.b) B.max_b = std::fmax(B.max_b, std::fabs(static_cast<double>(A.b[j])));
  }
  B.max_b += 1.0;  // room for the float32 roundings of the phase
  const int64_t blocks = (A.rows + kBlock - 1) / kBlock;
  // a small call stays on one thread: waking the others costs more than the work
  const int64_t want = A.rows * A.dim < (1 << 15) ? 1 : resolve_threads(num_threads);
  const int threads = static_cast<int>(want < blocks ? want : blocks);
#ifdef HN_TE_AVX2
  const bool avx2 = cpu_avx2();
#endif
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    const int64_t i0 = bi * kBlock, i1 = i0 + kBlock < A.rows ? i0 + kBlock : A.rows;
#ifdef HN_TE_AVX2
    if (avx2) {
      encode_block_avx2(B, i0, i1);
      continue;
    }
#endif
    encode_block(B, i0, i1);
  }
}

}  // namespace hardneg
