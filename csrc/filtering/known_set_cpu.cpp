// KnownSet queries on CPU: binary searches over the sorted packed keys, OpenMP over queries.
#include <algorithm>

#include "filtering/filtering.h"

namespace hardneg {

// Membership is bound by memory latency (a binary search is a chain of dependent cache misses), so queries
// are searched 16 at a time in lockstep with branchless steps: the 16 independent loads of each step overlap.
// Measured 884 ms -> see bench/RESULTS.md for 10M queries against WN18RR on 2 cores.
void known_contains_cpu(const KnownView& K, const int64_t* keys, int64_t B, int width, const double* before,
                        bool inclusive, uint8_t* out, int threads) {
  constexpr int G = 16;
  const int64_t groups = (B + G - 1) / G;
  const int64_t* kt = K.kt;
  const int64_t n = K.m;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(threads))
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t i0 = gi * G;
    const int g_n = static_cast<int>(std::min<int64_t>(G, B - i0));
    int64_t key[G], base[G];
    for (int g = 0; g < G; ++g) {
      const int64_t i = i0 + (g < g_n ? g : 0);
      const int64_t* k = keys + i * width;
      key[g] = (k[0] * K.R + (width == 3 ? k[1] : 0)) * K.E + k[width - 1];
      base[g] = 0;
    }
    int64_t len = n;
    while (len > 1) {
      const int64_t half = len >> 1;
      for (int g = 0; g < G; ++g) base[g] = kt[base[g] + half] < key[g] ? base[g] + half : base[g];
      len -= half;
    }
    for (int g = 0; g < g_n; ++g) {
      const int64_t p = base[g] + (n > 0 && kt[base[g]] < key[g] ? 1 : 0);
      bool hit = p < n && kt[p] == key[g];
      const int64_t i = i0 + g;
      if (hit && before) hit = inclusive ? K.first_time[p] <= before[i] : K.first_time[p] < before[i];
      out[i] = hit ? 1 : 0;
    }
  }
}

void known_mask_cpu(const KnownView& K, int side, const int64_t* anchor, const int64_t* cand, int64_t B, int64_t n,
                    uint8_t* out, int threads) {
  const int64_t* arr = side == 0 ? K.kt : K.kh;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(threads))
  for (int64_t i = 0; i < B; ++i) {
    int64_t b, e;
    anchor_range(K, side, anchor[2 * i], anchor[2 * i + 1], &b, &e);
    const int64_t base = side == 0 ? (anchor[2 * i] * K.R + anchor[2 * i + 1]) * K.E
                                   : (anchor[2 * i] * K.E + anchor[2 * i + 1]) * K.E;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t c = cand[i * n + j];
      out[i * n + j] = (b < e && sorted_contains(arr + b, e - b, base + c)) ? 1 : 0;
    }
  }
}

void known_exclusion_count_cpu(const KnownView& K, int side, const int64_t* anchor, int64_t B, int64_t* begin,
                               int64_t* count, int threads) {
#pragma omp parallel for schedule(static) num_threads(resolve_threads(threads))
  for (int64_t i = 0; i < B; ++i) {
    int64_t b, e;
    anchor_range(K, side, anchor[2 * i], anchor[2 * i + 1], &b, &e);
    begin[i] = b;
    count[i] = e - b;
  }
}

void known_exclusion_fill_cpu(const KnownView& K, int side, const int64_t* anchor, int64_t B, const int64_t* begin,
                              const int64_t* indptr, int64_t* indices, int threads) {
  const int64_t* arr = side == 0 ? K.kt : K.kh;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(threads))
  for (int64_t i = 0; i < B; ++i) {
    const int64_t base = side == 0 ? (anchor[2 * i] * K.R + anchor[2 * i + 1]) * K.E
                                   : (anchor[2 * i] * K.E + anchor[2 * i + 1]) * K.E;
    for (int64_t j = indptr[i]; j < indptr[i + 1]; ++j) indices[j] = arr[begin[i] + (j - indptr[i])] - base;
  }
}

}  // namespace hardneg
