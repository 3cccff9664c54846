// temporal_neighbors, CPU: one query per iteration, OpenMP over queries; binary searches per level.
#include <algorithm>
#include <limits>

#include <omp.h>

#include "temporal/temporal_neighbors.h"

namespace hardneg {

// The lookup is bound by memory latency (random nodes' offsets and runs), so queries are software-pipelined:
// the offsets of query i+16 and the last entries of query i+8 are prefetched while query i is answered.
template <class T>
static void prefetch_query(const TQueryArgs& A, int64_t i, bool runs) {
  const TLevel<T>* Ls = static_cast<const TLevel<T>*>(A.levels);
  const int64_t v = A.nodes[i];
  for (int l = 0; l < A.nl; ++l) {
    if (!runs) {
      __builtin_prefetch(Ls[l].ptr + v);
    } else {
      const int64_t e = Ls[l].ptr[v + 1], b = Ls[l].ptr[v];
      if (e > b) {
        __builtin_prefetch(Ls[l].time + (b + e) / 2);
        __builtin_prefetch(Ls[l].time + e - 1);
        __builtin_prefetch(Ls[l].nbr + e - 1);
        __builtin_prefetch(Ls[l].eid + e - 1);
      }
    }
  }
}

template <class T>
static void run_range(const TQueryArgs& A, T pad, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    if (i + 16 < i1) prefetch_query<T>(A, i + 16, false);
    if (i + 8 < i1) prefetch_query<T>(A, i + 8, true);
    tn_query<T>(A, i, pad);
  }
}

template <class T>
static void run(const TQueryArgs& A, T pad, int threads) {
  // below ~4k queries a parallel region (waking OpenMP threads: ~1 ms measured) costs more than the work
  const int nt = A.B < 4096 ? 1 : static_cast<int>(std::min<int64_t>(resolve_threads(threads), (A.B + 1023) / 1024));
  if (nt <= 1) {
    run_range<T>(A, pad, 0, A.B);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t id = omp_get_thread_num(), n = omp_get_num_threads();
    run_range<T>(A, pad, A.B * id / n, A.B * (id + 1) / n);
  }
}

void temporal_neighbors_cpu(const TQueryArgs& A, bool int_time, int threads) {
  if (int_time)
    run<int64_t>(A, std::numeric_limits<int64_t>::min(), threads);
  else
    run<double>(A, -std::numeric_limits<double>::infinity(), threads);
}

}  // namespace hardneg
