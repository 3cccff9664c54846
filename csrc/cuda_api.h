// Host-callable entry points of the CUDA kernels (implemented in *_cuda.cu). Plain C++ signatures: raw
// pointers, sizes and the torch stream as an integer; each returns a cudaError_t code (0 = success).
#pragma once
#include <cstdint>
#include <string>

#include "filtering/known_set.h"
#include "temporal/temporal_assemble.h"
#include "sparse/spmm.h"
#include "subgraph/enclosing_subgraphs.h"
#include "temporal/temporal_neighbors.h"

namespace hardneg {
namespace cuda {
int device_count(int* count);             // cudaGetDeviceCount
std::string error_string(int code);       // cudaGetErrorString

int known_contains(const KnownView& K, const int64_t* keys, int64_t B, int width, const double* before,
                   bool inclusive, uint8_t* out, void* stream);
int known_mask(const KnownView& K, int side, const int64_t* anchor, const int64_t* cand, int64_t B, int64_t n,
               uint8_t* out, void* stream);
int known_exclusion_count(const KnownView& K, int side, const int64_t* anchor, int64_t B, int64_t* begin,
                          int64_t* count, void* stream);
int known_exclusion_fill(const KnownView& K, int side, const int64_t* anchor, int64_t B, const int64_t* begin,
                         const int64_t* indptr, int64_t* indices, void* stream);
int corrupt(const CorruptArgs& A, void* stream);
int temporal_neighbors(const TQueryArgs& A, bool int_time, void* stream);
int temporal_assemble(const TAssembleArgs& A, bool int_time, void* stream);
int enclosing_subgraphs(const SubgraphArgs& A, int32_t* scratch, int64_t workers, bool fill, void* stream);
int spmm(const SpmmArgs& A, void* stream);
}  // namespace cuda
}  // namespace hardneg
