// spmm: out[N, D] = A[N, M] @ x[M, D] for a CSR matrix A (int64 indptr / indices, values of x's dtype) and a
// dense row-major x. One output row per work item on both devices; each row's sum runs over its entries in
// CSR order, so the CPU and CUDA kernels agree with each other to the last bit for float64 and within float
// rounding of the reference (which sums in another order) otherwise.
#pragma once
#include <cstdint>

#include "common/common.h"

namespace hardneg {

struct SpmmArgs {
  const int64_t* indptr = nullptr;  // [rows + 1]
  const int64_t* indices = nullptr; // [nnz], each in [0, cols)
  const void* values = nullptr;     // [nnz], float32 or float64
  const void* x = nullptr;          // [cols, dim]
  void* out = nullptr;              // [rows, dim]
  int64_t rows = 0, cols = 0, dim = 0, nnz = 0;
  bool f64 = false;
};

void spmm_cpu(const SpmmArgs& A, int num_threads);
// -1 when the CSR is safe to walk; -2 when indptr decreases somewhere; else the position of an entry whose column
// index is outside [0, cols)
int64_t spmm_check_cpu(const SpmmArgs& A, int num_threads);

}  // namespace hardneg
