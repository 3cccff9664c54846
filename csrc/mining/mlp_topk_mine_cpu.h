#pragma once
#include <cstdint>

#include "common/mining_driver.h"

namespace hardneg {
// The MLP link decoder's top k: P.metric must be kMlp, P.weight [d] set, and P.off_* either all null or a CSR
// [B+1] of ids sorted and unique per row with one [d] row of off_val each. Output as topk_mine_cpu's.
// candidate_index (may be null): num_ids ids, id j's vector is row candidate_index[j] of P.c (P.N distinct rows,
// each scored once per query); P.ex_* and P.off_* then hold ids in [0, num_ids), tie_break num_ids keys.
void mlp_topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, const int64_t* candidate_index,
                       int64_t num_ids, float* out_scores, int64_t* out_ids);
}  // namespace hardneg
