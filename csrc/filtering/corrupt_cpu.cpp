// corrupt, CPU: one Philox stream per (row, draw), so the result does not depend on the thread count and
// equals the CUDA kernel's (same header, same stream).
#include "filtering/filtering.h"

namespace hardneg {

void corrupt_cpu(const CorruptArgs& A, int threads) {
#pragma omp parallel for schedule(dynamic, 64) num_threads(resolve_threads(threads))
  for (int64_t b = 0; b < A.B; ++b) {
    const CorruptRow S = corrupt_prepare(A, b);
    for (int64_t j = 0; j < A.n; ++j) corrupt_draw(A, S, b, j);
  }
}

}  // namespace hardneg
