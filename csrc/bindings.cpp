// The only PYBIND11_MODULE. Tensors cross as data_ptr() integers: Python validates shapes, dtypes and devices
// and allocates outputs with torch; C++ re-checks what would make it read out of bounds and throws
// std::invalid_argument (-> ValueError). The GIL is released around every kernel.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "common/common.h"
#include "common/score_tile.h"
#include "filtering/filtering.h"
#include "temporal/temporal_neighbors.h"
#include "mining/sample_by_score_cpu.h"
#include "mining/topk_mine_cpu.h"
namespace hardneg { void register_subgraph(pybind11::module_& m); }  // TEMP shim

#ifdef HARDNEG_WITH_CUDA
#include "cuda_api.h"
#endif

namespace py = pybind11;
using namespace hardneg;

namespace hardneg {
void temporal_neighbors_cpu(const TQueryArgs& A, bool int_time, int threads);
}

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

static KnownView make_view(std::uintptr_t kt, std::uintptr_t kh, std::uintptr_t first_time, int64_t m, int64_t E,
                           int64_t R) {
  HN_CHECK(m >= 0 && E >= 1 && R >= 1, "known set: need m >= 0, E >= 1, R >= 1");
  HN_CHECK(kt != 0 && kh != 0, "known set: null key arrays");
  KnownView K;
  K.kt = P<const int64_t>(kt);
  K.kh = P<const int64_t>(kh);
  // each key array is allocated with its fences appended: [keys (m) | keys[::64] (ceil(m/64))]
  K.ft = K.kt + m;
  K.fh = K.kh + m;
  K.first_time = first_time ? P<const double>(first_time) : nullptr;
  K.m = m;
  K.E = E;
  K.R = R;
  return K;
}

static void check_cuda(int err, const char* op) {
#ifdef HARDNEG_WITH_CUDA
  if (err != 0) throw std::runtime_error(std::string(op) + ": CUDA error: " + cuda::error_string(err));
#else
  (void)err;
  (void)op;
#endif
}

