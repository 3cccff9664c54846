// The bounded top-k selection of the mining family (CPU), shared by topk_mine and mlp_topk_mine: a binary heap of
// the k best per (row, chunk) by (score desc, then tie key asc, then id asc; the tie key is the id unless the caller
// gives keys), the worst at the root, fed one tile of scores at a time in increasing id; then every row's chunks
// merged in the same total order into the [B, k] output (padded with -inf / -1).
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

#include "common/common.h"
#include "common/score_tile.h"

namespace hardneg {
namespace topk_select {

struct Entry {
  float v;
  int64_t id;
};
// The total order: a ranks before b with a higher score, then (equal scores) a smaller tie key, then a smaller
// id. Without keys the key is the id itself.
struct Better {
  const int64_t* tie = nullptr;  // [N] tie keys, or null
  bool operator()(const Entry& a, const Entry& b) const {
    if (a.v != b.v) return a.v > b.v;
    if (tie) {
      const int64_t ka = tie[a.id], kb = tie[b.id];
      if (ka != kb) return ka < kb;
    }
    return a.id < b.id;
  }
};

struct TopKConsumer {
  int64_t kk;        // heap capacity: min(k, N)
  int64_t nchunks;
  Better better;     // also the heap comparator: the root is the worst entry
  std::vector<Entry> heap;     // [B][nchunks][kk]
  std::vector<int64_t> count;  // [B][nchunks]

  void row(int64_t row, int64_t chunk, const float* s, int64_t t0, int nt) {
    const int64_t slot = row * nchunks + chunk;
    Entry* h = heap.data() + slot * kk;
    int64_t n = count[slot];
    float thr = n == kk ? h[0].v : -std::numeric_limits<float>::infinity();
    if (better.tie) {
      scan<true>(h, n, thr, s, t0, nt);
    } else {
      scan<false>(h, n, thr, s, t0, nt);
    }
    count[slot] = n;
  }

  // The candidates of one (row, chunk) arrive in increasing id. Without tie keys a score equal to the root's
  // therefore never wins and the strict '>' is exact. With keys, an equal score wins when its key is smaller than
  // the root's (an equal key loses on the id); an excluded candidate (-inf) never enters, so an unfilled heap
  // takes every score from the lowest finite one up. Groups of kNR are first tested against the threshold
  // ('>=' with keys). The full order is applied again in the merge.
  template <bool kTies>
  void scan(Entry* h, int64_t& n, float& thr, const float* s, int64_t t0, int nt) {
    const int64_t* tie = better.tie;
    int64_t thr_key = 0;  // with keys and a full heap: the root's key
    if (kTies) {
      if (n < kk) {
        thr = std::numeric_limits<float>::lowest();
      } else {
        thr_key = tie[h[0].id];
      }
    }
    auto near = [&](float v) { return kTies ? v >= thr : v > thr; };
    auto take = [&](float v, int64_t id) {
      if (kTies ? !(v > thr || (v == thr && (n < kk || tie[id] < thr_key))) : !(v > thr)) return;
      push(h, n, {v, id});
      if (n == kk) {
        thr = h[0].v;
        if (kTies) thr_key = tie[h[0].id];
      }
    };
    int j = 0;
    for (; j + kNR <= nt; j += kNR) {
      int any = 0;
      for (int l = 0; l < kNR; ++l) any |= near(s[j + l]);
      if (!any) continue;
      if (kTies && n == kk) {  // the exact test, keys included: a group of one tie is mostly rejected here
        const int64_t* key = tie + t0 + j;
        any = 0;
        for (int l = 0; l < kNR; ++l) any |= (s[j + l] > thr) | ((s[j + l] == thr) & (key[l] < thr_key));
        if (!any) continue;
      }
      for (int l = 0; l < kNR; ++l) take(s[j + l], t0 + j + l);
    }
    for (; j < nt; ++j) take(s[j], t0 + j);
  }

  void push(Entry* h, int64_t& n, Entry e) {
    if (n < kk) {
      h[n++] = e;
      std::push_heap(h, h + n, better);
    } else if (better(e, h[0])) {
      std::pop_heap(h, h + n, better);
      h[n - 1] = e;
      std::push_heap(h, h + n, better);
    }
  }
};


// Every row's chunks merged into out_scores / out_ids [B, k] (threads: OpenMP threads).
inline void write_rows(const TopKConsumer& cons, int64_t B, int64_t k, int threads, float* out_scores,
                       int64_t* out_ids) {
  const float ninf = -std::numeric_limits<float>::infinity();
#pragma omp parallel num_threads(threads)
  {
    std::vector<Entry> all;
#pragma omp for schedule(static)
    for (int64_t row = 0; row < B; ++row) {
      all.clear();
      for (int64_t ch = 0; ch < cons.nchunks; ++ch) {
        const int64_t slot = row * cons.nchunks + ch;
        const Entry* h = cons.heap.data() + slot * cons.kk;
        all.insert(all.end(), h, h + cons.count[slot]);
      }
      const int64_t take = std::min<int64_t>(k, static_cast<int64_t>(all.size()));
      std::partial_sort(all.begin(), all.begin() + take, all.end(), cons.better);
      float* os = out_scores + row * k;
      int64_t* oi = out_ids + row * k;
      for (int64_t j = 0; j < take; ++j) {
        os[j] = all[j].v;
        oi[j] = all[j].id;
      }
      for (int64_t j = take; j < k; ++j) {
        os[j] = ninf;
        oi[j] = -1;
      }
    }
  }
}

// A consumer for rows x chunks of up to n ids each (capacity min(k, n)), tie keys optional.
inline TopKConsumer make_consumer(int64_t B, int64_t nchunks, int64_t k, int64_t n, const int64_t* tie_break) {
  TopKConsumer cons;
  cons.kk = std::max<int64_t>(1, std::min(k, n));
  cons.nchunks = nchunks;
  cons.better.tie = tie_break;
  cons.heap.resize(static_cast<size_t>(B * nchunks * cons.kk));
  cons.count.assign(static_cast<size_t>(B * nchunks), 0);
  return cons;
}

}  // namespace topk_select
}  // namespace hardneg
