// corrupt, CPU: one Philox stream per (row, draw), so the result does not depend on the thread count and
// equals the CUDA kernel's (same header, same stream).
#include "filtering/filtering.h"

namespace hardneg {

void corrupt_cpu(const CorruptArgs& A, int threads) {
  const int64_t total = A.B * A.n;
#pragma omp parallel for schedule(dynamic, 256) num_threads(resolve_threads(threads))
  for (int64_t i = 0; i < total; ++i) corrupt_one(A, i / A.n, i % A.n);
}

}  // namespace hardneg
