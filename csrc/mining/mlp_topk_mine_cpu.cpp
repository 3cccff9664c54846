// mlp_topk_mine, CPU: topk_mine's scan and bounded selection with the kMlp tile scores. The 6x16 micro-kernel
// (mlp_panel in common/score_tile.cpp, both ISA builds) accumulates w_k * relu(q_k + c_k) over k without storing
// the hidden layer; mining_scan overwrites the offset pairs of each (row, tile) with their exact
// w · relu(q + c + o) after masking the excluded ids (an excluded pair stays -inf), so one pass ranks everything.
#include "mining/mlp_topk_mine_cpu.h"

#include "mining/topk_mine_cpu.h"

namespace hardneg {

void mlp_topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, float* out_scores,
                       int64_t* out_ids) {
  HN_CHECK(P.metric == kMlp, "mlp_topk_mine: the problem's metric must be kMlp");
  HN_CHECK(P.weight != nullptr, "mlp_topk_mine: null weight pointer");
  HN_CHECK(P.off_ptr == nullptr || (P.off_idx != nullptr && P.off_val != nullptr),
           "mlp_topk_mine: offset_indptr needs offset_indices and offset_values");
  topk_mine_cpu(P, k, tie_break, out_scores, out_ids);
}

}  // namespace hardneg
