// temporal_assemble, CPU: lockstep searches and per-query slots, as in temporal_cpu.h.
#include "temporal/temporal_assemble.h"
#include "temporal/temporal_cpu.h"

namespace hardneg {

template <class T>
static void run(const TAssembleArgs& A, int threads) {
  tn_cpu_run<T>(A.q, threads, [&](int64_t i, const int64_t* lo, const int64_t* hi, int64_t total) {
    ta_slots<T>(A, i, lo, hi, total);
  });
}

void temporal_assemble_cpu(const TAssembleArgs& A, bool int_time, int threads) {
  if (int_time)
    run<int64_t>(A, threads);
  else
    run<double>(A, threads);
}

}  // namespace hardneg
