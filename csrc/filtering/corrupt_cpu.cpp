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
      for (int side = 0; side < 2; ++side) {  // 0: heads of (r, t) in kh; 1: tails of (h, r) in kt
        if (A.side_mode == (side == 0 ? 0 : 1)) continue;  // that side is never corrupted
        for (int g = 0; g < G; ++g) {
          S[g].base[side] = side == 0 ? (S[g].r * E + S[g].t) * E : (S[g].h * R + S[g].r) * E;
          lo[g] = S[g].base[side];
          hi[g] = S[g].base[side] + E;
        }
        const int64_t* keys = side == 0 ? A.K.kh : A.K.kt;
        lockstep_lower_bound<G>(keys, A.K.m, lo, out_lo);
        lockstep_lower_bound<G>(keys, A.K.m, hi, out_hi);
        for (int g = 0; g < G; ++g) {
          S[g].kb[side] = out_lo[g];
          S[g].ke[side] = out_hi[g];
        }
      }
    }
    for (int g = 0; g < gn; ++g)
      for (int64_t j = 0; j < A.n; ++j) corrupt_draw(A, S[g], b0 + g, j);
  }
}

}  // namespace hardneg
