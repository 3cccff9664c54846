// Shared checks and small helpers for every kernel family. The core takes raw pointers only (no libtorch):
// Python validates, allocates outputs with torch and passes data_ptr() integers.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef __CUDACC__
#define HN_HD __host__ __device__ __forceinline__
#else
#define HN_HD inline
#endif

namespace hardneg {

#define HN_CHECK(cond, msg)                                            \
  do {                                                                 \
    if (!(cond)) throw std::invalid_argument(std::string(msg));        \
  } while (0)

// kMlp is internal (not in Python's METRICS): the MLP link decoder's w·relu(q + c), mlp_topk_mine's score
enum Metric : int { kDot = 0, kCos = 1, kL2 = 2, kL1 = 3, kRotate = 4, kMlp = 5 };

inline const char* metric_name(int m) {
  switch (m) {
    case kDot: return "dot";
    case kCos: return "cos";
    case kL2: return "l2";
    case kL1: return "l1";
    case kRotate: return "rotate";
    case kMlp: return "mlp";
  }
  return "?";
}

int resolve_threads(int requested);  // 0 -> OpenMP default
int omp_max_threads();
// Whether this process runs the AVX2+FMA builds (an x86 build, a CPU with both, and no HARDNEG_ISA=generic):
// the tile kernels' choice, shared by the kernels that carry an AVX2 entry of their own.
bool cpu_avx2();

// An AVX2+FMA copy of a CPU entry: `flatten` inlines everything it calls (templates, lambdas, the streaming
// driver) into this one function, so the copy is compiled for AVX2 without emitting out-of-line AVX2 versions
// of shared inline functions (which the linker could pick for the baseline callers too). What is not inlined
// (OpenMP's outlined parallel regions) runs the baseline code.
//
// HN_CPU_ENTRY(name, Args) defines `void name(const Args& A, bool int_time, int threads)`, which calls the file's
// `static void entry(const Args&, bool, int)` through that copy when cpu_avx2() holds and directly otherwise.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HN_CPU_ENTRY(name, Args)                                                                        \
  __attribute__((target("avx2,fma"), flatten)) static void name##_avx2(const Args& A, bool int_time,   \
                                                                       int threads) {                  \
    entry(A, int_time, threads);                                                                        \
  }                                                                                                     \
  void name(const Args& A, bool int_time, int threads) {                                                \
    if (cpu_avx2()) return name##_avx2(A, int_time, threads);                                           \
    entry(A, int_time, threads);                                                                        \
  }
#else
#define HN_CPU_ENTRY(name, Args) \
  void name(const Args& A, bool int_time, int threads) { entry(A, int_time, threads); }
#endif

}  // namespace hardneg
