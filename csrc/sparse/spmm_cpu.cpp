// spmm on CPU: rows in OpenMP dynamic chunks (degrees are skewed: a hub row costs 1000x a typical one). Each
// row accumulates its entries in CSR order into a register / stack block of the output row and writes it once,
// so the output is never read (no zero fill) and x's rows are the only gathered memory. float32 with an
// AVX2+FMA CPU takes 64-column blocks in eight ymm accumulators (the last block in as many as it needs, its last
// < 8 columns masked), prefetching the x row four entries ahead; float64 and HARDNEG_ISA=generic run the
// portable block loop below.
#include <algorithm>

#include "sparse/spmm.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HN_SPMM_AVX2 1
#else
#define HN_SPMM_AVX2 0
#endif

namespace hardneg {
namespace {

constexpr int64_t kBlock = 64;

// columns [d0, d0 + w) of row r, w <= kBlock
template <class T>
inline void row_block(const SpmmArgs& A, const T* val, const T* x, T* out, int64_t r, int64_t d0, int64_t w) {
  T acc[kBlock];
  for (int64_t j = 0; j < w; ++j) acc[j] = T(0);
  const int64_t D = A.dim;
  for (int64_t p = A.indptr[r]; p < A.indptr[r + 1]; ++p) {
    const T v = val[p];
    const T* xr = x + A.indices[p] * D + d0;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) acc[j] += v * xr[j];
  }
  T* o = out + r * D + d0;
  for (int64_t j = 0; j < w; ++j) o[j] = acc[j];
}

template <class T>
inline void rows_generic(const SpmmArgs& A, int64_t r0, int64_t r1) {
  const T* val = static_cast<const T*>(A.values);
  const T* x = static_cast<const T*>(A.x);
  T* out = static_cast<T*>(A.out);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t d0 = 0; d0 < A.dim; d0 += kBlock) row_block<T>(A, val, x, out, r, d0, std::min(kBlock, A.dim - d0));
}

#if HN_SPMM_AVX2
// columns [d0, d0 + 8·NB + tail) of row r: NB full ymm accumulators and, with TAIL, one masked one for the last
// `tail` (< 8) columns
template <int NB, bool TAIL>
__attribute__((target("avx2,fma"), always_inline)) inline void block_avx2(const SpmmArgs& A, const float* val,
                                                                          const float* x, float* out, int64_t r,
                                                                          int64_t d0, __m256i mask) {
  __m256 acc[NB + 1];
  for (int j = 0; j <= NB; ++j) acc[j] = _mm256_setzero_ps();
  const int64_t D = A.dim, b = A.indptr[r], e = A.indptr[r + 1];
  for (int64_t p = b; p < e; ++p) {
    if (p + 4 < e) {
      const char* nx = reinterpret_cast<const char*>(x + A.indices[p + 4] * D + d0);
      for (int c = 0; c < 32 * (NB + TAIL); c += 64) _mm_prefetch(nx + c, _MM_HINT_T0);
    }
    const float* xr = x + A.indices[p] * D + d0;
    const __m256 v = _mm256_set1_ps(val[p]);
    for (int j = 0; j < NB; ++j) acc[j] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 8 * j), acc[j]);
    if (TAIL) acc[NB] = _mm256_fmadd_ps(v, _mm256_maskload_ps(xr + 8 * NB, mask), acc[NB]);
  }
  float* o = out + r * D + d0;
  for (int j = 0; j < NB; ++j) _mm256_storeu_ps(o + 8 * j, acc[j]);
  if (TAIL) _mm256_maskstore_ps(o + 8 * NB, mask, acc[NB]);
}

template <bool TAIL>
__attribute__((target("avx2,fma"))) void block_any(const SpmmArgs& A, const float* val, const float* x, float* out,
                                                   int64_t r, int64_t d0, int nb, __m256i mask) {
  switch (nb) {
    case 0: return block_avx2<0, TAIL>(A, val, x, out, r, d0, mask);
    case 1: return block_avx2<1, TAIL>(A, val, x, out, r, d0, mask);
    case 2: return block_avx2<2, TAIL>(A, val, x, out, r, d0, mask);
    case 3: return block_avx2<3, TAIL>(A, val, x, out, r, d0, mask);
    case 4: return block_avx2<4, TAIL>(A, val, x, out, r, d0, mask);
    case 5: return block_avx2<5, TAIL>(A, val, x, out, r, d0, mask);
    case 6: return block_avx2<6, TAIL>(A, val, x, out, r, d0, mask);
    case 7: return block_avx2<7, TAIL>(A, val, x, out, r, d0, mask);
    default: return block_avx2<8, TAIL>(A, val, x, out, r, d0, mask);
  }
}

// D in blocks of 64 columns (eight ymm accumulators each), the last block narrower
__attribute__((target("avx2,fma"))) void rows_avx2(const SpmmArgs& A, int64_t r0, int64_t r1) {
  const float* val = static_cast<const float*>(A.values);
  const float* x = static_cast<const float*>(A.x);
  float* out = static_cast<float*>(A.out);
  const int64_t D = A.dim;
  const int64_t last = (D - 1) / kBlock * kBlock, w = D - last;  // the last block's start and width (1..64)
  const int nb = static_cast<int>(w / 8), tail = static_cast<int>(w % 8);
  alignas(32) int32_t m[8];
  for (int j = 0; j < 8; ++j) m[j] = j < tail ? -1 : 0;
  const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t d0 = 0; d0 < last; d0 += kBlock) block_avx2<8, false>(A, val, x, out, r, d0, mask);
    if (tail)
      block_any<true>(A, val, x, out, r, last, nb, mask);
    else
      block_any<false>(A, val, x, out, r, last, nb, mask);
  }
}
#endif

}  // namespace

void spmm_cpu(const SpmmArgs& A, int num_threads) {
  if (A.rows == 0 || A.dim == 0) return;
  const int threads = resolve_threads(num_threads);
  // ~64 rows per chunk, fewer when the matrix is small (every thread gets work)
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(64, A.rows / (8 * threads)));
#if HN_SPMM_AVX2
  const bool avx2 = !A.f64 && cpu_avx2();
#else
  const bool avx2 = false;
#endif
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t c = 0; c < (A.rows + chunk - 1) / chunk; ++c) {
    const int64_t r0 = c * chunk, r1 = std::min(A.rows, r0 + chunk);
#if HN_SPMM_AVX2
    if (avx2) {
      rows_avx2(A, r0, r1);
      continue;
    }
#endif
    if (A.f64)
      rows_generic<double>(A, r0, r1);
    else
      rows_generic<float>(A, r0, r1);
  }
}

int64_t spmm_check_cpu(const SpmmArgs& A, int num_threads) {
  for (int64_t r = 0; r < A.rows; ++r)
    if (A.indptr[r] > A.indptr[r + 1]) return -2;
  int64_t bad = A.nnz;
  const int threads = resolve_threads(num_threads);
#pragma omp parallel for reduction(min : bad) num_threads(threads) schedule(static)
  for (int64_t p = 0; p < A.nnz; ++p)
    if (A.indices[p] < 0 || A.indices[p] >= A.cols) bad = std::min(bad, p);
  return bad == A.nnz ? -1 : bad;
}

}  // namespace hardneg
