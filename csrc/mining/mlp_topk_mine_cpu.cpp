// mlp_topk_mine, CPU: topk_mine's scan and bounded selection with the kMlp tile scores. The 6x16 micro-kernel
// (mlp_panel in common/score_tile.cpp, both ISA builds) accumulates w_k * relu(q_k + c_k) over k without storing
// the hidden layer; mining_scan overwrites the offset pairs of each (row, tile) with their exact
// w · relu(q + c + o) after masking the excluded ids (an excluded pair stays -inf), so one pass ranks everything.
//
// With a candidate index (many ids sharing a row, e.g. the identical embeddings of nodes without history), the
// distinct rows are scored once per query into a [rows, U] block (at most ~32 MiB, query blocks otherwise), and each
// query's ids are then walked in order: the score of its row, exclusions, the offset pairs rescored exactly, and
// the same bounded selection.
#include "mining/mlp_topk_mine_cpu.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "mining/topk_mine_cpu.h"
#include "mining/topk_select.h"

namespace hardneg {
namespace {

// Stores each row's tile scores into a dense [rows, U] block (rows of the current query block).
struct StoreRows {
  float* out;
  int64_t U, r0;
  void row(int64_t row, int64_t /*chunk*/, const float* s, int64_t t0, int nt) {
    std::copy(s, s + nt, out + (row - r0) * U + t0);
  }
};

inline float mlp_exact(const float* q, const float* c, const float* o, const float* w, int d) {
  float acc = 0.f;
  for (int k = 0; k < d; ++k) acc += w[k] * std::max(q[k] + c[k] + o[k], 0.f);
  return acc;
}

}  // namespace

void mlp_topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, const int64_t* candidate_index,
                       int64_t num_ids, float* out_scores, int64_t* out_ids) {
  HN_CHECK(P.metric == kMlp, "mlp_topk_mine: the problem's metric must be kMlp");
  HN_CHECK(P.weight != nullptr, "mlp_topk_mine: null weight pointer");
  HN_CHECK(P.off_ptr == nullptr || (P.off_idx != nullptr && P.off_val != nullptr),
           "mlp_topk_mine: offset_indptr needs offset_indices and offset_values");
  if (candidate_index == nullptr) {
    topk_mine_cpu(P, k, tie_break, out_scores, out_ids);
    return;
  }
  HN_CHECK(k >= 1, "mlp_topk_mine: k must be >= 1");
  HN_CHECK(num_ids >= 0 && (P.N >= 1 || num_ids == 0), "mlp_topk_mine: candidate_index needs candidate rows");
  const float ninf = -std::numeric_limits<float>::infinity();
  const int threads = resolve_threads(P.num_threads);
  auto cons = topk_select::make_consumer(P.B, 1, k, num_ids, tie_break);
  const int64_t U = std::max<int64_t>(P.N, 1);
  const int64_t block = std::max<int64_t>(1, (int64_t{8} << 20) / U);  // rows of a [rows, U] float block (32 MiB)
  std::vector<float> S(static_cast<size_t>(std::min(block, std::max<int64_t>(P.B, 1)) * U));
  constexpr int64_t kTile = 1024;
  for (int64_t r0 = 0; r0 < P.B; r0 += block) {
    const int64_t nr = std::min(block, P.B - r0);
    MiningProblem P1 = P;  // the distinct rows, no exclusions or offsets (those are per id)
    P1.q = P.q + r0 * P.ldq;
    P1.B = nr;
    P1.ex_ptr = P1.ex_idx = nullptr;
    P1.off_ptr = P1.off_idx = nullptr;
    P1.off_val = nullptr;
    StoreRows store{S.data(), U, 0};
    mining_scan(P1, store);
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> tile(kTile);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < nr; ++r) {
        const int64_t row = r0 + r;
        const float* srow = S.data() + r * U;
        const float* qr = P.q + row * P.ldq;
        int64_t ep = P.ex_ptr ? P.ex_ptr[row] : 0, ee = P.ex_ptr ? P.ex_ptr[row + 1] : 0;
        int64_t op = P.off_ptr ? P.off_ptr[row] : 0, oe = P.off_ptr ? P.off_ptr[row + 1] : 0;
        for (int64_t t0 = 0; t0 < num_ids; t0 += kTile) {
          const int nt = static_cast<int>(std::min(kTile, num_ids - t0));
          const int64_t t1 = t0 + nt;
          for (int j = 0; j < nt; ++j) tile[j] = srow[candidate_index[t0 + j]];
          for (; op < oe && P.off_idx[op] < t1; ++op) {  // before the exclusions: an excluded pair ends at -inf
            const int64_t id = P.off_idx[op];
            tile[id - t0] = mlp_exact(qr, P.c + candidate_index[id] * P.ldc, P.off_val + op * P.d, P.weight, P.d);
          }
          for (; ep < ee && P.ex_idx[ep] < t1; ++ep) tile[P.ex_idx[ep] - t0] = ninf;
          cons.row(row, 0, tile.data(), t0, nt);
        }
      }
    }
  }
  topk_select::write_rows(cons, P.B, k, threads, out_scores, out_ids);
}

}  // namespace hardneg
