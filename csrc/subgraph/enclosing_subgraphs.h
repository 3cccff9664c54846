// enclosing_subgraphs: SEAL's k-hop enclosing subgraph of each (s, t) pair with DRNL labels
// (python/hardneg/ops/subgraph.py has the exact definition). One pair is one unit of work, written once here
// for the host and the device: the CPU kernel runs one pair per OpenMP iteration, the CUDA kernel one per
// thread, both with the same Philox stream per (seed, pair, hop), so both return identical subgraphs.
//
// Two passes: `count` gives each pair's node and entry counts; Python allocates the outputs at the prefix
// sums; `fill` writes them. A worker's scratch is 6 int32 per graph node (stamp, local id, node list, BFS
// queue, two distance arrays); stamps make it reusable without clearing: node v is visited by pair i iff
// stamp[v] == i + 1.
#pragma once
#include <cstdint>

#include "common/common.h"
#include "common/philox.h"

namespace hardneg {

struct SubgraphArgs {
  const int64_t* indptr = nullptr;   // [N+1] CSR of the graph (hardneg.graph.CSRGraph)
  const int64_t* indices = nullptr;  // [nnz]
  int64_t num_nodes = 0;
  const int64_t* pairs = nullptr;    // [P, 2]
  int64_t num_pairs = 0;
  int hops = 1;
  int64_t cap = 0;                   // max new nodes per hop (0: all)
  uint64_t seed = 0;
  // count pass
  int64_t* node_count = nullptr;     // [P]
  int64_t* edge_count = nullptr;     // [P]
  // fill pass
  const int64_t* node_ptr = nullptr;  // [P+1]
  const int64_t* edge_ptr = nullptr;  // [P+1]
  int64_t* out_nodes = nullptr;       // [T] global ids
  int64_t* out_src = nullptr;         // [E] batch-numbered entries (edge_index row 0)
  int64_t* out_dst = nullptr;         // [E] (edge_index row 1)
  int64_t* out_labels = nullptr;      // [T] DRNL
};

constexpr int kSubgraphScratch = 6;  // int32 arrays of num_nodes entries per worker

// DRNL of a node at distance ds from s (without t) and dt from t (without s); -1 = unreachable -> 0.
HN_HD int64_t drnl_label(int32_t ds, int32_t dt) {
  if (ds < 0 || dt < 0) return 0;
  const int64_t d = ds + dt, h = d / 2, r = d % 2;
  return 1 + (ds < dt ? ds : dt) + h * (h + r - 1);
}

// BFS over the subgraph's nodes (local ids < n) from `root`, never entering `banned`; dist[] per local id.
HN_HD void subgraph_bfs(const SubgraphArgs& A, const int32_t* nodes, int32_t n, const int32_t* stamp,
                        const int32_t* local, int32_t cur, int32_t root, int32_t banned, int32_t* queue,
                        int32_t* dist) {
  for (int32_t i = 0; i < n; ++i) dist[i] = -1;
  dist[root] = 0;
  int32_t head = 0, tail = 0;
  queue[tail++] = root;
  while (head < tail) {
    const int32_t a = queue[head++];
    const int64_t u = nodes[a];
    for (int64_t e = A.indptr[u]; e < A.indptr[u + 1]; ++e) {
      const int64_t w = A.indices[e];
      if (stamp[w] != cur) continue;
      const int32_t b = local[w];
      if (b < 0 || b == banned || dist[b] >= 0) continue;
      dist[b] = dist[a] + 1;
      queue[tail++] = b;
    }
  }
}

// The subgraph of pair i. `scratch` is this worker's 6 x num_nodes int32. fill = false: counts only.
HN_HD void enclosing_subgraph_one(const SubgraphArgs& A, int64_t i, int32_t* scratch, bool fill) {
  const int64_t N = A.num_nodes;
  int32_t* stamp = scratch;
  int32_t* local = scratch + N;      // local id of a visited node; -1: visited but dropped by the cap
  int32_t* nodes = scratch + 2 * N;  // global id per local id (< N fits int32)
  int32_t* queue = scratch + 3 * N;
  int32_t* ds = scratch + 4 * N;
  int32_t* dt = scratch + 5 * N;
  const int32_t cur = static_cast<int32_t>(i + 1);
  const int64_t s = A.pairs[2 * i], t = A.pairs[2 * i + 1];
  int32_t n = 0;
  stamp[s] = cur;
  local[s] = n;
  nodes[n++] = static_cast<int32_t>(s);
  stamp[t] = cur;
  local[t] = n;
  nodes[n++] = static_cast<int32_t>(t);
  int32_t f_begin = 0, f_end = 2;  // the frontier is nodes[f_begin:f_end]
  for (int h = 1; h <= A.hops; ++h) {
    const int32_t start = n;
    for (int32_t a = f_begin; a < f_end; ++a) {
      const int64_t u = nodes[a];
      for (int64_t e = A.indptr[u]; e < A.indptr[u + 1]; ++e) {
        const int64_t w = A.indices[e];
        if (stamp[w] == cur) continue;
        stamp[w] = cur;
        local[w] = n;
        nodes[n++] = static_cast<int32_t>(w);
      }
    }
    const int32_t found = n - start;
    if (A.cap > 0 && found > A.cap) {  // keep cap of them, uniformly: a partial Fisher-Yates shuffle
      Philox4x32 rng(A.seed, static_cast<uint64_t>(i), static_cast<uint64_t>(h));
      const int32_t keep = static_cast<int32_t>(A.cap);
      for (int32_t j = 0; j < keep; ++j) {
        int32_t r = j + static_cast<int32_t>(rng.uniform() * (found - j));
        if (r >= found) r = found - 1;
        const int32_t tmp = nodes[start + j];
        nodes[start + j] = nodes[start + r];
        nodes[start + r] = tmp;
      }
      for (int32_t j = keep; j < found; ++j) local[nodes[start + j]] = -1;  // visited, never expanded
      for (int32_t j = 0; j < keep; ++j) local[nodes[start + j]] = start + j;
      n = start + keep;
    }
    if (n == start) break;
    f_begin = start;
    f_end = n;
  }
  int64_t ecount = 0;
  const int64_t noff = fill ? A.node_ptr[i] : 0, eoff = fill ? A.edge_ptr[i] : 0;
  for (int32_t a = 0; a < n; ++a) {
    const int64_t u = nodes[a];
    for (int64_t e = A.indptr[u]; e < A.indptr[u + 1]; ++e) {
      const int64_t w = A.indices[e];
      if (stamp[w] != cur) continue;
      const int32_t b = local[w];
      if (b < 0 || (a < 2 && b == 1 - a)) continue;  // dropped, or the target link itself
      if (fill) {
        A.out_src[eoff + ecount] = noff + a;
        A.out_dst[eoff + ecount] = noff + b;
      }
      ++ecount;
    }
  }
  if (!fill) {
    A.node_count[i] = n;
    A.edge_count[i] = ecount;
    return;
  }
  subgraph_bfs(A, nodes, n, stamp, local, cur, 0, 1, queue, ds);
  subgraph_bfs(A, nodes, n, stamp, local, cur, 1, 0, queue, dt);
  for (int32_t a = 0; a < n; ++a) {
    A.out_nodes[noff + a] = nodes[a];
    A.out_labels[noff + a] = a < 2 ? 1 : drnl_label(ds[a], dt[a]);
  }
}

void enclosing_subgraphs_cpu(const SubgraphArgs& A, bool fill, int num_threads);

}  // namespace hardneg
