// sample_by_score, CPU: mining_scan (the tiling shared with topk_mine) + an exact streaming sampler.
//
// Sampling without replacement from p(c) ∝ exp(l_c) is Gumbel-top-k: keep the n largest keys g_c = l_c + G_c.
// Drawing a Gumbel for every candidate would cost more than the scores, so each (row, chunk) uses exponential
// jumps (Efraimidis & Spirakis' A-ExpJ in log space): with τ the smallest key kept, the next candidate whose
// key beats τ is the first one at which the running sum of exp(l - τ) exceeds an Exp(1) draw; its key is
// then drawn from the Gumbel truncated to (τ, ∞). The per-candidate work is exp(l - m), which the streaming
// log-sum-exp needs anyway; random numbers are drawn only at reservoir events (O(n log(N/n)) per row).
// With replacement, each of the n draws is a one-slot reservoir with its own jump target.
// Randomness: Philox4x32-10 keyed by the seed, one stream per (row, chunk of 65536 candidates), so results do
// not depend on the thread count.
#include "mining/sample_by_score_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/philox.h"

namespace hardneg {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

struct Slot {
  double g;     // Gumbel key
  int64_t id;
  float l;      // logit
};
struct SlotWorseFirst {  // min-heap on the key
  bool operator()(const Slot& a, const Slot& b) const { return a.g > b.g; }
};

struct RowChunk {
  double m = kNegInf;  // running max logit
  double C = 0.0;      // sum of exp(l - m) over admissible candidates seen
  int64_t filled = 0;  // slots holding a key
  double A = 0.0;      // next jump target (without replacement)
  Philox4x32 rng{0, 0, 0};
};

// Key of a candidate with logit l, conditioned on exceeding tau: E' ~ Exp(1) truncated to (0, a), a = e^(l-tau).
inline double truncated_key(Philox4x32& rng, double l, double tau) {
  const double a = std::exp(l - tau);
  const double e = -std::log1p(rng.uniform() * std::expm1(-a));
  // e == 0 (a underflowed: l is ~745 below tau) would make the key +inf; such a candidate never beats tau
  return e > 0.0 ? l - std::log(e) : tau;
}

inline double block_sum(const float* w) {
  float a = 0.f;
  for (int i = 0; i < 16; ++i) a += w[i];
  return a;
}

struct SampleConsumer {
  int64_t n, nchunks;
  int weighting;
  float inv_temp;
  bool replacement;
  uint64_t seed;
  std::vector<RowChunk> st;      // [B][nchunks]
  std::vector<Slot> slots;       // [B][nchunks][n]
  std::vector<double> target;    // with replacement: [B][nchunks][n] jump target per draw
  std::vector<int32_t> order;    // with replacement: heap of draw indices by target
  // per-thread scratch for logits / weights of one tile
  std::vector<std::vector<float>> L, W;

  void init(const MiningProblem& P, int threads, int NC) {
    st.assign(static_cast<size_t>(P.B * nchunks), RowChunk());
    for (int64_t r = 0; r < P.B; ++r)
      for (int64_t c = 0; c < nchunks; ++c)
        st[r * nchunks + c].rng = Philox4x32(seed, static_cast<uint64_t>(r), static_cast<uint64_t>(c));
    slots.resize(static_cast<size_t>(P.B * nchunks * n));
    if (replacement) {
      target.resize(static_cast<size_t>(P.B * nchunks * n));
      order.resize(static_cast<size_t>(P.B * nchunks * n));
    }
    L.assign(threads, std::vector<float>(NC));
    W.assign(threads, std::vector<float>(NC));
  }

