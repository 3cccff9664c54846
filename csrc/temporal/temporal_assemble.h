// temporal_assemble: one call builds what a temporal GNN layer reads for a batch of queries (TGN / TGAT):
// the k neighbours strictly before each query time (tn_visit: recent or uniform), each neighbour's time delta
// to the query's event time as float32 (computed in double, then rounded: 0 on padding) and, optionally, the
// neighbour events' feature rows (zeros on padding). Outputs nbr / eid int64, dt float32, valid uint8 [B, k],
// feat float32 [B, k, F]. Compared with temporal_neighbors + torch ops it writes 13 bytes per entry instead of
// 25 when the edge ids are not wanted (21 when they are), and saves the torch passes (subtract, cast, gather).
#pragma once
#include "temporal/temporal_neighbors.h"

namespace hardneg {

struct TAssembleArgs {
  TQueryArgs q;                    // levels, nodes, query times, B, k, strategy, seed; out_nbr, out_eid (may be
                                   // null), out_valid
  const void* event_times = nullptr;  // T[B]; nullptr: the query times
  const float* features = nullptr;    // [rows, F], row = edge id (checked by the caller); nullptr: none
  int64_t F = 0;
  float* out_dt = nullptr;         // [B, k]
  float* out_feat = nullptr;       // [B, k, F] (when features)
};

// temporal_assemble's outputs for query i from its located ranges. Without an edge-id output (out_eid null:
// no features, ids not wanted) the ids are neither read nor written.
template <class T>
HN_HD void ta_slots(const TAssembleArgs& A, int64_t i, const int64_t* lo, const int64_t* hi, int64_t total) {
  const TQueryArgs& Q = A.q;
  const int64_t k = Q.k, F = A.F;
  int64_t* __restrict__ on = Q.out_nbr + i * k;
  int64_t* __restrict__ oe = Q.out_eid ? Q.out_eid + i * k : nullptr;
  float* __restrict__ od = A.out_dt + i * k;
  uint8_t* __restrict__ ov = Q.out_valid + i * k;
  float* __restrict__ of = A.features ? A.out_feat + i * k * F : nullptr;
  const T* et = static_cast<const T*>(A.event_times ? A.event_times : Q.times);
  const double te = static_cast<double>(et[i]);
  tn_slots<T>(
      Q, i, lo, hi, total, oe,  // the uniform draws' scratch (the caller gives edge ids for "uniform")
      [&](int64_t j, const TLevel<T>& L, int64_t idx) {
        on[j] = L.nbr[idx];
        od[j] = static_cast<float>(te - static_cast<double>(L.time[idx]));
        ov[j] = 1;
        if (oe) oe[j] = L.eid[idx];
        if (of) {
          const float* src = A.features + L.eid[idx] * F;
          for (int64_t f = 0; f < F; ++f) of[j * F + f] = src[f];
        }
      },
      [&](int64_t j) {
        on[j] = -1;
        od[j] = 0.0f;
        ov[j] = 0;
        if (oe) oe[j] = -1;
        if (of)
          for (int64_t f = 0; f < F; ++f) of[j * F + f] = 0.0f;
      });
}

void temporal_assemble_cpu(const TAssembleArgs& A, bool int_time, int threads);

template <class T>
HN_HD void ta_query(const TAssembleArgs& A, int64_t i) {
  int64_t lo[kMaxLevels], hi[kMaxLevels];
  const int64_t total = tn_locate<T>(A.q, i, lo, hi);
  ta_slots<T>(A, i, lo, hi, total);
}

}  // namespace hardneg
