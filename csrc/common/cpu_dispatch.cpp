#include <cmath>
#include <cstdlib>
#include <cstring>

#include <omp.h>

#include "common/common.h"
#include "common/score_tile.h"

namespace hardneg {
extern const TileKernels tile_kernels_generic;
extern const TileKernels tile_kernels_avx2;

static const TileKernels* pick() {
  const char* forced = std::getenv("HARDNEG_ISA");
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (forced && std::strcmp(forced, "generic") == 0) return &tile_kernels_generic;
  return has_avx2 ? &tile_kernels_avx2 : &tile_kernels_generic;
}

const TileKernels& tile_kernels() {
  static const TileKernels* k = pick();
  return *k;
}

float query_aux(const float* q, int d, int metric) {
  if (metric != kCos && metric != kL2) return 0.f;
  float acc = 0.f;
  for (int k = 0; k < d; ++k) acc += q[k] * q[k];
  return metric == kCos ? 1.0f / std::fmax(std::sqrt(acc), kNormEps) : acc;
}

int omp_max_threads() { return ::omp_get_max_threads(); }
int resolve_threads(int requested) { return requested > 0 ? requested : ::omp_get_max_threads(); }

}  // namespace hardneg
