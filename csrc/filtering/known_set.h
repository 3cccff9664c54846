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

struct KnownView {
  const int64_t* kt = nullptr;  // tail-major keys, sorted, unique
  const int64_t* kh = nullptr;  // head-major keys, sorted, unique
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

HN_HD bool sorted_contains(const int64_t* a, int64_t n, int64_t x) {
  const int64_t p = lower_bound_i64(a, n, x);
  return p < n && a[p] == x;
}

// index of key in kt, or -1
HN_HD int64_t find_key(const KnownView& K, int64_t h, int64_t r, int64_t t) {
  const int64_t key = (h * K.R + r) * K.E + t;
  const int64_t p = lower_bound_i64(K.kt, K.m, key);
  return (p < K.m && K.kt[p] == key) ? p : -1;
}

// [begin, end) in kt (side 0: tails of (h, r)) or kh (side 1: heads of (r, t)); a = h or r, b = r or t
HN_HD void anchor_range(const KnownView& K, int side, int64_t a, int64_t b, int64_t* begin, int64_t* end) {
  const int64_t* arr = side == 0 ? K.kt : K.kh;
  const int64_t base = side == 0 ? (a * K.R + b) * K.E : (a * K.E + b) * K.E;
  *begin = lower_bound_i64(arr, K.m, base);
  *end = lower_bound_i64(arr, K.m, base + K.E);
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

HN_HD void corrupt_one(const CorruptArgs& A, int64_t b, int64_t j) {
  Philox4x32 rng(A.seed, static_cast<uint64_t>(b), static_cast<uint64_t>(j));
  const int64_t* p = A.pos + b * A.width;
  const bool kg = A.width == 3;
  const int64_t h = p[0], r = kg ? p[1] : 0, t = kg ? p[2] : p[1];
  int corrupt_head;
  if (A.side_mode == 0) corrupt_head = 0;
  else if (A.side_mode == 1) corrupt_head = 1;
  else if (A.side_mode == 2) corrupt_head = rng.uniform() < 0.5 ? 1 : 0;
  else corrupt_head = rng.uniform() < static_cast<double>(A.p_head[r]) ? 1 : 0;
  const int s = corrupt_head ? 0 : 1;  // domain side index: 0 head, 1 tail
  const int64_t* pool = nullptr;
  int64_t pool_n = A.E;
  if (A.dom_ptr[s]) {
    pool = A.dom_idx[s] + A.dom_ptr[s][r];
    pool_n = A.dom_ptr[s][r + 1] - A.dom_ptr[s][r];
  }
  int64_t pick = -1;
  if (pool_n > 0) {
    if (!A.filtered) {
      const int64_t u = uniform_below(rng, pool_n);
      pick = pool ? pool[u] : u;
    } else {
      int64_t kb, ke, key_base;
      const int64_t* keys;
      if (corrupt_head) {  // known heads of (r, t)
        anchor_range(A.K, 1, r, t, &kb, &ke);
        keys = A.K.kh;
        key_base = (r * A.K.E + t) * A.K.E;
      } else {             // known tails of (h, r)
        anchor_range(A.K, 0, h, r, &kb, &ke);
        keys = A.K.kt;
        key_base = (h * A.K.R + r) * A.K.E;
      }
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
  for (int w = 0; w < A.width; ++w) o[w] = p[w];
  if (pick >= 0) {
    if (corrupt_head) o[0] = pick; else o[A.width - 1] = pick;
  } else {
    if (corrupt_head) o[0] = -1; else o[A.width - 1] = -1;
  }
  A.valid[b * A.n + j] = pick >= 0 ? 1 : 0;
}

}  // namespace hardneg
