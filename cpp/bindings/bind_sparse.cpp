// Bindings for the exact sparse products forgeline.tune uses inside model fits.
#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "forgeline/sparse.hpp"

namespace forgeline::bind {

namespace {

using sparse::Packed;

// A 1-D array of exactly dtype T, C-contiguous (no conversion: a silent cast would copy or
// change the values the products must reproduce).
template <class T>
py::array_t<T> exact_1d(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<T>>(a))
    throw py::type_error(std::string(name) + " must be a " + std::string(py::str(py::dtype::of<T>())) +
                         " array, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be 1-D, got " +
                                           std::to_string(a.ndim()) + "-D");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

Packed make_packed(const py::array& indptr, const py::array& indices, const py::array& data,
                   index_t n_cols, bool transpose) {
  auto ip = exact_1d<std::int32_t>(indptr, "indptr");
  auto ix = exact_1d<std::int32_t>(indices, "indices");
  auto dv = exact_1d<double>(data, "data");
  if (ip.shape(0) < 1) throw py::value_error("indptr must have n_rows + 1 >= 1 entries");
  if (ix.shape(0) != dv.shape(0))
    throw py::value_error("indices and data differ in length (" + std::to_string(ix.shape(0)) +
                          " vs " + std::to_string(dv.shape(0)) + ")");
  if (n_cols < 0 || n_cols > INT32_MAX) throw py::value_error("n_cols must be in [0, 2**31)");
  sparse::CsrRef a;
  a.indptr = ip.data();
  a.indices = ix.data();
  a.data = dv.data();
  a.n_rows = static_cast<index_t>(ip.shape(0)) - 1;
  a.n_cols = n_cols;
  a.nnz = static_cast<index_t>(dv.shape(0));
  // Safe to drop the GIL: the pass only reads the three input buffers, which the arrays
  // above keep alive, and fills a new object no other thread has seen.
  py::gil_scoped_release release;
  return Packed::from_csr(a, transpose);
}

py::array_t<double> packed_matvec(const Packed& p, const py::array& x, int n_threads) {
  auto xv = exact_1d<double>(x, "x");
  if (xv.shape(0) != p.n_cols())
    throw py::value_error("x has " + std::to_string(xv.shape(0)) + " entries, the matrix " +
                          std::to_string(p.n_cols()) + " columns");
  py::array_t<double> y(static_cast<py::ssize_t>(p.n_rows()));
  double* out = y.mutable_data();
  const double* xp = xv.data();
  {
    // Safe to drop the GIL: Packed is immutable after construction (this call holds a
    // reference to it), x is held by xv, and y is new. Several threads may run products
    // on the same Packed at once.
    py::gil_scoped_release release;
    p.matvec(xp, out, n_threads);
  }
  return y;
}

}  // namespace

void bind_sparse(py::module_& m) {
  py::class_<Packed>(m, "_SpPacked",
                     "A validated, packed copy of a CSR matrix (or of its transpose) whose "
                     "products are bit-identical to scipy's csr_matvec / csc_matvec.")
      .def(py::init(&make_packed), py::arg("indptr"), py::arg("indices"), py::arg("data"),
           py::arg("n_cols"), py::arg("transpose") = false)
      .def("matvec", &packed_matvec, py::arg("x"), py::arg("n_threads") = 0)
      .def_property_readonly("shape", [](const Packed& p) { return py::make_tuple(p.n_rows(), p.n_cols()); })
      .def_property_readonly("nnz", &Packed::nnz)
      .def_property_readonly("nbytes", &Packed::nbytes);
}

}  // namespace forgeline::bind
