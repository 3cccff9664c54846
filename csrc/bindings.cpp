// The only PYBIND11_MODULE. Tensors cross as data_ptr() integers: Python validates shapes, dtypes and devices
// and allocates outputs with torch; C++ re-checks what would make it read out of bounds and throws
// std::invalid_argument (-> ValueError). The GIL is released around every kernel.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "common/common.h"
#include "common/score_tile.h"
#include "mining/sample_by_score_cpu.h"
#include "mining/topk_mine_cpu.h"

#ifdef HARDNEG_WITH_CUDA
#include "cuda_api.h"
#endif

namespace py = pybind11;
using namespace hardneg;

template <class T>
static T* P(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

static MiningProblem make_problem(std::uintptr_t q, int64_t B, int64_t ldq, std::uintptr_t c, int64_t N,
                                  int64_t ldc, int64_t d, int64_t metric, std::uintptr_t ex_ptr,
                                  std::uintptr_t ex_idx, int num_threads, const char* op) {
  HN_CHECK(B >= 0 && N >= 0, std::string(op) + ": B and N must be >= 0");
  HN_CHECK(d >= 1, std::string(op) + ": d must be >= 1");
  HN_CHECK(ldq >= d && ldc >= d, std::string(op) + ": row strides must be >= d");
  HN_CHECK(metric >= kDot && metric <= kRotate, std::string(op) + ": unknown metric code");
  HN_CHECK((q != 0 || B == 0) && (c != 0 || N == 0), std::string(op) + ": null data pointer");
  HN_CHECK((ex_ptr == 0) == (ex_idx == 0) || ex_ptr != 0, std::string(op) + ": exclude needs indptr");
  MiningProblem Pr;
  Pr.q = P<const float>(q);
  Pr.B = B;
  Pr.ldq = ldq;
  Pr.c = P<const float>(c);
  Pr.N = N;
  Pr.ldc = ldc;
  Pr.d = static_cast<int>(d);
  Pr.metric = static_cast<int>(metric);
  Pr.ex_ptr = ex_ptr ? P<const int64_t>(ex_ptr) : nullptr;
  Pr.ex_idx = ex_ptr ? P<const int64_t>(ex_idx) : nullptr;
  Pr.num_threads = num_threads;
  return Pr;
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "hardneg compiled core (C++/OpenMP, optional CUDA)";

  m.def("build_info", []() {
    py::dict d;
#ifdef HARDNEG_WITH_CUDA
    d["cuda"] = true;
#else
    d["cuda"] = false;
#endif
    d["cpu_isa"] = std::string(tile_kernels().isa);
    d["omp_max_threads"] = omp_max_threads();
#if defined(__VERSION__)
    d["compiler"] = std::string(__VERSION__);
#endif
    return d;
  });

  m.def(
      "topk_mine_cpu",
      [](std::uintptr_t q, int64_t B, int64_t ldq, std::uintptr_t c, int64_t N, int64_t ldc, int64_t d,
         int64_t metric, int64_t k, std::uintptr_t ex_ptr, std::uintptr_t ex_idx, std::uintptr_t out_scores,
         std::uintptr_t out_ids, int num_threads) {
        MiningProblem Pr = make_problem(q, B, ldq, c, N, ldc, d, metric, ex_ptr, ex_idx, num_threads, "topk_mine");
        HN_CHECK(k >= 1, "topk_mine: k must be >= 1");
        py::gil_scoped_release nogil;
        topk_mine_cpu(Pr, k, P<float>(out_scores), P<int64_t>(out_ids));
      },
      py::arg("q"), py::arg("B"), py::arg("ldq"), py::arg("c"), py::arg("N"), py::arg("ldc"), py::arg("d"),
      py::arg("metric"), py::arg("k"), py::arg("ex_ptr"), py::arg("ex_idx"), py::arg("out_scores"),
      py::arg("out_ids"), py::arg("num_threads") = 0);

  m.def(
      "sample_by_score_cpu",
      [](std::uintptr_t q, int64_t B, int64_t ldq, std::uintptr_t c, int64_t N, int64_t ldc, int64_t d,
         int64_t metric, int64_t n, int64_t weighting, double inv_temp, bool replacement, uint64_t seed,
         std::uintptr_t ex_ptr, std::uintptr_t ex_idx, std::uintptr_t out_ids, std::uintptr_t out_log_prob,
         int num_threads) {
        MiningProblem Pr =
            make_problem(q, B, ldq, c, N, ldc, d, metric, ex_ptr, ex_idx, num_threads, "sample_by_score");
        HN_CHECK(n >= 1, "sample_by_score: num_samples must be >= 1");
        py::gil_scoped_release nogil;
        sample_by_score_cpu(Pr, n, static_cast<int>(weighting), static_cast<float>(inv_temp), replacement, seed,
                            P<int64_t>(out_ids), P<float>(out_log_prob));
      },
      py::arg("q"), py::arg("B"), py::arg("ldq"), py::arg("c"), py::arg("N"), py::arg("ldc"), py::arg("d"),
      py::arg("metric"), py::arg("n"), py::arg("weighting"), py::arg("inv_temp"), py::arg("replacement"),
      py::arg("seed"), py::arg("ex_ptr"), py::arg("ex_idx"), py::arg("out_ids"), py::arg("out_log_prob"),
      py::arg("num_threads") = 0);

#ifdef HARDNEG_WITH_CUDA
  m.def("cuda_device_count", []() {
    int n = 0;
    int err = cuda::device_count(&n);
    return py::make_tuple(n, err, cuda::error_string(err));
  });
#endif
}
