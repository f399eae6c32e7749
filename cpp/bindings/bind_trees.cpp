#include <memory>

#include "bindings.hpp"
#include "forgeline/trees.hpp"

namespace forgeline::bind {

namespace {

using trees::Ensemble;
using trees::EnsembleSpec;

template <class T>
using carr = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::shared_ptr<Ensemble> make_ensemble(const py::dict& cfg, const py::dict& a) {
  // Keep every converted array alive until the Ensemble has copied what it needs.
  auto i64 = carr<std::int64_t>(a["tree_offsets"]);
  auto tout = carr<std::int32_t>(a["tree_output"]);
  auto tw = carr<double>(a["tree_weight"]);
  auto feat = carr<std::int32_t>(a["feature"]);
  auto thr = carr<double>(a["threshold"]);
  auto left = carr<std::int32_t>(a["left"]);
  auto right = carr<std::int32_t>(a["right"]);
  auto flags = carr<std::uint32_t>(a["flags"]);
  auto coff = carr<std::int32_t>(a["cat_offset"]);
  auto cnw = carr<std::int32_t>(a["cat_nwords"]);
  auto bits = carr<std::uint32_t>(a["cat_bits"]);
  auto lv = carr<double>(a["leaf_value"]);
  auto base = carr<double>(a["base"]);
  EnsembleSpec s;
  s.input_mode = cfg["input_mode"].cast<int>();
  s.cat_rule = cfg["cat_rule"].cast<int>();
  s.accumulate_f32 = cfg["accumulate_f32"].cast<bool>();
  s.xgb_less_than = cfg["xgb_less_than"].cast<bool>();
  s.n_features = cfg["n_features"].cast<index_t>();
  s.n_outputs = cfg["n_outputs"].cast<index_t>();
  s.leaf_dim = cfg["leaf_dim"].cast<index_t>();
  s.divisor = cfg["divisor"].cast<double>();
  if (cfg.contains("link")) s.link = cfg["link"].cast<int>();
  if (cfg.contains("link_param")) s.link_param = cfg["link_param"].cast<double>();
  if (cfg.contains("divide_raw")) s.divide_raw = cfg["divide_raw"].cast<bool>();
  auto flat = [](const auto& arr) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(arr.data())>>;
    return View1D<const T>{arr.data(), static_cast<index_t>(arr.size()), 1};
  };
  s.tree_offsets = flat(i64);
  s.tree_output = flat(tout);
  s.tree_weight = flat(tw);
  s.feature = flat(feat);
  s.threshold = flat(thr);
  s.left = flat(left);
  s.right = flat(right);
  s.flags = flat(flags);
  s.cat_offset = flat(coff);
  s.cat_nwords = flat(cnw);
  s.cat_bits = flat(bits);
  s.leaf_value = flat(lv);
  s.base = flat(base);
  return std::make_shared<Ensemble>(s);
}

template <class T>
py::array_t<double> predict_t(const Ensemble& e, const py::array& X, const py::object& base_margin,
                              index_t t0, index_t t1, int n_threads, bool divide) {
  auto x = py::array_t<T, py::array::forcecast>::ensure(X);
  if (!x) throw std::invalid_argument("X must be a numeric array");
  auto v = view2d(x);
  const index_t K = e.n_outputs();
  py::array_t<double> out({v.rows, K});
  carr<double> bm;
  const double* bmp = nullptr;
  if (!base_margin.is_none()) {
    bm = carr<double>(base_margin);
    if (bm.size() != v.rows * K) throw std::invalid_argument("base_margin must have n_rows * n_outputs values");
    bmp = bm.data();
  }
  double* o = out.mutable_data();
  if (t1 < 0) t1 = e.n_trees();
  {
    // Safe to drop the GIL: the kernel reads only x/bm (kept alive by this frame) and the
    // immutable Ensemble (held by `e`'s owner), and writes only `out`, which is not shared yet.
    py::gil_scoped_release release;
    e.predict<T>(v, bmp, o, t0, t1, n_threads, divide);
  }
  return out;
}

py::array_t<double> predict_any(const Ensemble& e, const py::array& X, const py::object& base_margin,
                                index_t t0, index_t t1, int n_threads, bool divide) {
  if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D");
  if (X.shape(1) != e.n_features()) throw std::invalid_argument("wrong number of feature columns");
  if (py::isinstance<py::array_t<float>>(X)) return predict_t<float>(e, X, base_margin, t0, t1, n_threads, divide);
  return predict_t<double>(e, X, base_margin, t0, t1, n_threads, divide);
}

// Latency path: one 1-D row, no thread pool, no GIL release (it costs more than the work).
py::array_t<double> predict_row(const Ensemble& e, const py::array& x, int link, double param,
                                bool divide) {
  if (x.ndim() != 1 || x.shape(0) != e.n_features())
    throw std::invalid_argument("x must be a 1-D array with n_features values");
  py::array_t<double> out(e.n_outputs());
  double* o = out.mutable_data();
  if (py::isinstance<py::array_t<float>>(x)) {
    auto a = py::array_t<float>::ensure(x);
    e.predict_row<float>(a.data(), a.strides(0) / static_cast<py::ssize_t>(sizeof(float)), o, divide);
  } else {
    auto a = py::array_t<double, py::array::forcecast>::ensure(x);
    if (!a) throw std::invalid_argument("x must be numeric");
    e.predict_row<double>(a.data(), a.strides(0) / static_cast<py::ssize_t>(sizeof(double)), o, divide);
  }
  if (link) trees::apply_link(link, param, o, 1, e.n_outputs(), 1);
  return out;
}

// Leanest latency path: positional arguments only, the ensemble's own link settings, a 1-D
// float32/float64 row read in place (any stride). Everything else is converted once.
py::array_t<double> predict_one(const Ensemble& e, const py::handle& x, bool value) {
  py::array_t<double> out(e.n_outputs());
  double* o = out.mutable_data();
  if (py::isinstance<py::array_t<float>>(x) &&
      py::reinterpret_borrow<py::array>(x).strides(0) % static_cast<py::ssize_t>(sizeof(float)) == 0) {
    auto a = py::reinterpret_borrow<py::array_t<float>>(x);
    if (a.ndim() != 1 || a.shape(0) != e.n_features())
      throw std::invalid_argument("x must be a 1-D array with n_features values");
    e.predict_one<float>(a.data(), a.strides(0) / static_cast<py::ssize_t>(sizeof(float)), o, value);
    return out;
  }
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(x);
  if (!a) throw std::invalid_argument("x must be a numeric 1-D array");
  if (a.ndim() != 1 || a.shape(0) != e.n_features())
    throw std::invalid_argument("x must be a 1-D array with n_features values");
  e.predict_one<double>(a.data(), a.strides(0) / static_cast<py::ssize_t>(sizeof(double)), o, value);
  return out;
}

}  // namespace

