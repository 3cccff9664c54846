// The CPU driver shared by the temporal lookups (temporal_neighbors, temporal_assemble): queries in groups of
// 16 whose per-level binary searches run in lockstep, then each query's slots; OpenMP over query ranges only
// for large calls.
#pragma once
#include <algorithm>
#include <cstdint>

#include <omp.h>

#include "temporal/temporal_neighbors.h"

namespace hardneg {

constexpr int kLockstep = 16;

// Prefetches the cache lines of [p, last] (both ends included).
template <class E>
inline void prefetch_lines(const E* p, const E* last) {
  const char* a = reinterpret_cast<const char*>(p);
  const char* z = reinterpret_cast<const char*>(last);
  for (; a <= z; a += 64) __builtin_prefetch(a);
  __builtin_prefetch(z);
}

// tn_locate for the queries i0 .. i0+gn-1 at once. A binary search is a chain of dependent cache misses; here
// the 16 searches of a level advance together with branchless steps, so each step's 16 loads overlap (the same
// idea as known_contains). Results are identical to tn_locate's.
template <class T>
inline void tn_locate_group(const TQueryArgs& A, int64_t i0, int gn, int64_t (*lo)[kMaxLevels],
                            int64_t (*hi)[kMaxLevels], int64_t* total) {
  if (A.cursor || A.has_window) {  // the streaming entry's cursor, or a window (a second search per level)
    for (int g = 0; g < gn; ++g) total[g] = tn_locate<T>(A, i0 + g, lo[g], hi[g]);
    return;
  }
  const TLevel<T>* Ls = static_cast<const TLevel<T>*>(A.levels);
  const T* times = static_cast<const T*>(A.times);
  const int64_t* nodes = A.nodes + i0;
  for (int g = 0; g < gn; ++g) total[g] = 0;
  for (int l = 0; l < A.nl; ++l) {
    const TLevel<T>& L = Ls[l];
    int64_t base[kLockstep], len[kLockstep];
    T key[kLockstep];
    int64_t longest = 0;
    for (int g = 0; g < gn; ++g) {
      base[g] = L.ptr[nodes[g]];
      len[g] = L.ptr[nodes[g] + 1] - base[g];
      key[g] = times[i0 + g];
      longest = std::max(longest, len[g]);
    }
    // first index with time >= key (strict) or > key (inclusive); an empty run reads time[0] and stays put
    while (longest > 1) {
      for (int g = 0; g < gn; ++g) {
        const int64_t half = len[g] >> 1;
        const T x = L.time[len[g] ? base[g] + half : 0];
        const bool before = A.inclusive ? x <= key[g] : x < key[g];
        base[g] = before ? base[g] + half : base[g];
        len[g] -= half;
      }
      longest -= longest >> 1;
    }
    for (int g = 0; g < gn; ++g) {
      const int64_t b = L.ptr[nodes[g]];
      int64_t h = base[g];
      if (len[g] == 1) h += (A.inclusive ? L.time[h] <= key[g] : L.time[h] < key[g]) ? 1 : 0;
      lo[g][l] = b;
      hi[g][l] = h;
      total[g] += h - b;
      if (h > b) {  // the newest admissible entries are read next
        __builtin_prefetch(L.time + h - 1);
        __builtin_prefetch(L.nbr + h - 1);
      }
    }
  }
}

// The CPU "recent" walk over query i's located ranges: per level (newest first) the run's last entries, ending
// at index `top`, fill output slots j .. j+m-1; copy(j, level, top, m) writes them, most recent first, with one
// plain loop per output array (the compiler vectorises each; the shared per-entry emit of tn_slots does not).
// Returns the number of slots filled (the rest are padding).
template <class T, class Copy>
inline int64_t recent_runs(const TQueryArgs& A, const int64_t* lo, const int64_t* hi, Copy&& copy) {
  const TLevel<T>* Ls = static_cast<const TLevel<T>*>(A.levels);
  int64_t j = 0;
  for (int l = A.nl - 1; l >= 0 && j < A.k; --l) {
    const int64_t m = std::min<int64_t>(A.k - j, std::max<int64_t>(hi[l] - lo[l], 0));
    if (m == 0) continue;
    copy(j, Ls[l], hi[l] - 1, m);
    j += m;
  }
  return j;
}

// slots(i, lo, hi, total) writes query i's outputs from its located ranges.
template <class T, class Slots>
void tn_cpu_run(const TQueryArgs& A, int threads, Slots&& slots) {
  auto range = [&](int64_t i0, int64_t i1) {
    int64_t lo[kLockstep][kMaxLevels], hi[kLockstep][kMaxLevels], total[kLockstep];
    for (int64_t s = i0; s < i1; s += kLockstep) {
      const int gn = static_cast<int>(std::min<int64_t>(kLockstep, i1 - s));
      const TLevel<T>* Ls = static_cast<const TLevel<T>*>(A.levels);
      if (!A.cursor && s + kLockstep < i1) {  // the next group's node offsets
        const int64_t ng = std::min<int64_t>(kLockstep, i1 - s - kLockstep);
        for (int l = 0; l < A.nl; ++l)
          for (int64_t g = 0; g < ng; ++g) __builtin_prefetch(Ls[l].ptr + A.nodes[s + kLockstep + g]);
      }
      if (A.cursor) {  // two stages ahead: the offsets and cursors of group +2, the entries at group +1's cursors
        for (int64_t q = s + 2 * kLockstep; q < std::min(i1, s + 3 * kLockstep); ++q)
          for (int l = 0; l < A.nl; ++l) {
            __builtin_prefetch(Ls[l].ptr + A.nodes[q]);
            __builtin_prefetch(A.cursor + l * A.num_nodes + A.nodes[q]);
          }
        // group +1: the entries its searches read (at the cursor) and, for "recent", the k before them that its
        // slots will copy (the copies, not the searches, were the call's cache misses: 8 lines per query at k=20)
        const int64_t back = A.strategy == 0 ? A.k : 1;
        for (int64_t q = s + kLockstep; q < std::min(i1, s + 2 * kLockstep); ++q)
          for (int l = 0; l < A.nl; ++l) {
            const TLevel<T>& L = Ls[l];
            const int64_t b = L.ptr[A.nodes[q]], at = b + A.cursor[l * A.num_nodes + A.nodes[q]];
            const int64_t first = at - back > b ? at - back : b;  // never before the run (nor the array) starts
            prefetch_lines(L.time + first, L.time + at);
            prefetch_lines(L.nbr + first, L.nbr + at);
            if (A.out_eid && A.strategy == 0) prefetch_lines(L.eid + first, L.eid + at);
          }
      }
      tn_locate_group<T>(A, s, gn, lo, hi, total);
      for (int g = 0; g < gn; ++g) slots(s + g, lo[g], hi[g], total[g]);
    }
  };
  // below ~4k queries a parallel region (waking OpenMP threads: ~1 ms measured) costs more than the work
  const int nt = A.B < 4096 ? 1 : static_cast<int>(std::min<int64_t>(resolve_threads(threads), (A.B + 1023) / 1024));
  if (nt <= 1) {
    range(0, A.B);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t id = omp_get_thread_num(), n = omp_get_num_threads();
    range(A.B * id / n, A.B * (id + 1) / n);
  }
}

}  // namespace hardneg
