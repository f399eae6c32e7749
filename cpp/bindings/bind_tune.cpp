// Bindings for the tuning loops' training kernels (forgeline/_tune_logistic.py).
#include <cstdint>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "forgeline/fit_logistic.hpp"

namespace forgeline::bind {

namespace {

// A 1-D C-contiguous array of exactly T (no conversion: a silent copy of the training
// matrix on every lbfgs evaluation would cost more than the pass itself).
template <class T>
const T* exact_1d(const py::array& a, const char* name, index_t n = -1) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + " has the wrong dtype");
  if (a.ndim() != 1 || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be a 1-D contiguous array");
  if (n >= 0 && a.shape(0) != n)
    throw py::value_error(std::string(name) + " has " + std::to_string(a.shape(0)) + " entries, expected " +
                          std::to_string(n));
  return static_cast<const T*>(a.data());
}

template <class I>
fit::Csr<I> csr_of(const py::array& indptr, const py::array& indices, const py::array& data, index_t n_cols) {
  fit::Csr<I> X;
  if (indptr.ndim() != 1 || indptr.shape(0) < 1) throw py::value_error("indptr must be a non-empty 1-D array");
  X.n_rows = static_cast<index_t>(indptr.shape(0)) - 1;
  X.n_cols = n_cols;
  X.indptr = exact_1d<I>(indptr, "indptr");
  X.indices = exact_1d<I>(indices, "indices");
  X.data = exact_1d<double>(data, "data", static_cast<index_t>(indices.shape(0)));
  return X;
}

bool int64_index(const py::array& indptr, const py::array& indices) {
  const bool i64 = indptr.dtype().is(py::dtype::of<std::int64_t>());
  if (i64 != indices.dtype().is(py::dtype::of<std::int64_t>()))
    throw py::type_error("indptr and indices must share one integer dtype");
  return i64;
}

template <class I>
py::tuple check_as(const py::array& indptr, const py::array& indices, const py::array& data, index_t n_cols) {
  const auto X = csr_of<I>(indptr, indices, data, n_cols);
  const index_t nnz = static_cast<index_t>(indices.shape(0));
  bool increasing = false;
  std::string msg;
  {
    py::gil_scoped_release release;  // reads the caller's arrays only
    msg = fit::check_csr(X, nnz, &increasing);
  }
  return py::make_tuple(msg, increasing);
}

// W: (n_cols, lanes) float64 C-contiguous, lanes a multiple of kLaneBlock >= k;
// loss_out / grad_out: k arrays of n_rows float64 each; XG: (n_cols, lanes), overwritten.
template <class I>
void many_as(const py::array& indptr, const py::array& indices, const py::array& data, index_t n_cols,
             const py::array& W, const py::array& intercepts, const py::array& y, const py::object& sample_weight,
             double sw_sum, const py::list& loss_out, const py::list& grad_out, const py::array& XG,
             bool unique_columns) {
  const auto X = csr_of<I>(indptr, indices, data, n_cols);
  fit::Batch b;
  b.k = static_cast<index_t>(py::len(loss_out));
  if (b.k < 1 || static_cast<index_t>(py::len(grad_out)) != b.k) throw py::value_error("need k >= 1 loss and gradient arrays");
  for (const py::array* a : {&W, &XG}) {
    if (!a->dtype().is(py::dtype::of<double>()) || a->ndim() != 2 || !(a->flags() & py::array::c_style) ||
        a->shape(0) != n_cols || a->shape(1) % fit::kLaneBlock != 0 || a->shape(1) < b.k)
      throw py::value_error("W and XG must be (n_cols, lanes) float64 C arrays, lanes a multiple of 8 >= k");
  }
  if (W.shape(1) != XG.shape(1)) throw py::value_error("W and XG differ in lanes");
  if (!XG.writeable()) throw py::value_error("XG is read-only");
  b.lanes = static_cast<index_t>(W.shape(1));
  b.W = static_cast<const double*>(W.data());
  b.XG = static_cast<double*>(py::array(XG).mutable_data());
  b.intercepts = exact_1d<double>(intercepts, "intercepts", b.k);
  b.y = exact_1d<double>(y, "y", X.n_rows);
  py::array sw_arr;
  if (!sample_weight.is_none()) {
    sw_arr = py::reinterpret_borrow<py::array>(sample_weight);
    b.sample_weight = exact_1d<double>(sw_arr, "sample_weight", X.n_rows);
  }
  b.sw_sum = sw_sum;
  b.unique_columns = unique_columns;
  std::vector<py::array> outs;  // alive (through the caller's lists) for the pass
  std::vector<double*> lp, gp;
  for (index_t c = 0; c < b.k; ++c) {
    for (int which = 0; which < 2; ++which) {
      py::array a = py::reinterpret_borrow<py::array>((which ? grad_out : loss_out)[static_cast<size_t>(c)]);
      exact_1d<double>(a, which ? "grad_out" : "loss_out", X.n_rows);
      if (!a.writeable()) throw py::value_error("an output array is read-only");
      (which ? gp : lp).push_back(static_cast<double*>(a.mutable_data()));
      outs.push_back(a);
    }
  }
  b.loss_out = lp.data();
  b.grad_out = gp.data();
  // Safe to drop the GIL: the pass reads the caller's arrays and writes the caller's output
  // arrays; all are held by this frame's arguments (and `outs`).
  py::gil_scoped_release release;
  fit::half_binomial_many(X, b);
}

}  // namespace

void bind_tune(py::module_& m) {
  m.def(
      "_csr_check",
      [](const py::array& indptr, const py::array& indices, const py::array& data, index_t n_cols) {
        return int64_index(indptr, indices) ? check_as<std::int64_t>(indptr, indices, data, n_cols)
                                            : check_as<std::int32_t>(indptr, indices, data, n_cols);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"),
      "(problem, increasing): problem is '' when the CSR arrays are consistent, else what is "
      "wrong; increasing tells whether every row's column indices strictly increase.");
  m.def(
      "_half_binomial_many",
      [](const py::array& indptr, const py::array& indices, const py::array& data, index_t n_cols,
         const py::array& W, const py::array& intercepts, const py::array& y, const py::object& sample_weight,
         double sw_sum, const py::list& loss_out, const py::list& grad_out, const py::array& XG,
         bool unique_columns) {
        if (int64_index(indptr, indices))
          many_as<std::int64_t>(indptr, indices, data, n_cols, W, intercepts, y, sample_weight, sw_sum, loss_out,
                                grad_out, XG, unique_columns);
        else
          many_as<std::int32_t>(indptr, indices, data, n_cols, W, intercepts, y, sample_weight, sw_sum, loss_out,
                                grad_out, XG, unique_columns);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"), py::arg("W"),
      py::arg("intercepts"), py::arg("y"), py::arg("sample_weight"), py::arg("sw_sum"), py::arg("loss_out"),
      py::arg("grad_out"), py::arg("XG"), py::arg("unique_columns") = false,
      "K evaluations of sklearn's binary logistic loss over one checked CSR matrix in one pass: "
      "pointwise losses and gradients / sw_sum into the given arrays, X.T @ gradient into XG's "
      "columns; bit-identical to sklearn's own evaluation of each fit.");
  m.def("_fit_isa", &fit::fit_isa, "The lockstep logistic pass's copy: 2 AVX-512, 1 AVX2, 0 baseline.");
  m.def("_set_fit_isa", &fit::set_fit_isa, py::arg("level"),
        "Cap the copy the lockstep logistic pass may use (tests compare the copies' bits).");
}

}  // namespace forgeline::bind
