// spmm, CUDA: one warp per output row, lanes striding over D, each lane summing its columns over the row's
// entries in CSR order (the CPU kernel's order, so float64 results match it exactly). x's row reads are
// coalesced across the warp; 8 warps per block.
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "sparse/spmm.h"

namespace hardneg {
namespace {
template <class T>
__global__ void spmm_kernel(SpmmArgs A) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= A.rows) return;
  const T* val = static_cast<const T*>(A.values);
  const T* x = static_cast<const T*>(A.x);
  T* out = static_cast<T*>(A.out);
  const int64_t b = A.indptr[row], e = A.indptr[row + 1];
  for (int64_t d = lane; d < A.dim; d += 32) {
    T acc = T(0);
    for (int64_t p = b; p < e; ++p) acc += val[p] * x[A.indices[p] * A.dim + d];
    out[row * A.dim + d] = acc;
  }
}
}  // namespace

namespace cuda {
int spmm(const SpmmArgs& A, void* stream) {
  if (A.rows == 0 || A.dim == 0) return 0;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((A.rows * 32 + threads - 1) / threads);
  if (A.f64)
    spmm_kernel<double><<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(A);
  else
    spmm_kernel<float><<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(A);
  return static_cast<int>(cudaGetLastError());
}
}  // namespace cuda
}  // namespace hardneg
