// KnownSet layout and the per-element logic shared by the CPU (OpenMP) and CUDA kernels (HN_HD functions).
//
// A known set of triples (h, r, t) over E entities and R relations is two sorted arrays of packed int64 keys
// (16 bytes per known triple): tail-major  k_t = (h*R + r)*E + t  and head-major  k_h = (r*E + t)*E + h.
// The known tails of an anchor (h, r) are the contiguous run of k_t in [(h*R+r)*E, (h*R+r+1)*E), already
// sorted by t; the known heads of (r, t) likewise in k_h. Edge sets are the R = 1 case.
// An optional array of first-seen times (aligned with k_t) answers "known before t".
#pragma once
#include <cstdint>

#include "common/common.h"
#include "common/philox.h"

namespace hardneg {

constexpr int kFenceShift = 6;  // fences: every 64th key, so the first search steps stay in L1

struct KnownView {
  const int64_t* kt = nullptr;  // tail-major keys, sorted, unique
  const int64_t* kh = nullptr;  // head-major keys, sorted, unique
  const int64_t* ft = nullptr;  // kt[::64] (optional)
  const int64_t* fh = nullptr;  // kh[::64] (optional)
  const double* first_time = nullptr;  // optional, aligned with kt
  int64_t m = 0;                // number of keys
  int64_t E = 0, R = 1;
};

HN_HD int64_t lower_bound_i64(const int64_t* a, int64_t n, int64_t x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// lower_bound through a fence array f = a[::64]: a short search in f, then one 64-key block of a
HN_HD int64_t lower_bound_fenced(const int64_t* a, int64_t n, const int64_t* f, int64_t x) {
  if (!f) return lower_bound_i64(a, n, x);
  const int64_t nf = (n + (1 << kFenceShift) - 1) >> kFenceShift;
  int64_t lo = 0, hi = nf;  // number of fences <= x
  while (lo < hi) {
    const int64_t mid = lo + ((hi - lo) >> 1);
    if (f[mid] <= x) lo = mid + 1; else hi = mid;
  }
  if (lo == 0) return 0;
  const int64_t b0 = (lo - 1) << kFenceShift;
  const int64_t b1 = (b0 + (1 << kFenceShift)) < n ? b0 + (1 << kFenceShift) : n;
  return b0 + lower_bound_i64(a + b0, b1 - b0, x);
}

HN_HD bool sorted_contains(const int64_t* a, int64_t n, int64_t x) {
  const int64_t p = lower_bound_i64(a, n, x);
  return p < n && a[p] == x;
}

// index of key in kt, or -1
HN_HD int64_t find_key(const KnownView& K, int64_t h, int64_t r, int64_t t) {
  const int64_t key = (h * K.R + r) * K.E + t;
  const int64_t p = lower_bound_fenced(K.kt, K.m, K.ft, key);
  return (p < K.m && K.kt[p] == key) ? p : -1;
}

// [begin, end) in kt (side 0: tails of (h, r)) or kh (side 1: heads of (r, t)); a = h or r, b = r or t
HN_HD void anchor_range(const KnownView& K, int side, int64_t a, int64_t b, int64_t* begin, int64_t* end) {
  const int64_t* arr = side == 0 ? K.kt : K.kh;
  const int64_t* fence = side == 0 ? K.ft : K.fh;
  const int64_t base = side == 0 ? (a * K.R + b) * K.E : (a * K.E + b) * K.E;
  *begin = lower_bound_fenced(arr, K.m, fence, base);
  *end = *begin + lower_bound_i64(arr + *begin, K.m - *begin, base + K.E);
}

// ---- corruption --------------------------------------------------------------------------------------------
// One draw: choose the side, then draw uniformly from the pool (domain list or all entities) until the
// candidate is not a known triple (at most `tries` times), then fall back to exact enumeration of the
// admissible set. Exactly uniform over the admissible set; returns -1 when it is empty.
struct CorruptArgs {
  const int64_t* pos = nullptr;  // [B, width]
  int64_t B = 0, width = 3, n = 0, E = 0, R = 1;
  int side_mode = 0;             // 0 tail, 1 head, 2 both (1/2 each), 3 bernoulli
  const float* p_head = nullptr; // [R], bernoulli
  const int64_t* dom_ptr[2] = {nullptr, nullptr};  // domain CSR per side (0 head, 1 tail): [R+1]
  const int64_t* dom_idx[2] = {nullptr, nullptr};  // sorted unique ids
  bool filtered = false;
  KnownView K;
  uint64_t seed = 0;
  int tries = 32;
  int64_t* out = nullptr;        // [B, n, width]
  uint8_t* valid = nullptr;      // [B, n]
};

HN_HD int64_t uniform_below(Philox4x32& rng, int64_t n) {  // n >= 1, unbiased enough for n < 2^53
  return static_cast<int64_t>(rng.uniform() * static_cast<double>(n));
}

// u-th element (0-based) of pool \ known, both sorted; pool = [0, E) when pool == nullptr
HN_HD int64_t nth_admissible(const int64_t* pool, int64_t pool_n, const int64_t* known_keys, int64_t kb, int64_t ke,
                             int64_t key_base, int64_t u) {
  int64_t kp = kb;
  for (int64_t i = 0; i < pool_n; ++i) {
    const int64_t id = pool ? pool[i] : i;
    while (kp < ke && known_keys[kp] - key_base < id) ++kp;
    if (kp < ke && known_keys[kp] - key_base == id) continue;
    if (u == 0) return id;
    --u;
  }
  return -1;
}

// Per-row state: the known run of each side's anchor, looked up once per row (two binary searches over
// all keys each) instead of once per draw.
struct CorruptRow {
  int64_t h, r, t;
  int64_t kb[2], ke[2], base[2];  // [0]: known heads of (r, t) in kh; [1]: known tails of (h, r) in kt
};

HN_HD CorruptRow corrupt_prepare(const CorruptArgs& A, int64_t b) {
  CorruptRow S;
  const int64_t* p = A.pos + b * A.width;
  const bool kg = A.width == 3;
  S.h = p[0];
  S.r = kg ? p[1] : 0;
  S.t = kg ? p[2] : p[1];
  if (A.filtered) {
    const bool need_head = A.side_mode != 0, need_tail = A.side_mode != 1;
    S.kb[0] = S.ke[0] = S.kb[1] = S.ke[1] = 0;
    S.base[0] = (S.r * A.K.E + S.t) * A.K.E;
    S.base[1] = (S.h * A.K.R + S.r) * A.K.E;
    if (need_head) anchor_range(A.K, 1, S.r, S.t, &S.kb[0], &S.ke[0]);
    if (need_tail) anchor_range(A.K, 0, S.h, S.r, &S.kb[1], &S.ke[1]);
  }
  return S;
}

HN_HD void corrupt_draw(const CorruptArgs& A, const CorruptRow& S, int64_t b, int64_t j) {
  Philox4x32 rng(A.seed, static_cast<uint64_t>(b), static_cast<uint64_t>(j));
  int corrupt_head;
  if (A.side_mode == 0) corrupt_head = 0;
  else if (A.side_mode == 1) corrupt_head = 1;
  else if (A.side_mode == 2) corrupt_head = rng.uniform() < 0.5 ? 1 : 0;
  else corrupt_head = rng.uniform() < static_cast<double>(A.p_head[S.r]) ? 1 : 0;
  const int s = corrupt_head ? 0 : 1;  // 0: head side, 1: tail side (domain and known runs)
  const int64_t* pool = nullptr;
  int64_t pool_n = A.E;
  if (A.dom_ptr[s]) {
    pool = A.dom_idx[s] + A.dom_ptr[s][S.r];
    pool_n = A.dom_ptr[s][S.r + 1] - A.dom_ptr[s][S.r];
  }
  int64_t pick = -1;
  if (pool_n > 0) {
    if (!A.filtered) {
      const int64_t u = uniform_below(rng, pool_n);
      pick = pool ? pool[u] : u;
    } else {
      const int64_t kb = S.kb[s], ke = S.ke[s], key_base = S.base[s];
      const int64_t* keys = corrupt_head ? A.K.kh : A.K.kt;
      for (int i = 0; i < A.tries && pick < 0; ++i) {
        const int64_t u = uniform_below(rng, pool_n);
        const int64_t c = pool ? pool[u] : u;
        if (!sorted_contains(keys + kb, ke - kb, key_base + c)) pick = c;
      }
      if (pick < 0) {  // exact: count the admissible ids, draw one
        int64_t known_in_pool = 0;
        if (pool) {
          for (int64_t i = kb; i < ke; ++i)
            known_in_pool += sorted_contains(pool, pool_n, keys[i] - key_base) ? 1 : 0;
        } else {
          known_in_pool = ke - kb;
        }
        const int64_t adm = pool_n - known_in_pool;
        if (adm > 0) pick = nth_admissible(pool, pool_n, keys, kb, ke, key_base, uniform_below(rng, adm));
      }
    }
  }
  int64_t* o = A.out + (b * A.n + j) * A.width;
  const int64_t* p = A.pos + b * A.width;
  for (int w = 0; w < A.width; ++w) o[w] = p[w];
  if (corrupt_head) o[0] = pick; else o[A.width - 1] = pick;  // -1 when the admissible set is empty
  A.valid[b * A.n + j] = pick >= 0 ? 1 : 0;
}

HN_HD void corrupt_one(const CorruptArgs& A, int64_t b, int64_t j) { corrupt_draw(A, corrupt_prepare(A, b), b, j); }

}  // namespace hardneg
