// topk_mine, CPU: mining_scan (shared tiling) + the bounded selection of mining/topk_select.h per (row, chunk).
// A tile is first tested against the heap root's score 16 lanes at a time, so after the first few tiles almost no
// element reaches the heap. Chunks are merged per row at the end with the same total order.
#include "mining/topk_mine_cpu.h"

#include "common/mining_driver.h"
#include "mining/topk_select.h"

namespace hardneg {

void topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, float* out_scores,
                   int64_t* out_ids) {
  HN_CHECK(k >= 1, "topk_mine: k must be >= 1");
  HN_CHECK(P.d >= 1 || P.N == 0, "topk_mine: d must be >= 1");
  HN_CHECK(P.metric >= kDot && P.metric <= kMlp, "topk_mine: unknown metric code");
  HN_CHECK(P.metric != kMlp || P.weight != nullptr, "mlp_topk_mine: null weight pointer");
  HN_CHECK(P.off_ptr == nullptr || P.metric == kMlp, "topk_mine: offsets need the kMlp metric");
  HN_CHECK(P.metric != kRotate || P.d % 2 == 0, "topk_mine: metric 'rotate' needs an even d");
  auto cons = topk_select::make_consumer(P.B, P.num_chunks(), k, P.N, tie_break);
  mining_scan(P, cons);
  topk_select::write_rows(cons, P.B, k, resolve_threads(P.num_threads), out_scores, out_ids);
}

}  // namespace hardneg