void bind_trees(py::module_& m) {
  py::class_<Ensemble, std::shared_ptr<Ensemble>>(m, "TreeEnsembleCore")
      .def(py::init(&make_ensemble), py::arg("config"), py::arg("arrays"))
      .def_property_readonly("n_trees", &Ensemble::n_trees)
      .def_property_readonly("n_nodes", &Ensemble::n_nodes)
      .def_property_readonly("n_features", &Ensemble::n_features)
      .def_property_readonly("n_outputs", &Ensemble::n_outputs)
      .def_property_readonly("n_qs_trees", &Ensemble::n_qs_trees)
      // Not thread-safe against a concurrent predict on the same object: tests and benches.
      .def_property("simd", &Ensemble::simd, &Ensemble::set_simd)
      .def("predict", &predict_any, py::arg("X"), py::arg("base_margin") = py::none(),
           py::arg("t0") = 0, py::arg("t1") = -1, py::arg("n_threads") = 0,
           py::arg("divide") = true)
      .def("predict_one", &predict_one, py::arg("x"), py::arg("value"))
      .def("predict_row", &predict_row, py::arg("x"), py::arg("link") = 0, py::arg("param") = 1.0,
           py::arg("divide") = true);
  m.def(
      "tree_apply_link",
      [](py::array_t<double, py::array::c_style>& values, int link, double param, int n_threads) {
        if (values.ndim() != 2) throw std::invalid_argument("values must be 2-D");
        double* p = values.mutable_data();
        const index_t rows = values.shape(0), k = values.shape(1);
        // Safe to drop the GIL: only `values`' buffer is touched and the caller keeps it alive.
        py::gil_scoped_release release;
        trees::apply_link(link, param, p, rows, k, n_threads);
      },
      py::arg("values"), py::arg("link"), py::arg("param") = 1.0, py::arg("n_threads") = 0);
}

}  // namespace forgeline::bind