static void need_cuda(bool on_cuda, const char* op) {
#ifndef HARDNEG_WITH_CUDA
  if (on_cuda) throw std::invalid_argument(std::string(op) + ": hardneg was built without CUDA kernels");
#else
  (void)on_cuda;
  (void)op;
#endif
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

  // ---- filtering family: one entry per op; `cuda` selects the device kernel (launched on `stream`)
  m.def("known_contains", [](std::uintptr_t kt, std::uintptr_t kh, std::uintptr_t ft, int64_t mm, int64_t E,
                             int64_t R, std::uintptr_t keys, int64_t B, int width, std::uintptr_t before,
                             bool inclusive, std::uintptr_t out, int threads, bool on_cuda, std::uintptr_t stream) {
    HN_CHECK(width == 2 || width == 3, "known_contains: width must be 2 or 3");
    HN_CHECK(!before || ft, "known_contains: 'before' needs a known set built with times");
    KnownView K = make_view(kt, kh, ft, mm, E, R);
    need_cuda(on_cuda, "known_contains");
    py::gil_scoped_release nogil;
#ifdef HARDNEG_WITH_CUDA
    if (on_cuda) {
      check_cuda(cuda::known_contains(K, P<const int64_t>(keys), B, width, before ? P<const double>(before) : nullptr,
                                      inclusive, P<uint8_t>(out), reinterpret_cast<void*>(stream)), "known_contains");
      return;
    }
#endif
    (void)stream;
    known_contains_cpu(K, P<const int64_t>(keys), B, width, before ? P<const double>(before) : nullptr, inclusive,
                       P<uint8_t>(out), threads);
  });
  m.def("known_mask", [](std::uintptr_t kt, std::uintptr_t kh, int64_t mm, int64_t E, int64_t R, int side,
                         std::uintptr_t anchor, std::uintptr_t cand, int64_t B, int64_t n, std::uintptr_t out,
                         int threads, bool on_cuda, std::uintptr_t stream) {
    HN_CHECK(side == 0 || side == 1, "known_mask: side must be 0 (tail) or 1 (head)");
    KnownView K = make_view(kt, kh, 0, mm, E, R);
    need_cuda(on_cuda, "known_mask");
    py::gil_scoped_release nogil;
#ifdef HARDNEG_WITH_CUDA
    if (on_cuda) {
      check_cuda(cuda::known_mask(K, side, P<const int64_t>(anchor), P<const int64_t>(cand), B, n, P<uint8_t>(out),
                                  reinterpret_cast<void*>(stream)), "known_mask");
      return;
    }
#endif
    (void)stream;
    known_mask_cpu(K, side, P<const int64_t>(anchor), P<const int64_t>(cand), B, n, P<uint8_t>(out), threads);
  });
  m.def("known_exclusion_count", [](std::uintptr_t kt, std::uintptr_t kh, int64_t mm, int64_t E, int64_t R, int side,
                                    std::uintptr_t anchor, int64_t B, std::uintptr_t begin, std::uintptr_t count,
                                    int threads, bool on_cuda, std::uintptr_t stream) {
    HN_CHECK(side == 0 || side == 1, "known_exclusion: side must be 0 (tail) or 1 (head)");
    KnownView K = make_view(kt, kh, 0, mm, E, R);
    need_cuda(on_cuda, "known_exclusion");
    py::gil_scoped_release nogil;
#ifdef HARDNEG_WITH_CUDA
    if (on_cuda) {
      check_cuda(cuda::known_exclusion_count(K, side, P<const int64_t>(anchor), B, P<int64_t>(begin), P<int64_t>(count),
                                             reinterpret_cast<void*>(stream)), "known_exclusion");
      return;
    }
#endif
    (void)stream;
    known_exclusion_count_cpu(K, side, P<const int64_t>(anchor), B, P<int64_t>(begin), P<int64_t>(count), threads);
  });
  m.def("known_exclusion_fill", [](std::uintptr_t kt, std::uintptr_t kh, int64_t mm, int64_t E, int64_t R, int side,
                                   std::uintptr_t anchor, int64_t B, std::uintptr_t begin, std::uintptr_t indptr,
                                   std::uintptr_t indices, int threads, bool on_cuda, std::uintptr_t stream) {
    KnownView K = make_view(kt, kh, 0, mm, E, R);
    need_cuda(on_cuda, "known_exclusion");
    py::gil_scoped_release nogil;
#ifdef HARDNEG_WITH_CUDA
    if (on_cuda) {
      check_cuda(cuda::known_exclusion_fill(K, side, P<const int64_t>(anchor), B, P<const int64_t>(begin),
                                            P<const int64_t>(indptr), P<int64_t>(indices),
                                            reinterpret_cast<void*>(stream)), "known_exclusion");
      return;
    }
#endif
    (void)stream;
    known_exclusion_fill_cpu(K, side, P<const int64_t>(anchor), B, P<const int64_t>(begin), P<const int64_t>(indptr),
                             P<int64_t>(indices), threads);
  });
  m.def("corrupt", [](std::uintptr_t pos, int64_t B, int width, int64_t n, int64_t E, int64_t R, int side_mode,
                      std::uintptr_t p_head, std::uintptr_t dh_ptr, std::uintptr_t dh_idx, std::uintptr_t dt_ptr,
                      std::uintptr_t dt_idx, std::uintptr_t kt, std::uintptr_t kh, int64_t mm, int64_t KE, int64_t KR,
                      uint64_t seed, int tries, std::uintptr_t out, std::uintptr_t valid, int threads, bool on_cuda,
                      std::uintptr_t stream) {
    HN_CHECK(width == 2 || width == 3, "corrupt: width must be 2 or 3");
    HN_CHECK(n >= 1 && E >= 1 && R >= 1, "corrupt: need n >= 1, E >= 1, R >= 1");
    HN_CHECK(side_mode >= 0 && side_mode <= 3, "corrupt: bad side mode");
    HN_CHECK(side_mode != 3 || p_head, "corrupt: bernoulli needs head probabilities");
    HN_CHECK(tries >= 1, "corrupt: tries must be >= 1");
    CorruptArgs A;
    A.pos = P<const int64_t>(pos);
    A.B = B;
    A.width = width;
    A.n = n;
    A.E = E;
    A.R = R;
    A.side_mode = side_mode;
    A.p_head = p_head ? P<const float>(p_head) : nullptr;
    A.dom_ptr[0] = dh_ptr ? P<const int64_t>(dh_ptr) : nullptr;
    A.dom_idx[0] = dh_ptr ? P<const int64_t>(dh_idx) : nullptr;
    A.dom_ptr[1] = dt_ptr ? P<const int64_t>(dt_ptr) : nullptr;
    A.dom_idx[1] = dt_ptr ? P<const int64_t>(dt_idx) : nullptr;
    A.filtered = kt != 0;
    if (A.filtered) A.K = make_view(kt, kh, 0, mm, KE, KR);
    A.seed = seed;
    A.tries = tries;
    A.out = P<int64_t>(out);
    A.valid = P<uint8_t>(valid);
    need_cuda(on_cuda, "corrupt");
    py::gil_scoped_release nogil;
#ifdef HARDNEG_WITH_CUDA
    if (on_cuda) {
      check_cuda(cuda::corrupt(A, reinterpret_cast<void*>(stream)), "corrupt");
      return;
    }
#endif
    (void)stream;
    corrupt_cpu(A, threads);
  });

  // ---- temporal family
  m.def("temporal_neighbors", [](std::uintptr_t levels, int nl, std::uintptr_t nodes, std::uintptr_t times, int64_t B,
                                 int64_t k, int strategy, bool inclusive, bool has_window, double window,
                                 uint64_t seed, bool int_time, std::uintptr_t out_nbr, std::uintptr_t out_eid,
                                 std::uintptr_t out_time, std::uintptr_t out_valid, int threads, bool on_cuda,
                                 std::uintptr_t stream, int64_t num_nodes) {
    HN_CHECK(nl >= 0 && nl <= kMaxLevels, "temporal_neighbors: too many levels");
    HN_CHECK(k >= 1, "temporal_neighbors: k must be >= 1");
    HN_CHECK(strategy == 0 || strategy == 1, "temporal_neighbors: strategy must be 0 (recent) or 1 (uniform)");
    HN_CHECK(!has_window || window >= 0, "temporal_neighbors: window must be >= 0");
    TQueryArgs A;
    A.levels = reinterpret_cast<const void*>(levels);
    A.nl = nl;
    A.nodes = P<const int64_t>(nodes);
    A.times = reinterpret_cast<const void*>(times);
    A.B = B;
    A.k = k;
    A.strategy = strategy;
    A.inclusive = inclusive;
    A.has_window = has_window;
    A.window = window;
    A.seed = seed;
    A.out_nbr = P<int64_t>(out_nbr);
    A.out_eid = P<int64_t>(out_eid);
    A.out_time = reinterpret_cast<void*>(out_time);
    A.out_valid = P<uint8_t>(out_valid);
    need_cuda(on_cuda, "temporal_neighbors");
    if (!on_cuda && num_nodes > 0) {  // CPU inputs: range / NaN checks here, one pass, no extra tensors
      const int64_t* nd = P<const int64_t>(nodes);
      for (int64_t i = 0; i < B; ++i)
        if (nd[i] < 0 || nd[i] >= num_nodes)
          throw std::invalid_argument("temporal_neighbors: node ids must be in [0, " + std::to_string(num_nodes) +
                                      ") (got " + std::to_string(nd[i]) + ")");
      if (!int_time) {
        const double* tm = reinterpret_cast<const double*>(times);
        for (int64_t i = 0; i < B; ++i)
          if (tm[i] != tm[i]) throw std::invalid_argument("temporal_neighbors: 'times' must not contain NaN");
      }
    }
    if (!on_cuda && B < 128) {  // tiny call: skip the GIL release round trip too
      temporal_neighbors_cpu(A, int_time, threads);
      return;
    }
    py::gil_scoped_release nogil;
#ifdef HARDNEG_WITH_CUDA
    if (on_cuda) {
      check_cuda(cuda::temporal_neighbors(A, int_time, reinterpret_cast<void*>(stream)), "temporal_neighbors");
      return;
    }
#endif
    (void)stream;
    temporal_neighbors_cpu(A, int_time, threads);
  });

#ifdef HARDNEG_WITH_CUDA
  m.def("cuda_device_count", []() {
    int n = 0;
    int err = cuda::device_count(&n);
    return py::make_tuple(n, err, cuda::error_string(err));
  });
#endif
  hardneg::register_subgraph(m);  // TEMP shim
}
