#include <cuda_runtime.h>

#include "cuda_api.h"

namespace hardneg {
namespace cuda {
int device_count(int* count) {
  *count = 0;
  return static_cast<int>(cudaGetDeviceCount(count));
}
std::string error_string(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }
}  // namespace cuda
}  // namespace hardneg
