// Filtering family bindings: KnownSet queries (contains / mask / exclusion) and filtered corruption, each one
// entry for both devices (`on_cuda` selects the CUDA kernel, launched on `stream`). A known set arrives as one
// `known` argument, a KnownView built from hardneg.KnownSet.kernel_view().core_args().
#include <string>

#include "bindings.h"
#include "filtering/filtering.h"

namespace hardneg {
namespace {

// Each key array is allocated with its fences appended: [keys (size) | keys[::64] (ceil(size / 64))].
KnownView make_view(std::uintptr_t tail, std::uintptr_t head, std::uintptr_t first_time,
                    int64_t size, int64_t num_entities, int64_t num_relations) {
  HN_CHECK(size >= 0 && num_entities >= 1 && num_relations >= 1,
           "KnownView: needs size >= 0, num_entities >= 1, num_relations >= 1");
  HN_CHECK(tail != 0 && head != 0, "KnownView: null key arrays");
  KnownView K;
  K.kt = ptr<const int64_t>(tail);
  K.kh = ptr<const int64_t>(head);
  K.ft = K.kt + size;
  K.fh = K.kh + size;
  K.first_time = ptr<const double>(first_time);
  K.m = size;
  K.E = num_entities;
  K.R = num_relations;
  return K;
}

void check_side(const char* op, int side) {
  HN_CHECK(side == 0 || side == 1, std::string(op) + ": side must be 0 (tail) or 1 (head)");
}

}  // namespace

void register_filtering(py::module_& m) {
  py::class_<KnownView>(m, "KnownView",
                        "A hardneg.KnownSet as the filtering kernels read it: KnownView(**KnownSet.kernel_view()"
                        ".core_args()). Holds raw pointers: the KnownSet must outlive it.")
      .def(py::init(&make_view), py::arg("tail"), py::arg("head"), py::arg("first_time"),
           py::arg("size"), py::arg("num_entities"), py::arg("num_relations"))
      .def_readonly("size", &KnownView::m)
      .def_readonly("num_entities", &KnownView::E)
      .def_readonly("num_relations", &KnownView::R);

  m.def(
      "known_contains",
      [](const KnownView& known, std::uintptr_t keys, int64_t num_queries, int width, std::uintptr_t before,
         bool inclusive, std::uintptr_t out, int num_threads, bool on_cuda, std::uintptr_t stream) {
        HN_CHECK(width == 2 || width == 3, "known_contains: width must be 2 or 3");
        HN_CHECK(!before || known.first_time, "known_contains: 'before' needs a known set built with times");
        const int64_t* k = ptr<const int64_t>(keys);
        const double* bf = ptr<const double>(before);
        uint8_t* o = ptr<uint8_t>(out);
        run_on_device(
            "known_contains", on_cuda,
            [&] { known_contains_cpu(known, k, num_queries, width, bf, inclusive, o, num_threads); },
            [&] { return cuda::known_contains(known, k, num_queries, width, bf, inclusive, o, stream_of(stream)); });
      },
      py::arg("known"), py::arg("keys"), py::arg("num_queries"), py::arg("width"), py::arg("before"),
      py::arg("inclusive"), py::arg("out"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));

  m.def(
      "known_mask",
      [](const KnownView& known, int side, std::uintptr_t anchor, std::uintptr_t candidates, int64_t num_queries,
         int64_t num_candidates, std::uintptr_t out, int num_threads, bool on_cuda, std::uintptr_t stream) {
        check_side("known_mask", side);
        const int64_t* a = ptr<const int64_t>(anchor);
        const int64_t* c = ptr<const int64_t>(candidates);
        uint8_t* o = ptr<uint8_t>(out);
        run_on_device(
            "known_mask", on_cuda,
            [&] { known_mask_cpu(known, side, a, c, num_queries, num_candidates, o, num_threads); },
            [&] { return cuda::known_mask(known, side, a, c, num_queries, num_candidates, o, stream_of(stream)); });
      },
      py::arg("known"), py::arg("side"), py::arg("anchor"), py::arg("candidates"), py::arg("num_queries"),
      py::arg("num_candidates"), py::arg("out"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));

  // the exclusion CSR in two calls: count (begin / count per query), then fill (into indptr from the cumsum)
  m.def(
      "known_exclusion_count",
      [](const KnownView& known, int side, std::uintptr_t anchor, int64_t num_queries, std::uintptr_t out_begin,
         std::uintptr_t out_count, int num_threads, bool on_cuda, std::uintptr_t stream) {
        check_side("known_exclusion", side);
        const int64_t* a = ptr<const int64_t>(anchor);
        int64_t* begin = ptr<int64_t>(out_begin);
        int64_t* count = ptr<int64_t>(out_count);
        run_on_device(
            "known_exclusion", on_cuda,
            [&] { known_exclusion_count_cpu(known, side, a, num_queries, begin, count, num_threads); },
            [&] { return cuda::known_exclusion_count(known, side, a, num_queries, begin, count, stream_of(stream)); });
      },
      py::arg("known"), py::arg("side"), py::arg("anchor"), py::arg("num_queries"), py::arg("out_begin"),
      py::arg("out_count"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));
  m.def(
      "known_exclusion_fill",
      [](const KnownView& known, int side, std::uintptr_t anchor, int64_t num_queries, std::uintptr_t begin,
         std::uintptr_t indptr, std::uintptr_t out_indices, int num_threads, bool on_cuda, std::uintptr_t stream) {
        check_side("known_exclusion", side);
        const int64_t* a = ptr<const int64_t>(anchor);
        const int64_t* b = ptr<const int64_t>(begin);
        const int64_t* p = ptr<const int64_t>(indptr);
        int64_t* idx = ptr<int64_t>(out_indices);
        run_on_device(
            "known_exclusion", on_cuda,
            [&] { known_exclusion_fill_cpu(known, side, a, num_queries, b, p, idx, num_threads); },
            [&] { return cuda::known_exclusion_fill(known, side, a, num_queries, b, p, idx, stream_of(stream)); });
      },
      py::arg("known"), py::arg("side"), py::arg("anchor"), py::arg("num_queries"), py::arg("begin"),
      py::arg("indptr"), py::arg("out_indices"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));

  // known None: unfiltered. The domain CSRs (per relation, allowed heads / tails) are optional (0).
  m.def(
      "corrupt",
      [](std::uintptr_t positives, int64_t num_positives, int width, int64_t num_negatives, int64_t num_entities,
         int64_t num_relations, int side_mode, std::uintptr_t head_prob, std::uintptr_t domain_head_indptr,
         std::uintptr_t domain_head_ids, std::uintptr_t domain_tail_indptr, std::uintptr_t domain_tail_ids,
         const KnownView* known, uint64_t seed, int max_tries, std::uintptr_t out, std::uintptr_t out_valid,
         int num_threads, bool on_cuda, std::uintptr_t stream) {
        HN_CHECK(width == 2 || width == 3, "corrupt: width must be 2 or 3");
        HN_CHECK(num_negatives >= 1 && num_entities >= 1 && num_relations >= 1,
                 "corrupt: need num_negatives >= 1, num_entities >= 1, num_relations >= 1");
        HN_CHECK(side_mode >= 0 && side_mode <= 3, "corrupt: side_mode must be 0 (tail), 1 (head), 2 (both) or "
                                                    "3 (bernoulli)");
        HN_CHECK(side_mode != 3 || head_prob, "corrupt: bernoulli needs head probabilities");
        HN_CHECK(max_tries >= 1, "corrupt: max_tries must be >= 1");
        CorruptArgs A;
        A.pos = ptr<const int64_t>(positives);
        A.B = num_positives;
        A.width = width;
        A.n = num_negatives;
        A.E = num_entities;
        A.R = num_relations;
        A.side_mode = side_mode;
        A.p_head = ptr<const float>(head_prob);
        A.dom_ptr[0] = ptr<const int64_t>(domain_head_indptr);
        A.dom_idx[0] = domain_head_indptr ? ptr<const int64_t>(domain_head_ids) : nullptr;
        A.dom_ptr[1] = ptr<const int64_t>(domain_tail_indptr);
        A.dom_idx[1] = domain_tail_indptr ? ptr<const int64_t>(domain_tail_ids) : nullptr;
        A.filtered = known != nullptr;
        if (A.filtered) {
          HN_CHECK(known->E == num_entities && known->R == num_relations,
                   "corrupt: the known set's num_entities / num_relations differ from the call's");
          A.K = *known;
        }
        A.seed = seed;
        A.tries = max_tries;
        A.out = ptr<int64_t>(out);
        A.valid = ptr<uint8_t>(out_valid);
        run_on_device("corrupt", on_cuda, [&] { corrupt_cpu(A, num_threads); },
                      [&] { return cuda::corrupt(A, stream_of(stream)); });
      },
      py::arg("positives"), py::arg("num_positives"), py::arg("width"), py::arg("num_negatives"),
      py::arg("num_entities"), py::arg("num_relations"), py::arg("side_mode"), py::arg("head_prob"),
      py::arg("domain_head_indptr"), py::arg("domain_head_ids"), py::arg("domain_tail_indptr"),
      py::arg("domain_tail_ids"), py::arg("known").none(true), py::arg("seed"), py::arg("max_tries"), py::arg("out"), py::arg("out_valid"), py::arg("num_threads"),
      py::arg("on_cuda"), py::arg("stream"));
}

}  // namespace hardneg
