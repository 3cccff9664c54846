#pragma once
#include <cstdint>

#include "common/mining_driver.h"

namespace hardneg {
// scores/ids: [B, k]; rows sorted by (score desc, id asc); padded with (-inf, -1).
void topk_mine_cpu(const MiningProblem& P, int64_t k, float* out_scores, int64_t* out_ids);
}  // namespace hardneg
