#pragma once
#include <cstdint>

#include "common/mining_driver.h"

namespace hardneg {
// The MLP link decoder's top k: P.metric must be kMlp, P.weight [d] set, and P.off_* either all null or a CSR
// [B+1] of ids sorted and unique per row with one [d] row of off_val each. Output as topk_mine_cpu's.
void mlp_topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, float* out_scores,
                       int64_t* out_ids);
}  // namespace hardneg
