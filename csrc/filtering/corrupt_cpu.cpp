// corrupt, CPU: one Philox stream per (row, draw), so the result does not depend on the thread count and
// equals the CUDA kernel's (same header, same stream).
#include <algorithm>

#include "filtering/filtering.h"

namespace hardneg {

// G lower_bounds in lockstep (branchless): their cache misses overlap instead of forming one long chain.
template <int G>
static void lockstep_lower_bound(const int64_t* a, int64_t n, const int64_t* key, int64_t* out) {
  int64_t base[G];
  for (int g = 0; g < G; ++g) base[g] = 0;
  int64_t len = n;
  while (len > 1) {
    const int64_t half = len >> 1;
    for (int g = 0; g < G; ++g) base[g] = a[base[g] + half] < key[g] ? base[g] + half : base[g];
    len -= half;
  }
  for (int g = 0; g < G; ++g) out[g] = base[g] + (n > 0 && a[base[g]] < key[g] ? 1 : 0);
}

void corrupt_cpu(const CorruptArgs& A, int threads) {
  constexpr int G = 16;
  const int64_t groups = (A.B + G - 1) / G;
#pragma omp parallel for schedule(dynamic, 4) num_threads(resolve_threads(threads))
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t b0 = gi * G;
    const int gn = static_cast<int>(std::min<int64_t>(G, A.B - b0));
    CorruptRow S[G];
    for (int g = 0; g < G; ++g) {
      const int64_t* p = A.pos + (b0 + (g < gn ? g : 0)) * A.width;
      S[g].h = p[0];
      S[g].r = A.width == 3 ? p[1] : 0;
      S[g].t = A.width == 3 ? p[2] : p[1];
      S[g].kb[0] = S[g].ke[0] = S[g].kb[1] = S[g].ke[1] = 0;
    }
    if (A.filtered) {
      const int64_t E = A.K.E, R = A.K.R;
      int64_t lo[G], hi[G], out_lo[G], out_hi[G];
      if (A.side_mode != 1) {  // tails of (h, r) in kt
        for (int g = 0; g < G; ++g) {
          S[g].base[1] = (S[g].h * R + S[g].r) * E;
          lo[g] = S[g].base[1];
          hi[g] = S[g].base[1] + E;
        }
        lockstep_lower_bound<G>(A.K.kt, A.K.m, lo, out_lo);
        lockstep_lower_bound<G>(A.K.kt, A.K.m, hi, out_hi);
        for (int g = 0; g < G; ++g) { S[g].kb[1] = out_lo[g]; S[g].ke[1] = out_hi[g]; }
      }
      if (A.side_mode != 0) {  // heads of (r, t) in kh
        for (int g = 0; g < G; ++g) {
          S[g].base[0] = (S[g].r * E + S[g].t) * E;
          lo[g] = S[g].base[0];
          hi[g] = S[g].base[0] + E;
        }
        lockstep_lower_bound<G>(A.K.kh, A.K.m, lo, out_lo);
        lockstep_lower_bound<G>(A.K.kh, A.K.m, hi, out_hi);
        for (int g = 0; g < G; ++g) { S[g].kb[0] = out_lo[g]; S[g].ke[0] = out_hi[g]; }
      }
    }
    for (int g = 0; g < gn; ++g)
      for (int64_t j = 0; j < A.n; ++j) corrupt_draw(A, S[g], b0 + g, j);
  }
}

}  // namespace hardneg
