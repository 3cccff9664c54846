#pragma once
#include <cstdint>

#include "common/mining_driver.h"

namespace hardneg {
// scores/ids: [B, k]; rows sorted by (score desc, id asc), or with tie_break ([N] keys, may be null) by (score
// desc, tie_break[id] asc, id asc); padded with (-inf, -1).
void topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, float* out_scores,
                   int64_t* out_ids);
}  // namespace hardneg
