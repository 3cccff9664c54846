// temporal_neighbors, CPU: lockstep searches and per-query slots, as in temporal_cpu.h.
#include <limits>

#include "temporal/temporal_cpu.h"

namespace hardneg {

template <class T>
static void run(const TQueryArgs& A, T pad, int threads) {
  tn_cpu_run<T>(A, threads, [&](int64_t i, const int64_t* lo, const int64_t* hi, int64_t total) {
    tn_query_slots<T>(A, i, lo, hi, total, pad);
  });
}

void temporal_neighbors_cpu(const TQueryArgs& A, bool int_time, int threads) {
  if (int_time)
    run<int64_t>(A, std::numeric_limits<int64_t>::min(), threads);
  else
    run<double>(A, -std::numeric_limits<double>::infinity(), threads);
}

}  // namespace hardneg
