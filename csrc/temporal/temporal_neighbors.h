// Temporal neighbour lookup shared by the CPU (OpenMP) and CUDA kernels.
//
// A TemporalGraph is a list of levels (an append-only log, merged like a binary counter); each level is a
// T-CSR over a contiguous time range of events: per node, its incident events sorted by (time, edge id).
// Levels are ordered oldest -> newest and their time ranges do not interleave, so concatenating a node's
// runs level by level gives its full time-sorted history. A query (node, t) binary-searches each level for
// the events strictly before t (<= t when inclusive), optionally after t - window, and then
//   recent:  takes the last k, most recent first;
//   uniform: draws k distinct positions uniformly (Floyd's algorithm) from one Philox stream per query, so
//            CPU and CUDA return the same draws; output most recent first.
#pragma once
#include <cstdint>

#include "common/common.h"
#include "common/philox.h"

namespace hardneg {

template <class T>
struct TLevel {
  const int64_t* ptr;  // [V+1]
  const int32_t* nbr;  // [entries]
  const T* time;       // [entries]
  const int64_t* eid;  // [entries]
};

struct TQueryArgs {
  const void* levels = nullptr;  // TLevel<T>[nl]
  int nl = 0;
  const int64_t* nodes = nullptr;
  const void* times = nullptr;   // T[B]
  int64_t B = 0, k = 0;
  int strategy = 0;              // 0 recent, 1 uniform
  bool inclusive = false;
  bool has_window = false;
  double window = 0;             // float times: compared as double (window >= 0)
  int64_t int_window = 0;        // int64 times: the exact window (>= 0), so int64 times never round
  uint64_t seed = 0;
  int64_t* out_nbr = nullptr;    // [B, k]
  int64_t* out_eid = nullptr;
  void* out_time = nullptr;      // T[B, k]
  uint8_t* out_valid = nullptr;
  // CPU streaming entry only (one thread, no window): per (level, node) the offset in the node's run where its
  // last search ended, [nl * num_nodes]. A search starts there and gallops, so a stream of queries moving forward
  // in time touches one or two entries per level instead of a binary search's log2(degree) cache lines.
  int32_t* cursor = nullptr;
  int64_t num_nodes = 0;
};

template <class T>
HN_HD int64_t t_lower(const T* a, int64_t lo, int64_t hi, T x) {  // first index in [lo,hi) with a >= x
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}
template <class T>
HN_HD int64_t t_upper(const T* a, int64_t lo, int64_t hi, T x) {  // first index in [lo,hi) with a > x
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (a[mid] <= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

constexpr int kMaxLevels = 64;  // levels of one graph (a binary counter over its appends)
// Uniform draws of up to this many slots are sorted on the CPU by counting ranks (k² compares without
// branches; the insertion sort's unpredictable branches were a third of a k = 20 call), above it by insertion.
constexpr int64_t kRankSort = 64;

// Whether a[i] is admissible for key x: before it (strictly, or at it when inclusive).
template <class T>
HN_HD bool t_before(const T* a, int64_t i, T x, bool inclusive) {
  return inclusive ? a[i] <= x : a[i] < x;
}

// The end of the admissible run [b, e) for key x (t_upper when inclusive, else t_lower) found from a hint h0 in
// [b, e]: gallop away from the hint (1, 2, 4, ... entries), then binary-search the last bracket. Equal to the
// plain search for any hint; O(log distance) entries read. The streaming cursor's search (TQueryArgs::cursor).
template <class T>
HN_HD int64_t t_gallop(const T* a, int64_t b, int64_t e, int64_t h0, T x, bool inclusive) {
  int64_t lo, hi;  // the answer is in [lo, hi]
  int64_t step = 1;
  if (h0 < e && t_before(a, h0, x, inclusive)) {  // forward: [h0, lo) are all admissible
    for (lo = h0 + 1; lo + step <= e && t_before(a, lo + step - 1, x, inclusive); step <<= 1) lo += step;
    hi = lo + step - 1 < e ? lo + step - 1 : e;
  } else if (h0 > b && !t_before(a, h0 - 1, x, inclusive)) {  // backward: [hi, h0) are all not
    for (hi = h0 - 1; hi - step >= b && !t_before(a, hi - step, x, inclusive); step <<= 1) hi -= step;
    lo = hi - step + 1 > b ? hi - step + 1 : b;
  } else {
    return h0;
  }
  return inclusive ? t_upper(a, lo, hi, x) : t_lower(a, lo, hi, x);
}

// Lower time bound of the window: events with time > *x are kept. False when t - window would fall below the
// smallest time (int64: it would overflow), i.e. the window bounds nothing.
HN_HD bool window_lower(const TQueryArgs& A, int64_t t, int64_t* x) {
  if (t < INT64_MIN + A.int_window) return false;  // INT64_MIN + w cannot overflow (w >= 0)
  *x = t - A.int_window;
  return true;
}
HN_HD bool window_lower(const TQueryArgs& A, double t, double* x) {
  *x = t - A.window;
  return true;
}

// Query i's admissible entries per level: [lo[l], hi[l]) (strictly before its time, or at it when inclusive;
// after time - window with a window); returns their total. One binary search per level (the GPU and the
// scalar path; the CPU driver in temporal_cpu.h runs the same searches for 16 queries in lockstep), or a gallop
// from the node's streaming cursor when the call has one.
template <class T>
HN_HD int64_t tn_locate(const TQueryArgs& A, int64_t i, int64_t* lo, int64_t* hi) {
  const TLevel<T>* Ls = static_cast<const TLevel<T>*>(A.levels);
  const int64_t v = A.nodes[i];
  const T t = static_cast<const T*>(A.times)[i];
  int64_t total = 0;
  for (int l = 0; l < A.nl; ++l) {
    const TLevel<T>& L = Ls[l];
    const int64_t b = L.ptr[v], e = L.ptr[v + 1];
    int64_t h;
    if (A.cursor) {  // the CPU streaming entry: start where this node's last search ended
      int32_t& c = A.cursor[l * A.num_nodes + v];
      h = t_gallop(L.time, b, e, b + c < e ? b + c : e, t, A.inclusive);
      c = h - b <= INT32_MAX ? static_cast<int32_t>(h - b) : 0;
    } else {
      h = A.inclusive ? t_upper(L.time, b, e, t) : t_lower(L.time, b, e, t);
    }
    int64_t s = b;
    T w_lo;
    if (A.has_window && window_lower(A, t, &w_lo)) s = t_upper(L.time, b, h, w_lo);
    lo[l] = s;
    hi[l] = h;
    total += h > s ? h - s : 0;
  }
  return total;
}

// The k output slots of query i, most recent first, from its located ranges: emit(j, level, idx) for each
// chosen entry, pad(j) for the slots left over. `scratch` (k int64) holds the uniform draws' positions before
// they are emitted; it may be an output row that emit() overwrites slot by slot (each position is read before
// its slot is written). Shared by temporal_neighbors (tn_query) and temporal_assemble (ta_query), both devices.
template <class T, class Emit, class Pad>
HN_HD void tn_slots(const TQueryArgs& A, int64_t i, const int64_t* lo, const int64_t* hi, int64_t total,
                    int64_t* scratch, Emit&& emit, Pad&& pad) {
  const TLevel<T>* Ls = static_cast<const TLevel<T>*>(A.levels);
  int64_t j = 0;
  const int64_t k = A.k;
  if (A.strategy == 0 || total <= k) {  // recent (or everything fits): newest first
    for (int l = A.nl - 1; l >= 0 && j < k; --l) {
      const int64_t stop = lo[l];
      for (int64_t idx = hi[l] - 1; idx >= stop && j < k; --idx, ++j) emit(j, Ls[l], idx);
    }
  } else {  // uniform without replacement: Floyd's algorithm on positions [0, total)
    Philox4x32 rng(A.seed, static_cast<uint64_t>(i), 0x7e3a1ULL);
    int64_t* pos = scratch;
    for (int64_t m = total - k; m < total; ++m) {
      const int64_t r = static_cast<int64_t>(rng.uniform() * static_cast<double>(m + 1));
      int seen = 0;  // no early exit: a branch-free (vectorised) scan of the draws so far
      for (int64_t q = 0; q < j; ++q) seen |= pos[q] == r;
      pos[j++] = seen ? m : r;
    }
    // most recent first: sort the (distinct) positions descending
#if !defined(__CUDA_ARCH__)
    if (k <= kRankSort) {  // each one's rank is the count of larger ones: compares without branches
      int64_t sorted[kRankSort];
      for (int64_t a = 0; a < k; ++a) {
        int64_t rank = 0;
        for (int64_t b = 0; b < k; ++b) rank += pos[b] > pos[a];
        sorted[rank] = pos[a];
      }
      for (int64_t a = 0; a < k; ++a) pos[a] = sorted[a];
    } else
#endif
    {
      for (int64_t a = 1; a < k; ++a) {  // insertion sort (k is small on the GPU's side too)
        const int64_t x = pos[a];
        int64_t b = a - 1;
        while (b >= 0 && pos[b] < x) { pos[b + 1] = pos[b]; --b; }
        pos[b + 1] = x;
      }
    }
    // map positions (oldest level first, ascending time) to entries
    for (int64_t q = 0; q < k; ++q) {
      int64_t p = pos[q];
      for (int l = 0; l < A.nl; ++l) {
        const int64_t c = hi[l] > lo[l] ? hi[l] - lo[l] : 0;
        if (p < c) { emit(q, Ls[l], lo[l] + p); break; }
        p -= c;
      }
    }
  }
  for (; j < k; ++j) pad(j);
}

// temporal_neighbors' outputs for query i from its located ranges.
template <class T>
HN_HD void tn_query_slots(const TQueryArgs& A, int64_t i, const int64_t* lo, const int64_t* hi, int64_t total,
                          T pad) {
  // local restrict pointers: stores to the outputs cannot alias the inputs (4x fewer loads per entry)
  int64_t* __restrict__ on = A.out_nbr + i * A.k;
  int64_t* __restrict__ oe = A.out_eid + i * A.k;
  T* __restrict__ ot = static_cast<T*>(A.out_time) + i * A.k;
  uint8_t* __restrict__ ov = A.out_valid + i * A.k;
  tn_slots<T>(
      A, i, lo, hi, total, oe,
      [&](int64_t j, const TLevel<T>& L, int64_t idx) {
        on[j] = L.nbr[idx];
        oe[j] = L.eid[idx];
        ot[j] = L.time[idx];
        ov[j] = 1;
      },
      [&](int64_t j) {
        on[j] = -1;
        oe[j] = -1;
        ot[j] = pad;
        ov[j] = 0;
      });
}

template <class T>
HN_HD void tn_query(const TQueryArgs& A, int64_t i, T pad) {
  int64_t lo[kMaxLevels], hi[kMaxLevels];
  const int64_t total = tn_locate<T>(A, i, lo, hi);
  tn_query_slots<T>(A, i, lo, hi, total, pad);
}

// CPU kernel (temporal_neighbors_cpu.cpp): OpenMP over queries; times are int64 (int_time) or float64.
void temporal_neighbors_cpu(const TQueryArgs& A, bool int_time, int threads);

}  // namespace hardneg
