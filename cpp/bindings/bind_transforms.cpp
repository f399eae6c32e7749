// Bindings for forgeline.transforms kernels. Shapes are read and outputs allocated here with
// the GIL held; kernels then run with the GIL released on buffers kept alive by local py::
// objects, so no Python object is touched while other threads may run.
#include <vector>

#include "bindings.hpp"
#include "forgeline/transforms.hpp"

namespace forgeline::bind {

namespace {

namespace tr = forgeline::transforms;
using f64 = py::array_t<double, py::array::forcecast>;
using i32 = py::array_t<std::int32_t, py::array::forcecast>;
using i64 = py::array_t<std::int64_t, py::array::forcecast>;

template <class T>
std::vector<View1D<const T>> views(const std::vector<py::array_t<T, py::array::forcecast>>& arrs,
                                   index_t n = -1) {
  std::vector<View1D<const T>> out;
  out.reserve(arrs.size());
  for (const auto& a : arrs) {
    out.push_back(view1d(a));
    if (n >= 0 && out.back().size != n) throw std::invalid_argument("source column length mismatch");
  }
  return out;
}

py::array_t<double> moments(const std::vector<f64>& cols, int n_threads, bool pairwise) {
  auto v = views(cols);
  py::array_t<double> out({static_cast<py::ssize_t>(v.size()),
                           static_cast<py::ssize_t>(tr::kMomentFields)});
  static_assert(sizeof(tr::Moments) == tr::kMomentFields * sizeof(double), "Moments layout");
  auto* dst = reinterpret_cast<tr::Moments*>(out.mutable_data());
  {
    // Safe: reads only `cols` buffers (held by the vector) and writes `out`'s buffer.
    py::gil_scoped_release release;
    tr::column_moments(v, dst, n_threads, pairwise);
  }
  return out;
}

py::array_t<double> quantiles(const std::vector<f64>& cols, const i64& lo, const i64& hi,
                              const f64& gamma, int n_threads) {
  auto v = views(cols);
  auto vl = view2d(lo), vh = view2d(hi);
  auto vg = view2d(gamma);
  const index_t p = static_cast<index_t>(v.size());
  require(vl.rows == p && vh.rows == p && vg.rows == p, "quantiles: one row of indices per column");
  require(vl.cols == vh.cols && vl.cols == vg.cols, "quantiles: index shapes differ");
  py::array_t<double> out({static_cast<py::ssize_t>(p), static_cast<py::ssize_t>(vl.cols)});
  View2D<double> vo{out.mutable_data(), p, vl.cols, vl.cols, 1};
  {
    // Safe: inputs are held by `cols`, `lo`, `hi`, `gamma`; only `out` is written.
    py::gil_scoped_release release;
    tr::column_quantiles(v, vl, vh, vg, vo, n_threads);
  }
  return out;
}

py::tuple mode(const std::vector<f64>& cols, int n_threads) {
  auto v = views(cols);
  py::array_t<double> val(static_cast<py::ssize_t>(v.size())), cnt(static_cast<py::ssize_t>(v.size()));
  double* pv = val.mutable_data();
  double* pc = cnt.mutable_data();
  {
    // Safe: reads `cols` buffers only, writes the two fresh arrays.
    py::gil_scoped_release release;
    tr::column_mode(v, pv, pc, n_threads);
  }
  return py::make_tuple(val, cnt);
}

py::tuple kmeans(const f64& x, const f64& init, int max_iter, double tol) {
  auto vx = view1d(x);
  std::vector<double> centers(init.data(), init.data() + init.size());
  int it;
  {
    // Safe: reads `x` only; `centers` is a C++ vector.
    py::gil_scoped_release release;
    it = tr::kmeans_1d(vx, centers, max_iter, tol);
  }
  return py::make_tuple(py::array_t<double>(static_cast<py::ssize_t>(centers.size()), centers.data()), it);
}

}  // namespace

py::array_t<double> udf(const std::vector<f64>& cols, std::uintptr_t fn, index_t n, int n_threads) {
  if (fn == 0) throw std::invalid_argument("udf: null function address");
  auto v = views(cols, n);
  py::array_t<double> out(static_cast<py::ssize_t>(n));
  double* po = out.mutable_data();
  {
    // Safe: the compiled function is nopython code that touches only the block buffers;
    // the input columns are kept alive by `cols`.
    py::gil_scoped_release release;
    tr::run_udf(v, reinterpret_cast<tr::UdfBlock>(fn), po, n, n_threads);
  }
  return out;
}

void bind_transforms(py::module_& m) {
  m.def("_tf_udf", &udf, py::arg("cols"), py::arg("fn"), py::arg("n"), py::arg("n_threads") = 0,
        "Run a compiled block UDF (address) over the columns; returns one value per row.");
  m.def("_tf_moments", &moments, py::arg("cols"), py::arg("n_threads") = 0,
        py::arg("pairwise") = true,
        "Per-column (count, sum, m2, min, max, absmax, n_nan, n_posinf, n_neginf).");
  m.def("_tf_quantiles", &quantiles, py::arg("cols"), py::arg("lo"), py::arg("hi"),
        py::arg("gamma"), py::arg("n_threads") = 0,
        "Interpolated order statistics of the non-NaN values of each column.");
  m.def("_tf_mode", &mode, py::arg("cols"), py::arg("n_threads") = 0,
        "Most frequent non-NaN value per column (smallest on ties) and its count.");
  m.def("_tf_kmeans_1d", &kmeans, py::arg("x"), py::arg("init"), py::arg("max_iter"),
        py::arg("tol"), "1-D Lloyd k-means from the given initial centers.");
}

}  // namespace forgeline::bind
