// The one tiled scan shared by topk_mine and sample_by_score (CPU).
//
// Work is split into items (query block of kQBlock rows) x (candidate chunk of kChunk rows). The chunking is
// fixed, independent of the thread count, so the stochastic consumers (one Philox stream per (row, chunk))
// give the same result on any number of threads. Inside an item, each candidate tile of `nc` rows is packed
// once (nc*d*4 bytes, ~128 KiB, L2-resident) and then scored against every query row of the block, 6 rows at
// a time; the consumer sees one row's scores for one tile at a time, with excluded ids already set to -inf.
// Nothing of size B x N is ever allocated: memory is O(threads * tile) plus whatever the consumer keeps.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include <omp.h>

#include "common/common.h"
#include "common/score_tile.h"

namespace hardneg {

constexpr int64_t kChunk = 65536;
constexpr int64_t kQBlockDefault = 256;  // a packed candidate tile serves this many queries

struct MiningProblem {
  const float* q = nullptr;
  int64_t ldq = 0, B = 0;
  const float* c = nullptr;
  int64_t ldc = 0, N = 0;
  int d = 0;
  int metric = kDot;
  const float* weight = nullptr;  // [d], metric kMlp only: the decoder's output weights
  // metric kMlp only, may be null: per-pair terms inside the ReLU, CSR [B+1] over ids (sorted and unique per row)
  // with one [d] row of off_val each (row stride d); such a pair scores w·relu(q + c + o) instead
  const int64_t* off_ptr = nullptr;
  const int64_t* off_idx = nullptr;
  const float* off_val = nullptr;
  const int64_t* ex_ptr = nullptr;  // CSR [B+1], rows sorted and unique, ids in [0, N); may be null
  const int64_t* ex_idx = nullptr;
  int num_threads = 0;

