#pragma once
#include <cstdint>

#include "filtering/known_set.h"

namespace hardneg {
// CPU kernels (OpenMP over queries).
void known_contains_cpu(const KnownView& K, const int64_t* keys, int64_t B, int width, const double* before,
                        bool inclusive, uint8_t* out, int threads);
void known_mask_cpu(const KnownView& K, int side, const int64_t* anchor, const int64_t* cand, int64_t B, int64_t n,
                    uint8_t* out, int threads);
void known_exclusion_count_cpu(const KnownView& K, int side, const int64_t* anchor, int64_t B, int64_t* begin,
                               int64_t* count, int threads);
void known_exclusion_fill_cpu(const KnownView& K, int side, const int64_t* anchor, int64_t B, const int64_t* begin,
                              const int64_t* indptr, int64_t* indices, int threads);
void corrupt_cpu(const CorruptArgs& A, int threads);
}  // namespace hardneg
