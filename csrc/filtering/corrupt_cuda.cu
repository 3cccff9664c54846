// corrupt, CUDA: one thread per (row, draw) running corrupt_one (filtering/known_set.h), the same code and
// the same Philox stream as the CPU kernel, so both return identical negatives for a seed.
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "filtering/known_set.h"

namespace hardneg {
namespace {
__global__ void corrupt_kernel(CorruptArgs A) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= A.B * A.n) return;
  corrupt_one(A, i / A.n, i % A.n);
}
}  // namespace

namespace cuda {
int corrupt(const CorruptArgs& A, void* stream) {
  const int64_t total = A.B * A.n;
  if (total == 0) return 0;
  const unsigned blocks = static_cast<unsigned>((total + 127) / 128);
  corrupt_kernel<<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(A);
  return static_cast<int>(cudaGetLastError());
}
}  // namespace cuda
}  // namespace hardneg
