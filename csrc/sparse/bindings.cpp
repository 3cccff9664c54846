// Sparse family bindings: spmm (CSR @ dense) on both devices (`on_cuda` selects the CUDA kernel). Python
// validates shapes, dtypes, devices and index ranges and allocates `out`; on CPU the walk's bounds are checked
// again here (indptr monotone and spanning indices, every column index in range) before any read of x.
#include <string>

#include "bindings.h"
#include "sparse/spmm.h"

namespace hardneg {

void register_sparse(py::module_& m) {
  m.def(
      "spmm",
      [](std::uintptr_t indptr, std::uintptr_t indices, std::uintptr_t values, std::uintptr_t x, std::uintptr_t out,
         int64_t rows, int64_t cols, int64_t dim, int64_t nnz, bool f64, int num_threads, bool on_cuda,
         std::uintptr_t stream) {
        const char* op = "spmm";
        HN_CHECK(rows >= 0 && cols >= 0 && dim >= 0 && nnz >= 0, "spmm: sizes must be >= 0");
        HN_CHECK(indptr != 0, "spmm: null indptr");
        HN_CHECK(nnz == 0 || (indices != 0 && values != 0), "spmm: null indices or values");
        HN_CHECK(rows * dim == 0 || (out != 0 && (x != 0 || nnz == 0)), "spmm: null x or out");
        SpmmArgs A;
        A.indptr = ptr<const int64_t>(indptr);
        A.indices = ptr<const int64_t>(indices);
        A.values = ptr<const void>(values);
        A.x = ptr<const void>(x);
        A.out = ptr<void>(out);
        A.rows = rows;
        A.cols = cols;
        A.dim = dim;
        A.nnz = nnz;
        A.f64 = f64;
        if (!on_cuda) {
          HN_CHECK(A.indptr[0] == 0 && A.indptr[rows] == nnz,
                   "spmm: 'adj' row pointers must start at 0 and end at the number of entries");
          const int64_t bad = spmm_check_cpu(A, num_threads);
          if (bad == -2) throw std::invalid_argument("spmm: 'adj' row pointers must never decrease");
          if (bad >= 0)
            throw std::invalid_argument(std::string(op) + ": 'adj' column indices must be in [0, " + std::to_string(cols) +
                                        ") (got " + std::to_string(A.indices[bad]) + ")");
        }
        run_on_device(op, on_cuda, [&] { spmm_cpu(A, num_threads); },
                      [&] { return cuda::spmm(A, stream_of(stream)); });
      },
      py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("x"), py::arg("out"), py::arg("rows"),
      py::arg("cols"), py::arg("dim"), py::arg("nnz"), py::arg("f64"), py::arg("num_threads") = 0,
      py::arg("on_cuda") = false, py::arg("stream") = 0);
}

}  // namespace hardneg