  void row(int64_t row, int64_t chunk, const float* s, int64_t t0, int nt) {
    const int tid = omp_get_thread_num();
    float* l = L[tid].data();
    float* w = W[tid].data();
    const TileKernels& K = tile_kernels();
    const float lm = K.logits(s, nt, weighting, inv_temp, l);
    if (lm == -std::numeric_limits<float>::infinity()) return;  // nothing admissible in this tile
    const int64_t sid = row * nchunks + chunk;
    RowChunk& S = st[sid];
    Slot* sl = slots.data() + sid * n;
    if (lm > S.m) {  // rescale everything measured in units of exp(-m)
      const double scale = S.m == kNegInf ? 0.0 : std::exp(S.m - lm);
      S.C *= scale;
      S.A *= scale;
      if (replacement && S.filled)
        for (int64_t j = 0; j < n; ++j) target[sid * n + j] *= scale;
      S.m = lm;
    }
    const double tile_sum = K.exp_sum(l, nt, static_cast<float>(S.m), w);
    if (replacement)
      walk_replacement(S, sl, sid, l, w, t0, nt, tile_sum);
    else
      walk(S, sl, l, w, t0, nt, tile_sum);
  }

  void set_target(RowChunk& S, const Slot* sl) {
    // sl[0] is the smallest key (heap root)
    S.A = S.C + S.rng.exponential() * std::exp(sl[0].g - S.m);
  }

  void walk(RowChunk& S, Slot* sl, const float* l, const float* w, int64_t t0, int nt, double tile_sum) {
    int j = 0;
    if (S.filled < n) {
      for (; j < nt && S.filled < n; ++j) {
        S.C += w[j];
        if (l[j] == -std::numeric_limits<float>::infinity()) continue;
        sl[S.filled++] = {l[j] + S.rng.gumbel(), t0 + j, l[j]};
        std::push_heap(sl, sl + S.filled, SlotWorseFirst());
      }
      if (S.filled < n) return;
      set_target(S, sl);
      double rest = 0.0;
      for (int i = j; i < nt; ++i) rest += w[i];
      tile_sum = rest;
    }
    if (S.A > S.C + tile_sum) {  // no event in this tile: the common case
      S.C += tile_sum;
      return;
    }
    for (; j < nt; ++j) {
      if ((j & 15) == 0 && j + 16 <= nt) {  // skip 16-candidate blocks that cannot reach the target
        const double bs = block_sum(w + j);
        if (S.C + bs < S.A) {
          S.C += bs;
          j += 15;
          continue;
        }
      }
      S.C += w[j];
      if (S.C >= S.A && w[j] > 0.0f) {
        const double g = truncated_key(S.rng, l[j], sl[0].g);
        std::pop_heap(sl, sl + n, SlotWorseFirst());
        sl[n - 1] = {g, t0 + j, l[j]};
        std::push_heap(sl, sl + n, SlotWorseFirst());
        set_target(S, sl);
      }
    }
  }

  void walk_replacement(RowChunk& S, Slot* sl, int64_t sid, const float* l, const float* w, int64_t t0, int nt,
                        double tile_sum) {
    double* A = target.data() + sid * n;
    int32_t* ord = order.data() + sid * n;
    auto later = [A](int32_t a, int32_t b) { return A[a] > A[b]; };  // min-heap on target
    int j = 0;
    if (!S.filled) {
      for (; j < nt; ++j) {
        S.C += w[j];
        if (l[j] == -std::numeric_limits<float>::infinity()) continue;
        for (int64_t q = 0; q < n; ++q) {
          sl[q] = {l[j] + S.rng.gumbel(), t0 + j, l[j]};
          A[q] = S.C + S.rng.exponential() * std::exp(sl[q].g - S.m);
          ord[q] = static_cast<int32_t>(q);
        }
        std::make_heap(ord, ord + n, later);
        S.filled = n;
        ++j;
        break;
      }
      if (!S.filled) return;
      double rest = 0.0;
      for (int i = j; i < nt; ++i) rest += w[i];
      tile_sum = rest;
    }
    if (A[ord[0]] > S.C + tile_sum) {
      S.C += tile_sum;
      return;
    }
    for (; j < nt; ++j) {
      if ((j & 15) == 0 && j + 16 <= nt) {
        const double bs = block_sum(w + j);
        if (S.C + bs < A[ord[0]]) {
          S.C += bs;
          j += 15;
          continue;
        }
      }
      S.C += w[j];
      if (w[j] <= 0.0f) continue;
      // each draw fires at most once per candidate (guards against a target that underflowed onto C)
      for (int64_t fired = 0; fired < n && A[ord[0]] <= S.C; ++fired) {
        const int32_t q = ord[0];
        sl[q] = {truncated_key(S.rng, l[j], sl[q].g), t0 + j, l[j]};
        A[q] = S.C + S.rng.exponential() * std::exp(sl[q].g - S.m);
        std::pop_heap(ord, ord + n, later);
        std::push_heap(ord, ord + n, later);
      }
    }
  }
};

}  // namespace

