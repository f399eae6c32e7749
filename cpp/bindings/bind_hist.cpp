// Bindings for the sklearn-exact HistGradientBoosting histograms (forgeline/_tune_hist.py).
#include <cstdint>
#include <string>

#include "bindings.hpp"
#include "forgeline/fit_hist.hpp"

namespace forgeline::bind {

namespace {

// No dtype conversion anywhere here: the builder's buffers are sklearn's state (a converted
// copy of ordered_gradients would silently drop the gather), and a copy of X_binned per
// histogram would cost more than the histogram.
template <class T>
T* exact_1d(const py::array& a, const char* name, bool writable = false) {
  if (!a.dtype().is(py::dtype::of<T>())) throw py::type_error(std::string(name) + " has the wrong dtype");
  if (a.ndim() != 1 || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be a 1-D contiguous array");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// A (n_features, n_bins) C-contiguous, writable array of 20-byte records (HISTOGRAM_DTYPE).
fit::HistBin* hist_2d(const py::array& a, const char* name, index_t n_features, index_t n_bins) {
  if (a.itemsize() != static_cast<py::ssize_t>(sizeof(fit::HistBin)) || a.dtype().kind() != 'V')
    throw py::type_error(std::string(name) + " must have sklearn's HISTOGRAM_DTYPE");
  if (a.ndim() != 2 || a.shape(0) != n_features || a.shape(1) != n_bins || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be a C-contiguous (n_features, n_bins) array");
  if (!a.writeable()) throw py::value_error(std::string(name) + " must be writable");
  return static_cast<fit::HistBin*>(const_cast<void*>(a.data()));
}

const std::uint32_t* feature_list(const py::object& features, index_t n_features, index_t& n_listed) {
  if (features.is_none()) {
    n_listed = n_features;
    return nullptr;
  }
  const py::array a = py::reinterpret_borrow<py::array>(features);
  const auto* f = exact_1d<const std::uint32_t>(a, "allowed_features");
  n_listed = static_cast<index_t>(a.shape(0));
  for (index_t j = 0; j < n_listed; ++j)
    if (static_cast<index_t>(f[j]) >= n_features) throw py::value_error("allowed_features: index out of range");
  return f;
}

void hist_brute(const py::array& X, const py::array& gradients, const py::array& hessians, bool hessians_constant,
                const py::array& ordered_g, const py::array& ordered_h, const py::array& sample_indices,
                const py::object& features, const py::array& out, int n_threads, const py::object& X_rows,
                index_t rows_below, const py::object& root_counts) {
  if (!X.dtype().is(py::dtype::of<std::uint8_t>())) throw py::type_error("X_binned must be uint8");
  if (X.ndim() != 2 || !(X.flags() & py::array::f_style) || (X.shape(0) > 1 && X.strides(0) != 1))
    throw py::value_error("X_binned must be a 2-D Fortran-ordered array");
  fit::HistInputs in;
  in.X = static_cast<const std::uint8_t*>(X.data());
  in.n_rows = static_cast<index_t>(X.shape(0));
  in.n_features = static_cast<index_t>(X.shape(1));
  in.col_stride = in.n_features > 1 ? static_cast<index_t>(X.strides(1)) : in.n_rows;
  if (!X_rows.is_none()) {
    const py::array xr = py::reinterpret_borrow<py::array>(X_rows);
    if (!xr.dtype().is(py::dtype::of<std::uint8_t>())) throw py::type_error("X_rows must be uint8");
    if (xr.ndim() != 2 || xr.shape(0) != X.shape(0) || xr.shape(1) != X.shape(1) ||
        !(xr.flags() & py::array::c_style))
      throw py::value_error("X_rows must be a C-ordered array of X_binned's shape");
    in.XR = static_cast<const std::uint8_t*>(xr.data());
  }
  if (!root_counts.is_none()) {
    const py::array rc = py::reinterpret_borrow<py::array>(root_counts);
    if (!rc.dtype().is(py::dtype::of<std::uint32_t>())) throw py::type_error("root_counts must be uint32");
    if (rc.ndim() != 2 || rc.shape(0) != X.shape(1) || rc.shape(1) != 256 || !(rc.flags() & py::array::c_style))
      throw py::value_error("root_counts must be a C-ordered (n_features, 256) array");
    in.root_counts = static_cast<const std::uint32_t*>(rc.data());
  }
  in.gradients = exact_1d<const float>(gradients, "gradients");
  in.hessians = exact_1d<const float>(hessians, "hessians");
  in.n_grad = static_cast<index_t>(gradients.shape(0));
  in.hessians_constant = hessians_constant;
  in.ordered_g = exact_1d<float>(ordered_g, "ordered_gradients", true);
  in.ordered_h = exact_1d<float>(ordered_h, "ordered_hessians", true);
  if (in.n_grad != in.n_rows || ordered_g.shape(0) != in.n_grad)
    throw py::value_error("gradients and ordered_gradients need one entry per row of X_binned");
  if (!hessians_constant && (hessians.shape(0) != in.n_grad || ordered_h.shape(0) != in.n_grad))
    throw py::value_error("non-constant hessians need one entry per row of X_binned");
  const auto* idx = exact_1d<const std::uint32_t>(sample_indices, "sample_indices");
  const index_t n_node = static_cast<index_t>(sample_indices.shape(0));
  if (n_node > in.n_rows) throw py::value_error("sample_indices has more entries than X_binned has rows");
  if (n_node != in.n_rows) {  // the root path never reads sample_indices
    for (index_t i = 0; i < n_node; ++i)
      if (static_cast<index_t>(idx[i]) >= in.n_rows) throw py::value_error("sample_indices: index out of range");
  }
  index_t n_listed = 0;
  const std::uint32_t* feats = feature_list(features, in.n_features, n_listed);
  const index_t n_bins = out.ndim() == 2 ? static_cast<index_t>(out.shape(1)) : -1;
  if (n_bins < 0 || n_bins > 256) throw py::value_error("histograms must have 0..256 bins");
  fit::HistBin* hist = hist_2d(out, "histograms", in.n_features, n_bins);
  if (rows_below < 0) throw py::value_error("rows_below must be >= 0");
  // Safe without the GIL: every buffer is a numpy array the caller holds for the whole call
  // (arguments stay referenced by the Python frame), checked above for dtype, shape and bounds.
  py::gil_scoped_release release;
  fit::hist_brute(in, idx, n_node, feats, n_listed, hist, n_bins, n_threads, rows_below);
}

void hist_subtract(const py::array& parent, const py::array& sibling, const py::object& features) {
  if (parent.ndim() != 2) throw py::value_error("parent histograms must be 2-D");
  const index_t n_features = static_cast<index_t>(parent.shape(0));
  const index_t n_bins = static_cast<index_t>(parent.shape(1));
  fit::HistBin* a = hist_2d(parent, "parent histograms", n_features, n_bins);
  fit::HistBin* b = hist_2d(sibling, "sibling histograms", n_features, n_bins);
  index_t n_listed = 0;
  const std::uint32_t* feats = feature_list(features, n_features, n_listed);
  // Safe without the GIL: both arrays are held by the caller and were checked above.
  py::gil_scoped_release release;
  fit::hist_subtract(a, b, feats, n_listed, n_bins);
}

}  // namespace

void bind_hist(py::module_& m) {
  m.def("_hist_brute", &hist_brute, py::arg("X_binned"), py::arg("gradients"), py::arg("hessians"),
        py::arg("hessians_constant"), py::arg("ordered_gradients"), py::arg("ordered_hessians"),
        py::arg("sample_indices"), py::arg("allowed_features"), py::arg("out"), py::arg("n_threads"),
        py::arg("X_rows") = py::none(), py::arg("rows_below") = fit::kRowsBelow,
        py::arg("root_counts") = py::none(),
        "sklearn HistogramBuilder.compute_histograms_brute, same bits (fills `out` in place). X_rows: "
        "optional C-ordered copy of X_binned, read for nodes other than the root (same values). "
        "root_counts: optional (n_features, 256) uint32 bin counts of X_binned's columns.");
  m.def("_hist_subtract", &hist_subtract, py::arg("parent"), py::arg("sibling"), py::arg("allowed_features"),
        "sklearn HistogramBuilder.compute_histograms_subtraction: parent -= sibling in place.");
}

}  // namespace forgeline::bind
