// Temporal family bindings: temporal_neighbors and temporal_assemble on both devices (`on_cuda` selects the CUDA kernel). A graph
// arrives as hardneg.TemporalGraph.kernel_view().core_args(): levels (a [num_levels, 4] table of
// (ptr, nbr, time, eid) data pointers on the graph's device), num_levels, int_time.
#include <string>
#include <vector>

#include "bindings.h"
#include "temporal/temporal_assemble.h"
#include "temporal/temporal_neighbors.h"
#include "temporal/time_encode.h"

namespace hardneg {
namespace {

// The streaming fast path (CPU) skips Python's checks: node ids and NaN times are checked here, in one pass.
void check_queries(const char* op, const int64_t* nodes, const void* times, int64_t B, bool int_time,
                   int64_t num_nodes) {
  for (int64_t i = 0; i < B; ++i)
    if (nodes[i] < 0 || nodes[i] >= num_nodes)
      throw std::invalid_argument(std::string(op) + ": 'nodes' node ids must be in [0, " + std::to_string(num_nodes) +
                                  ") (got " + std::to_string(nodes[i]) + ")");
  if (int_time) return;
  const double* tm = static_cast<const double*>(times);
  for (int64_t i = 0; i < B; ++i)
    if (tm[i] != tm[i]) throw std::invalid_argument(std::string(op) + ": 'times' must not contain NaN");
}

// A query's arguments shared by all four entries (the rest keep TQueryArgs' defaults: no window, no cursor).
TQueryArgs query_args(const void* levels, int num_levels, std::uintptr_t nodes, std::uintptr_t times,
                      int64_t num_queries, int64_t k, int strategy, uint64_t seed, std::uintptr_t out_nbr,
                      std::uintptr_t out_eid, std::uintptr_t out_valid) {
  TQueryArgs A;
  A.levels = levels;
  A.nl = num_levels;
  A.nodes = ptr<const int64_t>(nodes);
  A.times = ptr<const void>(times);
  A.B = num_queries;
  A.k = k;
  A.strategy = strategy;
  A.seed = seed;
  A.out_nbr = ptr<int64_t>(out_nbr);
  A.out_eid = ptr<int64_t>(out_eid);
  A.out_valid = ptr<uint8_t>(out_valid);
  return A;
}

// temporal_assemble's arguments shared by its two entries (no features unless the caller adds them).
TAssembleArgs assemble_args(const void* levels, int num_levels, std::uintptr_t nodes, std::uintptr_t times,
                            std::uintptr_t event_times, int64_t num_queries, int64_t k, int strategy, uint64_t seed,
                            std::uintptr_t out_nbr, std::uintptr_t out_eid, std::uintptr_t out_dt,
                            std::uintptr_t out_valid) {
  TAssembleArgs A;
  A.q = query_args(levels, num_levels, nodes, times, num_queries, k, strategy, seed, out_nbr, out_eid, out_valid);
  A.event_times = ptr<const void>(event_times);
  A.out_dt = ptr<float>(out_dt);
  return A;
}

// A CPU graph state as the streaming lookup reads it (TemporalLevels(**TemporalGraph.kernel_view().core_args(),
// num_nodes=...)): raw pointers, so the view that owns the levels must outlive it. It also owns the streaming
// cursor (TQueryArgs::cursor), allocated on the first call: 4 bytes per (level, node), up to kMaxCursor entries
// (larger graphs search without one). The graph state never changes under it (an append builds a new view), and
// the streaming calls run on one thread with the GIL held, so the cursor needs no lock.
constexpr int64_t kMaxCursor = int64_t{1} << 24;

struct TemporalLevels {
  const void* levels = nullptr;
  int nl = 0;
  bool int_time = true;
  int64_t num_nodes = 0;
  bool use_cursor = true;  // false: plain binary searches (for benchmarks)
  std::vector<int32_t> cursor;

