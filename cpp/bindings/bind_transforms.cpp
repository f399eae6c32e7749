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

py::array_t<std::int32_t> run(const std::vector<f64>& floats, const std::vector<i32>& codes,
                              const std::vector<i64>& dts, const i64& progs, const i32& op_codes,
                              const f64& op_params, const i64& op_tables, const f64& tables,
                              const i32& maps, py::array_t<double> out, int n_threads) {
  if (out.ndim() != 2) throw std::invalid_argument("out must be 2-D");
  if (!out.writeable()) throw std::invalid_argument("out must be writeable");
  const index_t n = static_cast<index_t>(out.shape(0));
  const index_t width = static_cast<index_t>(out.shape(1));
  tr::ProgramInputs in{views(floats, n), views(codes, n), views(dts, n)};
  auto vp = view2d(progs);
  require(vp.cols == 9, "programs must have 9 fields");
  auto vo = view2d(op_params);
  auto vt = view2d(op_tables);
  const index_t n_ops = static_cast<index_t>(op_codes.size());
  require(vo.rows == n_ops && vo.cols == 2 && vt.rows == n_ops && vt.cols == 2, "op arrays disagree");
  const index_t n_tab = static_cast<index_t>(tables.size());
  const index_t n_map = static_cast<index_t>(maps.size());
  std::vector<tr::OpSpec> ops(static_cast<size_t>(n_ops));
  for (index_t o = 0; o < n_ops; ++o) {
    auto& s = ops[static_cast<size_t>(o)];
    s.code = op_codes.data()[o];
    s.a = vo(o, 0);
    s.b = vo(o, 1);
    s.toff = vt(o, 0);
    s.tlen = vt(o, 1);
    require(s.toff >= 0 && s.tlen >= 0 && s.toff + s.tlen <= n_tab, "op table out of range");
  }
  std::vector<tr::ColumnProgram> ps(static_cast<size_t>(vp.rows));
  for (index_t p = 0; p < vp.rows; ++p) {
    auto& c = ps[static_cast<size_t>(p)];
    c.source = static_cast<std::int32_t>(vp(p, 0));
    c.src = vp(p, 1);
    c.op_begin = vp(p, 2);
    c.op_end = vp(p, 3);
    c.emit = static_cast<std::int32_t>(vp(p, 4));
    c.dst = vp(p, 5);
    c.width = vp(p, 6);
    c.toff = vp(p, 7);
    c.tlen = vp(p, 8);
    const index_t n_src = c.source == tr::kSrcFloat  ? static_cast<index_t>(in.floats.size())
                          : c.source == tr::kSrcCode ? static_cast<index_t>(in.codes.size())
                                                     : static_cast<index_t>(in.datetimes.size());
    require(c.source >= 0 && c.source <= 2 && c.src >= 0 && c.src < n_src, "program source out of range");
    require(c.op_begin >= 0 && c.op_begin <= c.op_end && c.op_end <= n_ops, "program ops out of range");
    require(c.dst >= 0 && c.width >= 1 && c.dst + c.width <= width, "program output out of range");
    if (c.emit == tr::kEmitCodeOneHot)
      require(c.source == tr::kSrcCode && c.toff >= 0 && c.toff + c.tlen <= n_map, "map out of range");
    if (c.emit == tr::kEmitCodeLookup)
      require(c.source == tr::kSrcCode && c.toff >= 0 && c.toff + c.tlen <= n_tab, "table out of range");
    if (c.source == tr::kSrcDatetime)
      require(c.op_end > c.op_begin && ops[static_cast<size_t>(c.op_begin)].code == tr::kDatePart,
              "datetime programs start with a date-part op");
  }
  View2D<double> vout{out.mutable_data(), n, width,
                      static_cast<index_t>(out.strides(0) / static_cast<py::ssize_t>(sizeof(double))),
                      static_cast<index_t>(out.strides(1) / static_cast<py::ssize_t>(sizeof(double)))};
  require(vout.row_stride >= 0 && vout.col_stride >= 0, "out strides must be positive");
  py::array_t<std::int32_t> flags(static_cast<py::ssize_t>(ps.size()));
  std::int32_t* pf = flags.mutable_data();
  const double* pt = tables.data();
  const std::int32_t* pm = maps.data();
  {
    // Safe: every buffer is owned by an argument or local array that outlives this scope;
    // the kernel writes only `out` and `flags`.
    py::gil_scoped_release release;
    tr::run_program(in, ps, ops, pt, pm, vout, pf, n_threads);
  }
  return flags;
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
  m.def(
      "_tf_set_numpy_loops",
      [](std::uintptr_t log1p, std::uintptr_t log1p_data, std::uintptr_t expm1,
         std::uintptr_t expm1_data) {
        tr::set_numpy_loops(reinterpret_cast<tr::UfuncLoop>(log1p),
                            reinterpret_cast<void*>(log1p_data),
                            reinterpret_cast<tr::UfuncLoop>(expm1),
                            reinterpret_cast<void*>(expm1_data));
      },
      py::arg("log1p"), py::arg("log1p_data"), py::arg("expm1"), py::arg("expm1_data"),
      "Register numpy's float64 log1p/expm1 inner loops (addresses; 0 = use libm).");
  m.def("_tf_numpy_loops_set", &tr::numpy_loops_set);
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
  m.def("_tf_run", &run, py::arg("floats"), py::arg("codes"), py::arg("datetimes"),
        py::arg("programs"), py::arg("op_codes"), py::arg("op_params"), py::arg("op_tables"),
        py::arg("tables"), py::arg("maps"), py::arg("out"), py::arg("n_threads") = 0,
        "Run a fused column program into `out`; returns per-program check flags.");
}

}  // namespace forgeline::bind
