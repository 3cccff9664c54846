// temporal_neighbors, CUDA: one thread per query running tn_query (temporal/temporal_neighbors.h), the same
// code and Philox stream as the CPU kernel. Level descriptors live in device memory.
#include <cuda_runtime.h>

#include <limits>

#include "cuda_api.h"
#include "temporal/temporal_neighbors.h"

namespace hardneg {
namespace {
template <class T>
__global__ void tn_kernel(TQueryArgs A, T pad) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < A.B) tn_query<T>(A, i, pad);
}
}  // namespace

namespace cuda {
int temporal_neighbors(const TQueryArgs& A, bool int_time, void* stream) {
  if (A.B == 0) return 0;
  const unsigned blocks = static_cast<unsigned>((A.B + 127) / 128);
  if (int_time)
    tn_kernel<int64_t><<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(A, std::numeric_limits<int64_t>::min());
  else
    tn_kernel<double><<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(A, -std::numeric_limits<double>::infinity());
  return static_cast<int>(cudaGetLastError());
}
}  // namespace cuda
}  // namespace hardneg
