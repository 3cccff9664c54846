// temporal_assemble, CUDA: one thread per query running ta_query (temporal/temporal_assemble.h), the same code
// and Philox stream as the CPU kernel; each thread writes its query's k slots (and k * F feature floats).
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "temporal/temporal_assemble.h"

namespace hardneg {
namespace {
template <class T>
__global__ void ta_kernel(TAssembleArgs A) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < A.q.B) ta_query<T>(A, i);
}
}  // namespace

namespace cuda {
int temporal_assemble(const TAssembleArgs& A, bool int_time, void* stream) {
  if (A.q.B == 0) return 0;
  const unsigned blocks = static_cast<unsigned>((A.q.B + 127) / 128);
  if (int_time)
    ta_kernel<int64_t><<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(A);
  else
    ta_kernel<double><<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(A);
  return static_cast<int>(cudaGetLastError());
}
}  // namespace cuda
}  // namespace hardneg
