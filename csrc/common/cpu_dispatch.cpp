#include <cmath>
#include <cstdlib>
#include <cstring>

#include <omp.h>

#include "common/common.h"
#include "common/score_tile.h"

namespace hardneg {
extern const TileKernels tile_kernels_generic;
#if HARDNEG_HAVE_AVX2
extern const TileKernels tile_kernels_avx2;
#endif

// HARDNEG_ISA=generic forces the baseline kernels (tests compare both builds against the reference); otherwise
// the AVX2+FMA build where it exists (x86 builds) and the CPU has both features. Read once, at first use.
static const TileKernels* pick() {
  const char* forced = std::getenv("HARDNEG_ISA");
  if (forced && std::strcmp(forced, "generic") == 0) return &tile_kernels_generic;
#if HARDNEG_HAVE_AVX2
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &tile_kernels_avx2;
#endif
  return &tile_kernels_generic;
}

const TileKernels& tile_kernels() {
  static const TileKernels* k = pick();
  return *k;
}

bool cpu_avx2() {
  static const bool on = &tile_kernels() != &tile_kernels_generic;
  return on;
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
