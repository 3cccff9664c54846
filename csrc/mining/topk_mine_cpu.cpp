// topk_mine, CPU: mining_scan (shared tiling) + a bounded selection per (row, chunk).
// Each (row, chunk) keeps a binary heap of its k best (score desc, id asc) with the worst at the root; a tile
// is first tested against the root's score 16 lanes at a time, so after the first few tiles almost no
// element reaches the heap. Chunks are merged per row at the end with the same total order.
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
// a ranks before b: higher score, then smaller id
inline bool better(const Entry& a, const Entry& b) { return a.v > b.v || (a.v == b.v && a.id < b.id); }
struct WorseFirst {  // heap comparator: root is the worst entry
  bool operator()(const Entry& a, const Entry& b) const { return better(a, b); }
};

struct TopKConsumer {
  int64_t kk;        // heap capacity: min(k, N)
  int64_t nchunks;
  std::vector<Entry> heap;     // [B][nchunks][kk]
  std::vector<int64_t> count;  // [B][nchunks]

  void row(int64_t row, int64_t chunk, const float* s, int64_t t0, int nt) {
    const int64_t slot = row * nchunks + chunk;
    Entry* h = heap.data() + slot * kk;
    int64_t n = count[slot];
    float thr = n == kk ? h[0].v : -std::numeric_limits<float>::infinity();
    int j = 0;
    for (; j + kNR <= nt; j += kNR) {
      int any = 0;
      for (int l = 0; l < kNR; ++l) any |= s[j + l] > thr;
      if (!any) continue;
      for (int l = 0; l < kNR; ++l) {
        if (s[j + l] > thr) {
          push(h, n, {s[j + l], t0 + j + l});
          if (n == kk) thr = h[0].v;
        }
      }
    }
    for (; j < nt; ++j) {
      if (s[j] > thr) {
        push(h, n, {s[j], t0 + j});
        if (n == kk) thr = h[0].v;
      }
    }
    count[slot] = n;
  }

  // Candidates of one (row, chunk) arrive in increasing id, so a score equal to the root's never wins and
  // the strict '>' above is exact; the full order is applied again in the merge.
  void push(Entry* h, int64_t& n, Entry e) {
    if (n < kk) {
      h[n++] = e;
      std::push_heap(h, h + n, WorseFirst());
    } else if (better(e, h[0])) {
      std::pop_heap(h, h + n, WorseFirst());
      h[n - 1] = e;
      std::push_heap(h, h + n, WorseFirst());
    }
  }
};

}  // namespace

void topk_mine_cpu(const MiningProblem& P, int64_t k, float* out_scores, int64_t* out_ids) {
  HN_CHECK(k >= 1, "topk_mine: k must be >= 1");
  HN_CHECK(P.d >= 1 || P.N == 0, "topk_mine: d must be >= 1");
  HN_CHECK(P.metric >= kDot && P.metric <= kRotate, "topk_mine: unknown metric code");
  HN_CHECK(P.metric != kRotate || P.d % 2 == 0, "topk_mine: metric 'rotate' needs an even d");
  const float ninf = -std::numeric_limits<float>::infinity();
  const int64_t nchunks = P.num_chunks();
  TopKConsumer cons;
  cons.kk = std::max<int64_t>(1, std::min(k, P.N));
  cons.nchunks = nchunks;
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
      std::partial_sort(all.begin(), all.begin() + take, all.end(), better);
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
