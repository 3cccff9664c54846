// Shared checks and small helpers for every kernel family. The core takes raw pointers only (no libtorch):
// Python validates, allocates outputs with torch and passes data_ptr() integers.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef __CUDACC__
#define HN_HD __host__ __device__ __forceinline__
#else
#define HN_HD inline
#endif

namespace hardneg {

#define HN_CHECK(cond, msg)                                            \
  do {                                                                 \
    if (!(cond)) throw std::invalid_argument(std::string(msg));        \
  } while (0)

enum Metric : int { kDot = 0, kCos = 1, kL2 = 2, kL1 = 3, kRotate = 4 };

inline const char* metric_name(int m) {
  switch (m) {
    case kDot: return "dot";
    case kCos: return "cos";
    case kL2: return "l2";
    case kL1: return "l1";
    case kRotate: return "rotate";
  }
  return "?";
}

int resolve_threads(int requested);  // 0 -> OpenMP default
int omp_max_threads();

}  // namespace hardneg
