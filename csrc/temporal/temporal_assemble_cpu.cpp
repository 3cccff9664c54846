// temporal_assemble, CPU: lockstep searches and per-query slots, as in temporal_cpu.h.
#include <algorithm>
#include <cstring>

#include "temporal/temporal_assemble.h"
#include "temporal/temporal_cpu.h"

namespace hardneg {

// "recent" without features on the CPU (what TGN / TGAT read every batch): recent_runs, then validity and
// padding in bulk; the outputs of ta_slots.
template <class T>
static void recent_slots(const TAssembleArgs& A, int64_t i, const int64_t* lo, const int64_t* hi) {
  const TQueryArgs& Q = A.q;
  const int64_t k = Q.k;
  int64_t* __restrict__ on = Q.out_nbr + i * k;
  int64_t* __restrict__ oe = Q.out_eid ? Q.out_eid + i * k : nullptr;
  float* __restrict__ od = A.out_dt + i * k;
  uint8_t* __restrict__ ov = Q.out_valid + i * k;
  const T* et = static_cast<const T*>(A.event_times ? A.event_times : Q.times);
  const double te = static_cast<double>(et[i]);
  const int64_t j = recent_runs<T>(Q, lo, hi, [&](int64_t j0, const TLevel<T>& L, int64_t top, int64_t m) {
    const int32_t* __restrict__ nb = L.nbr + top;
    const T* __restrict__ tb = L.time + top;
    for (int64_t q = 0; q < m; ++q) on[j0 + q] = nb[-q];
    for (int64_t q = 0; q < m; ++q) od[j0 + q] = static_cast<float>(te - static_cast<double>(tb[-q]));
    if (oe)
      for (int64_t q = 0; q < m; ++q) oe[j0 + q] = L.eid[top - q];
  });
  std::memset(ov, 1, static_cast<size_t>(j));
  std::memset(ov + j, 0, static_cast<size_t>(k - j));
  for (int64_t q = j; q < k; ++q) {
    on[q] = -1;
    od[q] = 0.0f;
    if (oe) oe[q] = -1;
  }
}

template <class T>
static void run(const TAssembleArgs& A, int threads) {
  if (A.q.strategy == 0 && A.features == nullptr) {
    tn_cpu_run<T>(A.q, threads, [&](int64_t i, const int64_t* lo, const int64_t* hi, int64_t) {
      recent_slots<T>(A, i, lo, hi);
    });
    return;
  }
  tn_cpu_run<T>(A.q, threads, [&](int64_t i, const int64_t* lo, const int64_t* hi, int64_t total) {
    ta_slots<T>(A, i, lo, hi, total);
  });
}

static void entry(const TAssembleArgs& A, bool int_time, int threads) {
  if (int_time)
    run<int64_t>(A, threads);
  else
    run<double>(A, threads);
}

HN_CPU_ENTRY(temporal_assemble_cpu, TAssembleArgs)  // an AVX2+FMA copy besides the baseline (common.h)

}  // namespace hardneg
