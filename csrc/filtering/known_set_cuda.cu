// KnownSet queries on CUDA: one thread per query (contains, exclusion) or per (query, candidate) (mask);
// binary searches over the sorted packed keys in global memory (read-only, L2-resident for typical sets).
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "filtering/known_set.h"

namespace hardneg {
namespace {

__global__ void contains_kernel(KnownView K, const int64_t* keys, int64_t B, int width, const double* before,
                                bool inclusive, uint8_t* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= B) return;
  const int64_t* k = keys + i * width;
  const int64_t h = k[0], r = width == 3 ? k[1] : 0, t = k[width - 1];
  const int64_t p = find_key(K, h, r, t);
  bool hit = p >= 0;
  if (hit && before) hit = inclusive ? K.first_time[p] <= before[i] : K.first_time[p] < before[i];
  out[i] = hit ? 1 : 0;
}

__global__ void mask_kernel(KnownView K, int side, const int64_t* anchor, const int64_t* cand, int64_t B, int64_t n,
                            uint8_t* out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= B * n) return;
  const int64_t i = idx / n;
  int64_t b, e;
  anchor_range(K, side, anchor[2 * i], anchor[2 * i + 1], &b, &e);
  const int64_t base = side == 0 ? (anchor[2 * i] * K.R + anchor[2 * i + 1]) * K.E
                                 : (anchor[2 * i] * K.E + anchor[2 * i + 1]) * K.E;
  const int64_t* arr = side == 0 ? K.kt : K.kh;
  out[idx] = (b < e && sorted_contains(arr + b, e - b, base + cand[idx])) ? 1 : 0;
}

__global__ void exclusion_count_kernel(KnownView K, int side, const int64_t* anchor, int64_t B, int64_t* begin,
                                       int64_t* count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= B) return;
  int64_t b, e;
  anchor_range(K, side, anchor[2 * i], anchor[2 * i + 1], &b, &e);
  begin[i] = b;
  count[i] = e - b;
}

__global__ void exclusion_fill_kernel(KnownView K, int side, const int64_t* anchor, int64_t B, const int64_t* begin,
                                      const int64_t* indptr, int64_t* indices) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= B) return;
  const int64_t base = side == 0 ? (anchor[2 * i] * K.R + anchor[2 * i + 1]) * K.E
                                 : (anchor[2 * i] * K.E + anchor[2 * i + 1]) * K.E;
  const int64_t* arr = side == 0 ? K.kt : K.kh;
  for (int64_t j = indptr[i]; j < indptr[i + 1]; ++j) indices[j] = arr[begin[i] + (j - indptr[i])] - base;
}

inline unsigned blocks(int64_t n, int t) { return static_cast<unsigned>((n + t - 1) / t); }

}  // namespace

namespace cuda {

int known_contains(const KnownView& K, const int64_t* keys, int64_t B, int width, const double* before,
                   bool inclusive, uint8_t* out, void* stream) {
  if (B == 0) return 0;
  contains_kernel<<<blocks(B, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(K, keys, B, width, before, inclusive, out);
  return static_cast<int>(cudaGetLastError());
}

int known_mask(const KnownView& K, int side, const int64_t* anchor, const int64_t* cand, int64_t B, int64_t n,
               uint8_t* out, void* stream) {
  if (B * n == 0) return 0;
  mask_kernel<<<blocks(B * n, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(K, side, anchor, cand, B, n, out);
  return static_cast<int>(cudaGetLastError());
}

int known_exclusion_count(const KnownView& K, int side, const int64_t* anchor, int64_t B, int64_t* begin,
                          int64_t* count, void* stream) {
  if (B == 0) return 0;
  exclusion_count_kernel<<<blocks(B, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(K, side, anchor, B, begin, count);
  return static_cast<int>(cudaGetLastError());
}

int known_exclusion_fill(const KnownView& K, int side, const int64_t* anchor, int64_t B, const int64_t* begin,
                         const int64_t* indptr, int64_t* indices, void* stream) {
  if (B == 0) return 0;
  exclusion_fill_kernel<<<blocks(B, 128), 128, 0, static_cast<cudaStream_t>(stream)>>>(K, side, anchor, B, begin,
                                                                                        indptr, indices);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda
}  // namespace hardneg
