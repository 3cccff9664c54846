// Filtering family bindings: KnownSet queries (contains / mask / exclusion) and filtered corruption, each one
// entry for both devices (`on_cuda` selects the CUDA kernel, launched on `stream`). A known set arrives as
// hardneg.KnownSet.kernel_view().core_args(): known_tail, known_head, known_size, num_entities, num_relations.
#include <string>

#include "bindings.h"
#include "filtering/filtering.h"

namespace hardneg {
namespace {

// Each key array is allocated with its fences appended: [keys (size) | keys[::64] (ceil(size / 64))].
KnownView make_view(const char* op, std::uintptr_t known_tail, std::uintptr_t known_head, std::uintptr_t first_time,
                    int64_t known_size, int64_t num_entities, int64_t num_relations) {
  HN_CHECK(known_size >= 0 && num_entities >= 1 && num_relations >= 1,
           std::string(op) + ": known set needs known_size >= 0, num_entities >= 1, num_relations >= 1");
  HN_CHECK(known_tail != 0 && known_head != 0, std::string(op) + ": null known-set key arrays");
  KnownView K;
  K.kt = ptr<const int64_t>(known_tail);
  K.kh = ptr<const int64_t>(known_head);
  K.ft = K.kt + known_size;
  K.fh = K.kh + known_size;
  K.first_time = ptr<const double>(first_time);
  K.m = known_size;
  K.E = num_entities;
  K.R = num_relations;
  return K;
}

void check_side(const char* op, int side) {
  HN_CHECK(side == 0 || side == 1, std::string(op) + ": side must be 0 (tail) or 1 (head)");
}

}  // namespace

void register_filtering(py::module_& m) {
  m.def(
      "known_contains",
      [](std::uintptr_t known_tail, std::uintptr_t known_head, std::uintptr_t known_first_time, int64_t known_size,
         int64_t num_entities, int64_t num_relations, std::uintptr_t keys, int64_t num_queries, int width,
         std::uintptr_t before, bool inclusive, std::uintptr_t out, int num_threads, bool on_cuda,
         std::uintptr_t stream) {
        const char* op = "known_contains";
        HN_CHECK(width == 2 || width == 3, "known_contains: width must be 2 or 3");
        HN_CHECK(!before || known_first_time, "known_contains: 'before' needs a known set built with times");
        const KnownView K =
            make_view(op, known_tail, known_head, known_first_time, known_size, num_entities, num_relations);
        const int64_t* k = ptr<const int64_t>(keys);
        const double* bf = ptr<const double>(before);
        uint8_t* o = ptr<uint8_t>(out);
        run_on_device(
            op, on_cuda, [&] { known_contains_cpu(K, k, num_queries, width, bf, inclusive, o, num_threads); },
            [&] { return cuda::known_contains(K, k, num_queries, width, bf, inclusive, o, stream_of(stream)); });
      },
      py::arg("known_tail"), py::arg("known_head"), py::arg("known_first_time"), py::arg("known_size"),
      py::arg("num_entities"), py::arg("num_relations"), py::arg("keys"), py::arg("num_queries"), py::arg("width"),
      py::arg("before"), py::arg("inclusive"), py::arg("out"), py::arg("num_threads"), py::arg("on_cuda"),
      py::arg("stream"));

  m.def(
      "known_mask",
      [](std::uintptr_t known_tail, std::uintptr_t known_head, int64_t known_size, int64_t num_entities,
         int64_t num_relations, int side, std::uintptr_t anchor, std::uintptr_t candidates, int64_t num_queries,
         int64_t num_candidates, std::uintptr_t out, int num_threads, bool on_cuda, std::uintptr_t stream) {
        const char* op = "known_mask";
        check_side(op, side);
        const KnownView K = make_view(op, known_tail, known_head, 0, known_size, num_entities, num_relations);
        const int64_t* a = ptr<const int64_t>(anchor);
        const int64_t* c = ptr<const int64_t>(candidates);
        uint8_t* o = ptr<uint8_t>(out);
        run_on_device(
            op, on_cuda, [&] { known_mask_cpu(K, side, a, c, num_queries, num_candidates, o, num_threads); },
            [&] { return cuda::known_mask(K, side, a, c, num_queries, num_candidates, o, stream_of(stream)); });
      },
      py::arg("known_tail"), py::arg("known_head"), py::arg("known_size"), py::arg("num_entities"),
      py::arg("num_relations"), py::arg("side"), py::arg("anchor"), py::arg("candidates"), py::arg("num_queries"),
      py::arg("num_candidates"), py::arg("out"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));

  // exclusion CSR in two calls: count (begin / count per query), then fill (into indptr from the cumsum)
  m.def(
      "known_exclusion_count",
      [](std::uintptr_t known_tail, std::uintptr_t known_head, int64_t known_size, int64_t num_entities,
         int64_t num_relations, int side, std::uintptr_t anchor, int64_t num_queries, std::uintptr_t out_begin,
         std::uintptr_t out_count, int num_threads, bool on_cuda, std::uintptr_t stream) {
        const char* op = "known_exclusion";
        check_side(op, side);
        const KnownView K = make_view(op, known_tail, known_head, 0, known_size, num_entities, num_relations);
        const int64_t* a = ptr<const int64_t>(anchor);
        int64_t* begin = ptr<int64_t>(out_begin);
        int64_t* count = ptr<int64_t>(out_count);
        run_on_device(
            op, on_cuda, [&] { known_exclusion_count_cpu(K, side, a, num_queries, begin, count, num_threads); },
            [&] { return cuda::known_exclusion_count(K, side, a, num_queries, begin, count, stream_of(stream)); });
      },
      py::arg("known_tail"), py::arg("known_head"), py::arg("known_size"), py::arg("num_entities"),
      py::arg("num_relations"), py::arg("side"), py::arg("anchor"), py::arg("num_queries"), py::arg("out_begin"),
      py::arg("out_count"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));

  m.def(
      "known_exclusion_fill",
      [](std::uintptr_t known_tail, std::uintptr_t known_head, int64_t known_size, int64_t num_entities,
         int64_t num_relations, int side, std::uintptr_t anchor, int64_t num_queries, std::uintptr_t begin,
         std::uintptr_t indptr, std::uintptr_t out_indices, int num_threads, bool on_cuda, std::uintptr_t stream) {
        const char* op = "known_exclusion";
        check_side(op, side);
        const KnownView K = make_view(op, known_tail, known_head, 0, known_size, num_entities, num_relations);
        const int64_t* a = ptr<const int64_t>(anchor);
        const int64_t* b = ptr<const int64_t>(begin);
        const int64_t* p = ptr<const int64_t>(indptr);
        int64_t* idx = ptr<int64_t>(out_indices);
        run_on_device(
            op, on_cuda, [&] { known_exclusion_fill_cpu(K, side, a, num_queries, b, p, idx, num_threads); },
            [&] { return cuda::known_exclusion_fill(K, side, a, num_queries, b, p, idx, stream_of(stream)); });
      },
      py::arg("known_tail"), py::arg("known_head"), py::arg("known_size"), py::arg("num_entities"),
      py::arg("num_relations"), py::arg("side"), py::arg("anchor"), py::arg("num_queries"), py::arg("begin"),
      py::arg("indptr"), py::arg("out_indices"), py::arg("num_threads"), py::arg("on_cuda"), py::arg("stream"));

  // known_tail == 0: unfiltered. The domain CSRs (per relation, allowed heads / tails) are optional (0).
  m.def(
      "corrupt",
      [](std::uintptr_t positives, int64_t num_positives, int width, int64_t num_negatives, int64_t num_entities,
         int64_t num_relations, int side_mode, std::uintptr_t head_prob, std::uintptr_t domain_head_indptr,
         std::uintptr_t domain_head_ids, std::uintptr_t domain_tail_indptr, std::uintptr_t domain_tail_ids,
         std::uintptr_t known_tail, std::uintptr_t known_head, int64_t known_size, uint64_t seed, int max_tries,
         std::uintptr_t out, std::uintptr_t out_valid, int num_threads, bool on_cuda, std::uintptr_t stream) {
        const char* op = "corrupt";
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
        A.filtered = known_tail != 0;
        if (A.filtered) A.K = make_view(op, known_tail, known_head, 0, known_size, num_entities, num_relations);
        A.seed = seed;
        A.tries = max_tries;
        A.out = ptr<int64_t>(out);
        A.valid = ptr<uint8_t>(out_valid);
        run_on_device(op, on_cuda, [&] { corrupt_cpu(A, num_threads); },
                      [&] { return cuda::corrupt(A, stream_of(stream)); });
      },
      py::arg("positives"), py::arg("num_positives"), py::arg("width"), py::arg("num_negatives"),
      py::arg("num_entities"), py::arg("num_relations"), py::arg("side_mode"), py::arg("head_prob"),
      py::arg("domain_head_indptr"), py::arg("domain_head_ids"), py::arg("domain_tail_indptr"),
      py::arg("domain_tail_ids"), py::arg("known_tail"), py::arg("known_head"), py::arg("known_size"),
      py::arg("seed"), py::arg("max_tries"), py::arg("out"), py::arg("out_valid"), py::arg("num_threads"),
      py::arg("on_cuda"), py::arg("stream"));
}

}  // namespace hardneg
