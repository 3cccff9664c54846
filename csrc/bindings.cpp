// The only PYBIND11_MODULE: build_info, and one registration call per kernel family (csrc/bindings.h).
#include "bindings.h"

#include <string>

#include "common/common.h"
#include "common/score_tile.h"

namespace py = pybind11;
using namespace hardneg;

PYBIND11_MODULE(_core, m) {
  m.doc() = "hardneg compiled core (C++/OpenMP, optional CUDA)";

  m.def("build_info", []() {
    py::dict d;
    d["cuda"] = kWithCuda;
    d["cpu_isa"] = std::string(tile_kernels().isa);
    d["omp_max_threads"] = omp_max_threads();
#if defined(__VERSION__)
    d["compiler"] = std::string(__VERSION__);
#endif
    return d;
  });

  // (count, cudaError_t, message) as the CUDA runtime sees it; (0, -1, ...) in a build without CUDA
  m.def("cuda_device_count", []() {
    int count = 0, err = -1;
    std::string msg = "hardneg was built without CUDA kernels";
    run_on_device("cuda_device_count", kWithCuda, [] {}, [&] {
      err = cuda::device_count(&count);
      msg = cuda::error_string(err);
      return 0;
    });
    return py::make_tuple(count, err, msg);
  });

  register_mining(m);
  register_filtering(m);
  register_temporal(m);
  register_subgraph(m);
  register_sparse(m);
}
