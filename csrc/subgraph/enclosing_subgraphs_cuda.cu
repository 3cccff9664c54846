// enclosing_subgraphs, CUDA: one thread per pair running enclosing_subgraph_one (enclosing_subgraphs.h), the
// same code and Philox stream as the CPU kernel, so both return identical subgraphs. `workers` threads stride
// over the pairs, each with its own 6 x N int32 scratch row (zeroed by the caller before each pass); SEAL
// subgraphs are small, so a serial walk per thread keeps memory traffic to the pair's own neighbourhood.
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "subgraph/enclosing_subgraphs.h"

namespace hardneg {
namespace {
__global__ void enclosing_subgraphs_kernel(SubgraphArgs A, int32_t* scratch, int64_t workers, bool fill) {
  const int64_t w = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (w >= workers) return;
  int32_t* mine = scratch + w * kSubgraphScratch * A.num_nodes;
  for (int64_t i = w; i < A.num_pairs; i += workers) enclosing_subgraph_one(A, i, mine, fill);
}
}  // namespace

namespace cuda {
int enclosing_subgraphs(const SubgraphArgs& A, int32_t* scratch, int64_t workers, bool fill, void* stream) {
  if (A.num_pairs == 0 || workers == 0) return 0;
  const unsigned blocks = static_cast<unsigned>((workers + 127) / 128);
  enclosing_subgraphs_kernel<<<blocks, 128, 0, static_cast<cudaStream_t>(stream)>>>(A, scratch, workers, fill);
  return static_cast<int>(cudaGetLastError());
}
}  // namespace cuda
}  // namespace hardneg
