// Subgraph family bindings: enclosing_subgraphs on both devices (`on_cuda` selects the CUDA kernel). A graph
// arrives as hardneg.graph.CSRGraph.kernel_view().core_args(): indptr, indices (data pointers on the graph's
// device), num_nodes, num_entries. Two calls per batch: fill=False writes the per-pair counts, fill=True the
// subgraphs at the offsets Python computed from them.
#include <string>

#include "bindings.h"
#include "subgraph/enclosing_subgraphs.h"

namespace hardneg {

void register_subgraph(py::module_& m) {
  m.def(
      "enclosing_subgraphs",
      [](std::uintptr_t indptr, std::uintptr_t indices, int64_t num_nodes, int64_t num_entries, std::uintptr_t pairs,
         int64_t num_pairs, int hops, int64_t max_nodes_per_hop, uint64_t seed, bool fill, std::uintptr_t node_count,
         std::uintptr_t edge_count, std::uintptr_t node_ptr, std::uintptr_t edge_ptr, std::uintptr_t out_nodes,
         std::uintptr_t out_src, std::uintptr_t out_dst, std::uintptr_t out_labels, std::uintptr_t scratch,
         int64_t workers, int num_threads, bool on_cuda, std::uintptr_t stream) {
        const char* op = "enclosing_subgraphs";
        HN_CHECK(num_nodes >= 1 && num_nodes < (int64_t{1} << 31), "enclosing_subgraphs: num_nodes must be in [1, 2^31)");
        HN_CHECK(num_entries >= 0, "enclosing_subgraphs: num_entries must be >= 0");
        HN_CHECK(num_pairs >= 0 && num_pairs < (int64_t{1} << 31) - 1, "enclosing_subgraphs: too many pairs (< 2^31 - 1)");
        HN_CHECK(hops >= 1, "enclosing_subgraphs: hops must be >= 1");
        HN_CHECK(max_nodes_per_hop >= 0 && max_nodes_per_hop < (int64_t{1} << 31),
                 "enclosing_subgraphs: max_nodes_per_hop must be in [0, 2^31)");
        HN_CHECK(indptr != 0 && (indices != 0 || num_entries == 0) && (pairs != 0 || num_pairs == 0),
                 "enclosing_subgraphs: null graph or pair pointer");
        if (fill)
          HN_CHECK(node_ptr && edge_ptr && out_nodes && out_labels && (out_src && out_dst),
                   "enclosing_subgraphs: fill needs node_ptr, edge_ptr and the output pointers");
        else
          HN_CHECK(node_count && edge_count, "enclosing_subgraphs: the count pass needs node_count and edge_count");
        HN_CHECK(!on_cuda || (scratch != 0 && workers >= 1), "enclosing_subgraphs: CUDA needs scratch and workers");
        SubgraphArgs A;
        A.indptr = ptr<const int64_t>(indptr);
        A.indices = ptr<const int64_t>(indices);
        A.num_nodes = num_nodes;
        A.pairs = ptr<const int64_t>(pairs);
        A.num_pairs = num_pairs;
        A.hops = hops;
        A.cap = max_nodes_per_hop;
        A.seed = seed;
        A.node_count = ptr<int64_t>(node_count);
        A.edge_count = ptr<int64_t>(edge_count);
        A.node_ptr = ptr<const int64_t>(node_ptr);
        A.edge_ptr = ptr<const int64_t>(edge_ptr);
        A.out_nodes = ptr<int64_t>(out_nodes);
        A.out_src = ptr<int64_t>(out_src);
        A.out_dst = ptr<int64_t>(out_dst);
        A.out_labels = ptr<int64_t>(out_labels);
        if (!on_cuda) {  // host memory: re-check what the walk would read (ids in range, a valid CSR)
          HN_CHECK(A.indptr[0] == 0 && A.indptr[num_nodes] == num_entries, "enclosing_subgraphs: indptr must span indices");
          for (int64_t i = 0; i < 2 * num_pairs; ++i)
            if (A.pairs[i] < 0 || A.pairs[i] >= num_nodes)
              throw std::invalid_argument(std::string(op) + ": pair node ids must be in [0, " + std::to_string(num_nodes) +
                                          ") (got " + std::to_string(A.pairs[i]) + ")");
        }
        run_on_device(op, on_cuda, [&] { enclosing_subgraphs_cpu(A, fill, num_threads); },
                      [&] { return cuda::enclosing_subgraphs(A, ptr<int32_t>(scratch), workers, fill, stream_of(stream)); });
      },
      py::arg("indptr"), py::arg("indices"), py::arg("num_nodes"), py::arg("num_entries"), py::arg("pairs"),
      py::arg("num_pairs"), py::arg("hops"), py::arg("max_nodes_per_hop"), py::arg("seed"), py::arg("fill"),
      py::arg("node_count") = 0, py::arg("edge_count") = 0, py::arg("node_ptr") = 0, py::arg("edge_ptr") = 0,
      py::arg("out_nodes") = 0, py::arg("out_src") = 0, py::arg("out_dst") = 0, py::arg("out_labels") = 0,
      py::arg("scratch") = 0, py::arg("workers") = 0, py::arg("num_threads") = 0, py::arg("on_cuda") = false,
      py::arg("stream") = 0);
}

}  // namespace hardneg
