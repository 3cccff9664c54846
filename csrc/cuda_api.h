// Host-callable entry points of the CUDA kernels (implemented in *_cuda.cu). Plain C++ signatures: raw
// pointers, sizes and the torch stream as an integer; each returns a cudaError_t code (0 = success).
#pragma once
#include <cstdint>
#include <string>

namespace hardneg {
namespace cuda {
int device_count(int* count);             // cudaGetDeviceCount
std::string error_string(int code);       // cudaGetErrorString
}  // namespace cuda
}  // namespace hardneg
