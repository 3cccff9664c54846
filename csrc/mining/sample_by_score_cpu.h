#pragma once
#include <cstdint>

#include "common/mining_driver.h"

namespace hardneg {
// ids/log_prob: [B, n]. weighting 0 = softmax(score/T), 1 = softplus(score)^(1/T).
void sample_by_score_cpu(const MiningProblem& P, int64_t n, int weighting, float inv_temp, bool replacement,
                         uint64_t seed, int64_t* out_ids, float* out_log_prob);
}  // namespace hardneg
