// What every family's registration (csrc/<family>/bindings.cpp) shares: pointer casts, the one CPU/CUDA switch
// and the register_<family> hooks that csrc/bindings.cpp calls.
//
// Tensors cross as data_ptr() integers: Python validates shapes, dtypes, devices and id ranges, allocates the
// outputs with torch and calls with keyword arguments (every argument has a py::arg name). C++ re-checks what
// would make it read out of bounds and throws std::invalid_argument (-> ValueError).
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "cuda_api.h"

namespace hardneg {
namespace py = pybind11;

#ifdef HARDNEG_WITH_CUDA
inline constexpr bool kWithCuda = true;
#else
inline constexpr bool kWithCuda = false;
#endif

template <class T>
T* ptr(std::uintptr_t p) {  // 0 -> nullptr
  return reinterpret_cast<T*>(p);
}

inline void* stream_of(std::uintptr_t stream) { return reinterpret_cast<void*>(stream); }

// The one CPU/CUDA switch. `cpu()` runs the OpenMP kernel; `gpu()` launches the CUDA kernel on the caller's
// torch stream and returns its cudaError_t; it is only compiled into a CUDA build. The GIL is released around
// either (tiny CPU calls skip the round trip with release_gil = false).
template <class Cpu, class Gpu>
void run_on_device(const char* op, bool on_cuda, Cpu&& cpu, Gpu&& gpu, bool release_gil = true) {
  if (on_cuda && !kWithCuda) throw std::invalid_argument(std::string(op) + ": hardneg was built without CUDA kernels");
  std::optional<py::gil_scoped_release> nogil;
  if (release_gil) nogil.emplace();
  if constexpr (kWithCuda) {
    if (on_cuda) {
      const int err = gpu();
      if (err != 0) throw std::runtime_error(std::string(op) + ": CUDA error: " + cuda::error_string(err));
      return;
    }
  }
  cpu();
}

void register_mining(py::module_& m);     // csrc/mining/bindings.cpp
void register_filtering(py::module_& m);  // csrc/filtering/bindings.cpp
void register_temporal(py::module_& m);   // csrc/temporal/bindings.cpp
void register_subgraph(py::module_& m);   // csrc/subgraph/bindings.cpp
void register_sparse(py::module_& m);     // csrc/sparse/bindings.cpp

}  // namespace hardneg
