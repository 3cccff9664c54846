// enclosing_subgraphs on CPU: one pair per OpenMP iteration (dynamic chunks: a pair next to a hub costs 100x a
// typical one), each thread with its own zeroed 6 x N int32 scratch (enclosing_subgraphs.h).
#include <vector>

#include "subgraph/enclosing_subgraphs.h"

namespace hardneg {

void enclosing_subgraphs_cpu(const SubgraphArgs& A, bool fill, int num_threads) {
  if (A.num_pairs == 0) return;
  const int threads = resolve_threads(num_threads);
#pragma omp parallel num_threads(threads)
  {
    std::vector<int32_t> scratch(static_cast<size_t>(kSubgraphScratch) * A.num_nodes, 0);
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < A.num_pairs; ++i) enclosing_subgraph_one(A, i, scratch.data(), fill);
  }
}

}  // namespace hardneg