void sample_by_score_cpu(const MiningProblem& P, int64_t n, int weighting, float inv_temp, bool replacement,
                         uint64_t seed, int64_t* out_ids, float* out_log_prob) {
  HN_CHECK(n >= 1, "sample_by_score: num_samples must be >= 1");
  HN_CHECK(weighting == 0 || weighting == 1, "sample_by_score: unknown weighting code");
  HN_CHECK(inv_temp > 0 && std::isfinite(inv_temp), "sample_by_score: temperature must be finite and > 0");
  HN_CHECK(P.metric >= kDot && P.metric <= kRotate, "sample_by_score: unknown metric code");
  HN_CHECK(P.metric != kRotate || P.d % 2 == 0, "sample_by_score: metric 'rotate' needs an even d");
  const int64_t nchunks = P.num_chunks();
  const int threads = resolve_threads(P.num_threads);
  SampleConsumer cons;
  cons.n = n;
  cons.nchunks = nchunks;
  cons.weighting = weighting;
  cons.inv_temp = inv_temp;
  cons.replacement = replacement;
  cons.seed = seed;
  cons.init(P, threads, tile_rows(P.d));
  mining_scan(P, cons);

#pragma omp parallel num_threads(threads)
  {
    std::vector<Slot> all;
#pragma omp for schedule(static)
    for (int64_t row = 0; row < P.B; ++row) {
      int64_t* oi = out_ids + row * n;
      float* op = out_log_prob + row * n;
      double M = kNegInf;
      for (int64_t c = 0; c < nchunks; ++c) M = std::max(M, cons.st[row * nchunks + c].m);
      double Z = 0.0;
      if (M != kNegInf)
        for (int64_t c = 0; c < nchunks; ++c) {
          const RowChunk& S = cons.st[row * nchunks + c];
          if (S.m != kNegInf) Z += S.C * std::exp(S.m - M);
        }
      const double lse = M + std::log(Z);
      int64_t written = 0;
      if (Z > 0.0) {
        if (!replacement) {
          all.clear();
          for (int64_t c = 0; c < nchunks; ++c) {
            const int64_t sid = row * nchunks + c;
            const Slot* sl = cons.slots.data() + sid * n;
            all.insert(all.end(), sl, sl + cons.st[sid].filled);
          }
          const int64_t take = std::min<int64_t>(n, static_cast<int64_t>(all.size()));
          std::partial_sort(all.begin(), all.begin() + take, all.end(),
                            [](const Slot& a, const Slot& b) { return a.g > b.g || (a.g == b.g && a.id < b.id); });
          for (; written < take; ++written) {
            oi[written] = all[written].id;
            op[written] = static_cast<float>(all[written].l - lse);
          }
        } else {
          for (int64_t q = 0; q < n; ++q) {
            const Slot* best = nullptr;
            for (int64_t c = 0; c < nchunks; ++c) {
              const int64_t sid = row * nchunks + c;
              if (!cons.st[sid].filled) continue;
              const Slot* sq = cons.slots.data() + sid * n + q;
              if (!best || sq->g > best->g) best = sq;
            }
            oi[q] = best->id;
            op[q] = static_cast<float>(best->l - lse);
          }
          written = n;
        }
      }
      for (int64_t j = written; j < n; ++j) {
        oi[j] = -1;
        op[j] = -std::numeric_limits<float>::infinity();
      }
    }
  }
}

}  // namespace hardneg
