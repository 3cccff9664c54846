// topk_mine, CPU: mining_scan (shared tiling) + a bounded selection per (row, chunk).
// Each (row, chunk) keeps a binary heap of its k best (score desc, then tie key asc, then id asc; the tie key is
// the id unless the caller gives keys) with the worst at the root; a tile is first tested against the root's
// score 16 lanes at a time, so after the first few tiles almost no element reaches the heap. Chunks are merged
// per row at the end with the same total order.
#include "mining/topk_mine_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/mining_driver.h"

namespace hardneg {
namespace {

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

}  // namespace

void topk_mine_cpu(const MiningProblem& P, int64_t k, const int64_t* tie_break, float* out_scores,
                   int64_t* out_ids) {
  HN_CHECK(k >= 1, "topk_mine: k must be >= 1");
  HN_CHECK(P.d >= 1 || P.N == 0, "topk_mine: d must be >= 1");
  HN_CHECK(P.metric >= kDot && P.metric <= kMlp, "topk_mine: unknown metric code");
  HN_CHECK(P.metric != kMlp || P.weight != nullptr, "mlp_topk_mine: null weight pointer");
  HN_CHECK(P.off_ptr == nullptr || P.metric == kMlp, "topk_mine: offsets need the kMlp metric");
  HN_CHECK(P.metric != kRotate || P.d % 2 == 0, "topk_mine: metric 'rotate' needs an even d");
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t nchunks = P.num_chunks();
  TopKConsumer cons;
  cons.kk = std::max<int64_t>(1, std::min(k, P.N));
  cons.nchunks = nchunks;
  cons.better.tie = tie_break;
  cons.heap.resize(static_cast<size_t>(P.B * nchunks * cons.kk));
  cons.count.assign(static_cast<size_t>(P.B * nchunks), 0);
  mining_scan(P, cons);

  const int threads = resolve_threads(P.num_threads);
#pragma omp parallel num_threads(threads)
  {
    std::vector<Entry> all;
#pragma omp for schedule(static)
    for (int64_t row = 0; row < P.B; ++row) {
      all.clear();
      for (int64_t ch = 0; ch < nchunks; ++ch) {
        const int64_t slot = row * nchunks + ch;
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

}  // namespace hardneg
