// Mining family bindings: the CPU kernels of topk_mine, mlp_topk_mine and sample_by_score (their GPU kernels are
// Triton).
#include <string>

#include "bindings.h"
#include "common/mining_driver.h"
#include "mining/mlp_topk_mine_cpu.h"
#include "mining/sample_by_score_cpu.h"
#include "mining/topk_mine_cpu.h"

namespace hardneg {
namespace {

MiningProblem make_problem(const char* op, std::uintptr_t query, int64_t num_queries, int64_t query_stride,
                           std::uintptr_t candidates, int64_t num_candidates, int64_t candidate_stride, int64_t dim,
                           int64_t metric, std::uintptr_t exclude_indptr, std::uintptr_t exclude_indices,
                           int num_threads) {
  const std::string o(op);
  HN_CHECK(num_queries >= 0 && num_candidates >= 0, o + ": num_queries and num_candidates must be >= 0");
  HN_CHECK(dim >= 1, o + ": dim must be >= 1");
  HN_CHECK(query_stride >= dim && candidate_stride >= dim, o + ": row strides must be >= dim");
  HN_CHECK(metric >= kDot && metric <= kRotate, o + ": unknown metric code");
  HN_CHECK((query != 0 || num_queries == 0) && (candidates != 0 || num_candidates == 0), o + ": null data pointer");
  HN_CHECK(exclude_indices == 0 || exclude_indptr != 0, o + ": exclude_indices needs exclude_indptr");
  MiningProblem P;
  P.q = ptr<const float>(query);
  P.B = num_queries;
  P.ldq = query_stride;
  P.c = ptr<const float>(candidates);
  P.N = num_candidates;
  P.ldc = candidate_stride;
  P.d = static_cast<int>(dim);
  P.metric = static_cast<int>(metric);
  P.ex_ptr = ptr<const int64_t>(exclude_indptr);
  P.ex_idx = exclude_indptr ? ptr<const int64_t>(exclude_indices) : nullptr;
  P.num_threads = num_threads;
  return P;
}

}  // namespace

void register_mining(py::module_& m) {
  m.def(
      "topk_mine_cpu",
      [](std::uintptr_t query, int64_t num_queries, int64_t query_stride, std::uintptr_t candidates,
         int64_t num_candidates, int64_t candidate_stride, int64_t dim, int64_t metric, int64_t k,
         std::uintptr_t exclude_indptr, std::uintptr_t exclude_indices, std::uintptr_t out_scores,
         std::uintptr_t out_ids, int num_threads, std::uintptr_t tie_break) {
        const MiningProblem P = make_problem("topk_mine", query, num_queries, query_stride, candidates,
                                             num_candidates, candidate_stride, dim, metric, exclude_indptr,
                                             exclude_indices, num_threads);
        py::gil_scoped_release nogil;  // the kernel checks k itself
        topk_mine_cpu(P, k, ptr<const int64_t>(tie_break), ptr<float>(out_scores), ptr<int64_t>(out_ids));
      },
      py::arg("query"), py::arg("num_queries"), py::arg("query_stride"), py::arg("candidates"),
      py::arg("num_candidates"), py::arg("candidate_stride"), py::arg("dim"), py::arg("metric"), py::arg("k"),
      py::arg("exclude_indptr"), py::arg("exclude_indices"), py::arg("out_scores"), py::arg("out_ids"),
      py::arg("num_threads") = 0, py::arg("tie_break") = 0);

  m.def(
      "mlp_topk_mine_cpu",
      [](std::uintptr_t query, int64_t num_queries, int64_t query_stride, std::uintptr_t candidates,
         int64_t num_candidates, int64_t candidate_stride, int64_t dim, std::uintptr_t weight, int64_t k,
         std::uintptr_t exclude_indptr, std::uintptr_t exclude_indices, std::uintptr_t offset_indptr,
         std::uintptr_t offset_indices, std::uintptr_t offset_values, std::uintptr_t candidate_index,
         int64_t num_ids, std::uintptr_t out_scores, std::uintptr_t out_ids, int num_threads,
         std::uintptr_t tie_break) {
        MiningProblem P = make_problem("mlp_topk_mine", query, num_queries, query_stride, candidates,
                                       num_candidates, candidate_stride, dim, kDot, exclude_indptr, exclude_indices,
                                       num_threads);
        P.metric = kMlp;
        P.weight = ptr<const float>(weight);
        P.off_ptr = ptr<const int64_t>(offset_indptr);
        P.off_idx = ptr<const int64_t>(offset_indices);
        P.off_val = ptr<const float>(offset_values);
        py::gil_scoped_release nogil;  // the kernel checks k, the weights and the offsets itself
        mlp_topk_mine_cpu(P, k, ptr<const int64_t>(tie_break), ptr<const int64_t>(candidate_index), num_ids,
                          ptr<float>(out_scores), ptr<int64_t>(out_ids));
      },
      py::arg("query"), py::arg("num_queries"), py::arg("query_stride"), py::arg("candidates"),
      py::arg("num_candidates"), py::arg("candidate_stride"), py::arg("dim"), py::arg("weight"), py::arg("k"),
      py::arg("exclude_indptr"), py::arg("exclude_indices"), py::arg("offset_indptr"), py::arg("offset_indices"),
      py::arg("offset_values"), py::arg("candidate_index"), py::arg("num_ids"), py::arg("out_scores"),
      py::arg("out_ids"),
      py::arg("num_threads") = 0, py::arg("tie_break") = 0);

  m.def(
      "sample_by_score_cpu",
      [](std::uintptr_t query, int64_t num_queries, int64_t query_stride, std::uintptr_t candidates,
         int64_t num_candidates, int64_t candidate_stride, int64_t dim, int64_t metric, int64_t num_samples,
         int64_t weighting, double inv_temp, bool replacement, uint64_t seed, std::uintptr_t exclude_indptr,
         std::uintptr_t exclude_indices, std::uintptr_t out_ids, std::uintptr_t out_log_prob, int num_threads) {
        const MiningProblem P = make_problem("sample_by_score", query, num_queries, query_stride, candidates,
                                             num_candidates, candidate_stride, dim, metric, exclude_indptr,
                                             exclude_indices, num_threads);
        py::gil_scoped_release nogil;  // the kernel checks num_samples, weighting and inv_temp itself
        sample_by_score_cpu(P, num_samples, static_cast<int>(weighting), static_cast<float>(inv_temp), replacement,
                            seed, ptr<int64_t>(out_ids), ptr<float>(out_log_prob));
      },
      py::arg("query"), py::arg("num_queries"), py::arg("query_stride"), py::arg("candidates"),
      py::arg("num_candidates"), py::arg("candidate_stride"), py::arg("dim"), py::arg("metric"),
      py::arg("num_samples"), py::arg("weighting"), py::arg("inv_temp"), py::arg("replacement"), py::arg("seed"),
      py::arg("exclude_indptr"), py::arg("exclude_indices"), py::arg("out_ids"), py::arg("out_log_prob"),
      py::arg("num_threads") = 0);
}

}  // namespace hardneg