  int64_t num_chunks() const { return N == 0 ? 0 : (N + kChunk - 1) / kChunk; }
};

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using FloatBuf = std::unique_ptr<float[], AlignedFree>;
inline FloatBuf alloc_floats(size_t n) {
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  if (bytes == 0) bytes = 64;
  return FloatBuf(static_cast<float*>(std::aligned_alloc(64, bytes)));
}

inline int64_t env_int(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  return v ? std::max<int64_t>(1, std::atoll(v)) : dflt;
}
// tuning knobs (defaults measured on the 2-core AVX2 CI machine; HARDNEG_QBLOCK / HARDNEG_TILE_KB override)
inline int64_t query_block() {
  static const int64_t v = env_int("HARDNEG_QBLOCK", kQBlockDefault);
  return v;
}

inline int tile_rows(int d) {
  // ~128 KiB of packed candidates per tile; a multiple of kNR.
  static const int64_t kb = env_int("HARDNEG_TILE_KB", 128);
  int nc = static_cast<int>(kb * 256 / std::max(d, 1));
  nc = (nc / kNR) * kNR;
  return std::min(1024, std::max(kNR, nc));
}

// Consumer interface:
//   void row(int64_t row, int64_t chunk, const float* s, int64_t t0, int nt);
// called for every (row, tile) in chunk order within a (row, chunk); rows of one item go to one thread.
template <class Consumer>
void mining_scan(const MiningProblem& P, Consumer& cons) {
  if (P.B == 0 || P.N == 0) return;
  const TileKernels& K = tile_kernels();
  const int d = P.d;
  const int NC = tile_rows(d);
  const int64_t ncc = P.num_chunks();
  const int64_t want = resolve_threads(P.num_threads);
  int64_t kQBlock = query_block();
  if (((P.B + kQBlock - 1) / kQBlock) * ncc < want) {
    // fewer items than threads (a small batch against a small table): smaller query blocks, a multiple of kMR,
    // so that every thread gets rows; each block packs the tiles once more (N·d copies against its rows' N·d
    // multiply-adds per row). Rows, not candidates, are split, so the (row, chunk) streams do not change.
    const int64_t per_chunk = (want + ncc - 1) / ncc;
    const int64_t rows = (P.B + per_chunk - 1) / per_chunk;
    kQBlock = std::max<int64_t>(kMR, (rows + kMR - 1) / kMR * kMR);
  }
  const int64_t nqb = (P.B + kQBlock - 1) / kQBlock;
  const int64_t items = nqb * ncc;
  const int threads = static_cast<int>(std::min<int64_t>(want, items));

  std::vector<float> qaux_all(P.B);
  for (int64_t i = 0; i < P.B; ++i) qaux_all[i] = query_aux(P.q + i * P.ldq, d, P.metric);

#pragma omp parallel num_threads(threads)
  {
    FloatBuf packed = alloc_floats(static_cast<size_t>(NC) * d);
    std::vector<float> caux(NC);
    FloatBuf qbuf = alloc_floats(static_cast<size_t>(kMR) * d);
    float qaux[kMR];
    FloatBuf s = alloc_floats(static_cast<size_t>(kMR) * NC);
    std::vector<int64_t> exptr(kQBlock);  // per-row exclusion cursors of the current item
    std::vector<int64_t> offptr(P.off_ptr ? kQBlock : 0);  // per-row offset cursors (kMlp)

#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      // candidate chunk outer: consecutive items share query blocks (their rows stay in L2)
      const int64_t cc = it / nqb, qb = it % nqb;
      const int64_t q0 = qb * kQBlock, q1 = std::min(P.B, q0 + kQBlock);
      const int64_t c0 = cc * kChunk, c1 = std::min(P.N, c0 + kChunk);
      if (P.ex_ptr) {
        for (int64_t r = q0; r < q1; ++r) {
          const int64_t* b = P.ex_idx + P.ex_ptr[r];
          const int64_t* e = P.ex_idx + P.ex_ptr[r + 1];
          exptr[r - q0] = std::lower_bound(b, e, c0) - P.ex_idx;
        }
      }
      if (P.off_ptr) {
        for (int64_t r = q0; r < q1; ++r) {
          const int64_t* b = P.off_idx + P.off_ptr[r];
          const int64_t* e = P.off_idx + P.off_ptr[r + 1];
          offptr[r - q0] = std::lower_bound(b, e, c0) - P.off_idx;
        }
      }
      for (int64_t t0 = c0; t0 < c1; t0 += NC) {
        const int nt = static_cast<int>(std::min<int64_t>(NC, c1 - t0));
        const int ncpad = ((nt + kNR - 1) / kNR) * kNR;
        K.pack(P.c + t0 * P.ldc, P.ldc, nt, d, P.metric, packed.get(), caux.data());
        for (int64_t r0 = q0; r0 < q1; r0 += kMR) {
          const int mr = static_cast<int>(std::min<int64_t>(kMR, q1 - r0));
          const float* qrows = P.q + r0 * P.ldq;
          int64_t ldq = P.ldq;
          if (mr < kMR) {  // only the last group of a block is copied (zero-padded); the rest is read in place
            for (int r = 0; r < kMR; ++r) {
              float* dst = qbuf.get() + r * d;
              for (int k = 0; k < d; ++k) dst[k] = r < mr ? P.q[(r0 + r) * P.ldq + k] : 0.f;
            }
            qrows = qbuf.get();
            ldq = d;
          }
          for (int r = 0; r < kMR; ++r) qaux[r] = r < mr ? qaux_all[r0 + r] : 0.f;
          if (P.metric == kMlp) {
            K.mlp_scores(qrows, ldq, P.weight, packed.get(), ncpad, d, s.get());
          } else {
            K.scores(qrows, ldq, qaux, packed.get(), caux.data(), ncpad, d, P.metric, s.get());
          }
          for (int r = 0; r < mr; ++r) {
            const int64_t row = r0 + r;
            float* srow = s.get() + r * ncpad;
            if (P.ex_ptr) {
              int64_t p = exptr[row - q0];
              const int64_t pe = P.ex_ptr[row + 1];
              const int64_t t1 = t0 + nt;
              while (p < pe && P.ex_idx[p] < t1) {
                srow[P.ex_idx[p] - t0] = -std::numeric_limits<float>::infinity();
                ++p;
              }
              exptr[row - q0] = p;
            }
            if (P.off_ptr) {  // the pairs with a term of their own, scored exactly (excluded ones stay -inf)
              int64_t p = offptr[row - q0];
              const int64_t pe = P.off_ptr[row + 1];
              const int64_t t1 = t0 + nt;
              for (; p < pe && P.off_idx[p] < t1; ++p) {
                float& v = srow[P.off_idx[p] - t0];
                if (v == -std::numeric_limits<float>::infinity()) continue;
                const float* qr = P.q + row * P.ldq;
                const float* cr = P.c + P.off_idx[p] * P.ldc;
                const float* o = P.off_val + p * d;
                float acc = 0.f;
                for (int k = 0; k < d; ++k) acc += P.weight[k] * std::max(qr[k] + cr[k] + o[k], 0.f);
                v = acc;
              }
              offptr[row - q0] = p;
            }
            cons.row(row, cc, srow, t0, nt);
          }
        }
      }
    }
  }
}

}  // namespace hardneg
