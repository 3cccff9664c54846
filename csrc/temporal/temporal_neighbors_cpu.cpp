// temporal_neighbors, CPU: lockstep searches and per-query slots, as in temporal_cpu.h.
#include <algorithm>
#include <cstring>
#include <limits>

#include "temporal/temporal_cpu.h"

namespace hardneg {

// "recent" slots on the CPU (recent_runs, then validity and padding in bulk): the outputs of tn_query_slots.
template <class T>
static void recent_slots(const TQueryArgs& A, int64_t i, const int64_t* lo, const int64_t* hi, T pad) {
  const int64_t k = A.k;
  int64_t* __restrict__ on = A.out_nbr + i * k;
  int64_t* __restrict__ oe = A.out_eid + i * k;
  T* __restrict__ ot = static_cast<T*>(A.out_time) + i * k;
  uint8_t* __restrict__ ov = A.out_valid + i * k;
  const int64_t j = recent_runs<T>(A, lo, hi, [&](int64_t j0, const TLevel<T>& L, int64_t top, int64_t m) {
    const int32_t* __restrict__ nb = L.nbr + top;
    const int64_t* __restrict__ eb = L.eid + top;
    const T* __restrict__ tb = L.time + top;
    for (int64_t q = 0; q < m; ++q) on[j0 + q] = nb[-q];
    for (int64_t q = 0; q < m; ++q) oe[j0 + q] = eb[-q];
    for (int64_t q = 0; q < m; ++q) ot[j0 + q] = tb[-q];
  });
  std::memset(ov, 1, static_cast<size_t>(j));
  std::memset(ov + j, 0, static_cast<size_t>(k - j));
  for (int64_t q = j; q < k; ++q) {
    on[q] = -1;
    oe[q] = -1;
    ot[q] = pad;
  }
}

template <class T>
static void run(const TQueryArgs& A, T pad, int threads) {
  if (A.strategy == 0) {
    tn_cpu_run<T>(A, threads, [&](int64_t i, const int64_t* lo, const int64_t* hi, int64_t) {
      recent_slots<T>(A, i, lo, hi, pad);
    });
    return;
  }
  tn_cpu_run<T>(A, threads, [&](int64_t i, const int64_t* lo, const int64_t* hi, int64_t total) {
    tn_query_slots<T>(A, i, lo, hi, total, pad);
  });
}

static void entry(const TQueryArgs& A, bool int_time, int threads) {
  if (int_time)
    run<int64_t>(A, std::numeric_limits<int64_t>::min(), threads);
  else
    run<double>(A, -std::numeric_limits<double>::infinity(), threads);
}

// The same code compiled for AVX2 besides the baseline (common.h): the uniform draws' rank sort and duplicate
// scan vectorise (a k = 20 streaming call ~20 % faster; bench/RESULTS.md).
HN_CPU_ENTRY(temporal_neighbors_cpu, TQueryArgs)

}  // namespace hardneg