  // Points A at the cursor (allocating it on first use) when the graph is small enough to have one.
  void attach_cursor(TQueryArgs& A) {
    if (!use_cursor || nl * num_nodes > kMaxCursor) return;
    if (cursor.empty()) cursor.assign(static_cast<size_t>(nl * num_nodes), 0);
    A.cursor = cursor.data();
    A.num_nodes = num_nodes;
  }
};

}  // namespace

void register_temporal(py::module_& m) {
  m.def(
      "time_encode_cpu",
      [](std::uintptr_t dt, std::uintptr_t weight, std::uintptr_t bias, std::uintptr_t out_cos, std::uintptr_t out_sin,
         int64_t rows, int64_t dim, int num_threads) {
        HN_CHECK(rows >= 0 && dim >= 0, "time_encode: rows and dim must be >= 0");
        HN_CHECK(rows * dim == 0 || (dt != 0 && weight != 0 && out_cos != 0), "time_encode: null dt, weight or out_cos");
        TimeEncodeArgs A;
        A.dt = ptr<const float>(dt);
        A.w = ptr<const float>(weight);
        A.b = ptr<const float>(bias);
        A.out_cos = ptr<float>(out_cos);
        A.out_sin = ptr<float>(out_sin);
        A.rows = rows;
        A.dim = dim;
        py::gil_scoped_release nogil;
        time_encode_cpu(A, num_threads);
      },
      py::arg("dt"), py::arg("weight"), py::arg("bias"), py::arg("out_cos"), py::arg("out_sin"), py::arg("rows"),
      py::arg("dim"), py::arg("num_threads") = 0);
  py::class_<TemporalLevels>(m, "TemporalLevels",
                             "A CPU hardneg.TemporalGraph state for the streaming lookup: "
                             "TemporalLevels(**TemporalGraph.kernel_view().core_args(), num_nodes=...). "
                             "Holds raw pointers: the view must outlive it.")
      .def(py::init([](std::uintptr_t levels, int num_levels, bool int_time, int64_t num_nodes) {
             HN_CHECK(num_levels >= 1 && num_levels <= kMaxLevels, "TemporalLevels: num_levels must be in [1, 64]");
             HN_CHECK(levels != 0 && num_nodes >= 1, "TemporalLevels: needs a level table and num_nodes >= 1");
             TemporalLevels g;
             g.levels = ptr<const void>(levels);
             g.nl = num_levels;
             g.int_time = int_time;
             g.num_nodes = num_nodes;
             return g;
           }),
           py::arg("levels"), py::arg("num_levels"), py::arg("int_time"), py::arg("num_nodes"))
      .def_readwrite("use_cursor", &TemporalLevels::use_cursor,
                     "Start each search at the node's streaming cursor (default); False: plain binary searches.")
      // temporal_neighbors' CPU streaming entry (recent or uniform, no window): one call per batch with 11
      // arguments instead of 21, ids and NaN checked here, outputs [B, k] each (neighbour and edge id int64,
      // time in the graph's time type, valid). Uniform draws are keyed by (seed, row) as in the threaded kernel,
      // so a call equals the threaded one with the same seed. Small calls keep the GIL (its release costs more
      // than the work).
      .def(
          "lookup",
          [](TemporalLevels& g, std::uintptr_t nodes, std::uintptr_t times, int64_t num_queries, int64_t k,
             int strategy, bool inclusive, uint64_t seed, std::uintptr_t out_nbr, std::uintptr_t out_eid,
             std::uintptr_t out_time, std::uintptr_t out_valid) {
            HN_CHECK(k >= 1 && num_queries >= 0, "temporal_neighbors: needs k >= 1 and num_queries >= 0");
            HN_CHECK(strategy == 0 || strategy == 1, "temporal_neighbors: strategy must be 0 (recent) or 1 (uniform)");
            TQueryArgs A = query_args(g.levels, g.nl, nodes, times, num_queries, k, strategy, seed, out_nbr, out_eid,
                                      out_valid);
            A.inclusive = inclusive;
            A.out_time = ptr<void>(out_time);
            check_queries("temporal_neighbors", A.nodes, A.times, A.B, g.int_time, g.num_nodes);
            g.attach_cursor(A);
            // the Python side sends only calls below 4,096 queries here: one thread, GIL kept
            run_on_device("temporal_neighbors", false, [&] { temporal_neighbors_cpu(A, g.int_time, 1); },
                          [&] { return 0; }, false);
          },
          py::arg("nodes"), py::arg("times"), py::arg("num_queries"), py::arg("k"), py::arg("strategy"),
          py::arg("inclusive"), py::arg("seed"), py::arg("out_nbr"), py::arg("out_eid"), py::arg("out_time"),
          py::arg("out_valid"))
      // temporal_assemble's CPU streaming entry (recent or uniform, no features): int64 times only (the Python
      // side sends float-time graphs through the checked path); out_eid 0 skips the edge ids ("recent" only:
      // uniform draws use the edge-id row as scratch).
      .def(
          "assemble",
          [](TemporalLevels& g, std::uintptr_t nodes, std::uintptr_t times, std::uintptr_t event_times,
             int64_t num_queries, int64_t k, int strategy, uint64_t seed, std::uintptr_t out_nbr,
             std::uintptr_t out_eid, std::uintptr_t out_dt, std::uintptr_t out_valid) {
            HN_CHECK(k >= 1 && num_queries >= 0, "temporal_assemble: needs k >= 1 and num_queries >= 0");
            HN_CHECK(g.int_time, "temporal_assemble: the streaming entry takes int64-time graphs only");
            HN_CHECK(strategy == 0 || (strategy == 1 && out_eid != 0),
                     "temporal_assemble: strategy must be 0 (recent) or 1 (uniform, with an edge-id output)");
            TAssembleArgs A = assemble_args(g.levels, g.nl, nodes, times, event_times, num_queries, k, strategy, seed,
                                            out_nbr, out_eid, out_dt, out_valid);
            check_queries("temporal_assemble", A.q.nodes, A.q.times, A.q.B, true, g.num_nodes);
            g.attach_cursor(A.q);
            run_on_device("temporal_assemble", false, [&] { temporal_assemble_cpu(A, true, 1); },
                          [&] { return 0; }, false);
          },
          py::arg("nodes"), py::arg("times"), py::arg("event_times"), py::arg("num_queries"), py::arg("k"),
          py::arg("strategy"), py::arg("seed"), py::arg("out_nbr"), py::arg("out_eid"), py::arg("out_dt"),
          py::arg("out_valid"));

  m.def(
      "temporal_neighbors",
      [](std::uintptr_t levels, int num_levels, bool int_time, std::uintptr_t nodes, std::uintptr_t times,
         int64_t num_queries, int64_t k, int strategy, bool inclusive, bool has_window, double window, uint64_t seed,
         std::uintptr_t out_nbr, std::uintptr_t out_eid, std::uintptr_t out_time, std::uintptr_t out_valid,
         int num_threads, bool on_cuda, std::uintptr_t stream, int64_t check_num_nodes, int64_t int_window) {
        const char* op = "temporal_neighbors";
        HN_CHECK(num_levels >= 0 && num_levels <= kMaxLevels, "temporal_neighbors: too many levels");
        HN_CHECK(k >= 1, "temporal_neighbors: k must be >= 1");
        HN_CHECK(strategy == 0 || strategy == 1, "temporal_neighbors: strategy must be 0 (recent) or 1 (uniform)");
        HN_CHECK(!has_window || (window >= 0 && int_window >= 0), "temporal_neighbors: window must be >= 0");
        HN_CHECK(!on_cuda || check_num_nodes == 0, "temporal_neighbors: check_num_nodes is for CPU inputs only");
        TQueryArgs A = query_args(ptr<const void>(levels), num_levels, nodes, times, num_queries, k, strategy, seed,
                                  out_nbr, out_eid, out_valid);
        A.inclusive = inclusive;
        A.has_window = has_window;
        A.window = window;
        A.int_window = int_window;
        A.out_time = ptr<void>(out_time);
        if (check_num_nodes > 0) check_queries(op, A.nodes, A.times, A.B, int_time, check_num_nodes);
        // a tiny CPU call (streaming) also skips the GIL release round trip
        run_on_device(op, on_cuda, [&] { temporal_neighbors_cpu(A, int_time, num_threads); },
                      [&] { return cuda::temporal_neighbors(A, int_time, stream_of(stream)); },
                      on_cuda || num_queries >= 128);
      },
      py::arg("levels"), py::arg("num_levels"), py::arg("int_time"), py::arg("nodes"), py::arg("times"),
      py::arg("num_queries"), py::arg("k"), py::arg("strategy"), py::arg("inclusive"), py::arg("has_window"),
      py::arg("window"), py::arg("seed"), py::arg("out_nbr"), py::arg("out_eid"), py::arg("out_time"),
      py::arg("out_valid"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"),
      py::arg("check_num_nodes") = 0, py::arg("int_window") = 0);

  m.def(
      "temporal_assemble",
      [](std::uintptr_t levels, int num_levels, bool int_time, std::uintptr_t nodes, std::uintptr_t times,
         std::uintptr_t event_times, int64_t num_queries, int64_t k, int strategy, uint64_t seed,
         std::uintptr_t features, int64_t num_features, std::uintptr_t out_nbr, std::uintptr_t out_eid,
         std::uintptr_t out_dt, std::uintptr_t out_valid, std::uintptr_t out_feat, int num_threads, bool on_cuda,
         std::uintptr_t stream, int64_t check_num_nodes) {
        const char* op = "temporal_assemble";
        HN_CHECK(num_levels >= 0 && num_levels <= kMaxLevels, "temporal_assemble: too many levels");
        HN_CHECK(k >= 1, "temporal_assemble: k must be >= 1");
        HN_CHECK(strategy == 0 || strategy == 1, "temporal_assemble: strategy must be 0 (recent) or 1 (uniform)");
        HN_CHECK(num_features >= 0 && (features != 0) == (out_feat != 0) && (features != 0 || num_features == 0),
                 "temporal_assemble: features, num_features and out_feat must agree");
        HN_CHECK(!on_cuda || check_num_nodes == 0, "temporal_assemble: check_num_nodes is for CPU inputs only");
        HN_CHECK(out_eid != 0 || (strategy == 0 && features == 0),
                 "temporal_assemble: out_eid is required with features or the uniform strategy");
        TAssembleArgs A = assemble_args(ptr<const void>(levels), num_levels, nodes, times, event_times, num_queries,
                                        k, strategy, seed, out_nbr, out_eid, out_dt, out_valid);
        A.features = ptr<const float>(features);
        A.F = num_features;
        A.out_feat = ptr<float>(out_feat);
        if (check_num_nodes > 0) check_queries(op, A.q.nodes, A.q.times, A.q.B, int_time, check_num_nodes);
        run_on_device(op, on_cuda, [&] { temporal_assemble_cpu(A, int_time, num_threads); },
                      [&] { return cuda::temporal_assemble(A, int_time, stream_of(stream)); },
                      on_cuda || num_queries >= 128);
      },
      py::arg("levels"), py::arg("num_levels"), py::arg("int_time"), py::arg("nodes"), py::arg("times"),
      py::arg("event_times"), py::arg("num_queries"), py::arg("k"), py::arg("strategy"), py::arg("seed"),
      py::arg("features"), py::arg("num_features"), py::arg("out_nbr"), py::arg("out_eid"), py::arg("out_dt"),
      py::arg("out_valid"), py::arg("out_feat"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"),
      py::arg("check_num_nodes") = 0);
}

}  // namespace hardneg
