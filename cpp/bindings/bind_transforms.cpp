// Bindings for forgeline.transforms kernels. Shapes are read and outputs allocated here with
// the GIL held; kernels then run with the GIL released on buffers kept alive by local py::
// objects, so no Python object is touched while other threads may run.
#include <algorithm>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "forgeline/plan.hpp"
#include "forgeline/transforms.hpp"
#include "forgeline/parallel.hpp"
#include "forgeline/transforms_sketch.hpp"
#include "forgeline/transforms_sparse.hpp"

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

py::array_t<double> moments(const std::vector<f64>& cols, int n_threads, bool pairwise, bool sums) {
  auto v = views(cols);
  py::array_t<double> out({static_cast<py::ssize_t>(v.size()),
                           static_cast<py::ssize_t>(tr::kMomentFields)});
  static_assert(sizeof(tr::Moments) == tr::kMomentFields * sizeof(double), "Moments layout");
  auto* dst = reinterpret_cast<tr::Moments*>(out.mutable_data());
  {
    // Safe: reads only `cols` buffers (held by the vector) and writes `out`'s buffer.
    py::gil_scoped_release release;
    tr::column_moments(v, dst, n_threads, pairwise, sums);
  }
  return out;
}

// The (lo, hi, gamma) index rows of a quantile call, one row per column or group, checked,
// and the (rows x quantiles) output they fill.
struct QuantileIndex {
  View2D<const std::int64_t> lo, hi;
  View2D<const double> gamma;
  py::array_t<double> out;
  View2D<double> view;
  QuantileIndex(const i64& lo_, const i64& hi_, const f64& gamma_, index_t rows, const char* per)
      : lo(view2d(lo_)), hi(view2d(hi_)), gamma(view2d(gamma_)) {
    require(lo.rows == rows && hi.rows == rows && gamma.rows == rows,
            std::string("quantiles: one row of indices per ") + per);
    require(lo.cols == hi.cols && lo.cols == gamma.cols, "quantiles: index shapes differ");
    out = py::array_t<double>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(lo.cols)});
    view = View2D<double>{out.mutable_data(), rows, lo.cols, lo.cols, 1};
  }
};

py::array_t<double> quantiles(const std::vector<f64>& cols, const i64& lo, const i64& hi,
                              const f64& gamma, int n_threads) {
  auto v = views(cols);
  QuantileIndex q(lo, hi, gamma, static_cast<index_t>(v.size()), "column");
  {
    // Safe: inputs are held by `cols`, `lo`, `hi`, `gamma`; only `q.out` is written.
    py::gil_scoped_release release;
    tr::column_quantiles(v, q.lo, q.hi, q.gamma, q.view, n_threads);
  }
  return q.out;
}

py::tuple medians(const std::vector<f64>& cols, int n_threads) {
  auto v = views(cols);
  py::array_t<double> mom({static_cast<py::ssize_t>(v.size()),
                           static_cast<py::ssize_t>(tr::kMomentFields)});
  py::array_t<double> med(static_cast<py::ssize_t>(v.size()));
  auto* pm = reinterpret_cast<tr::Moments*>(mom.mutable_data());
  double* pd = med.mutable_data();
  {
    // Safe: reads `cols` buffers only, writes the two fresh arrays.
    py::gil_scoped_release release;
    tr::column_medians(v, pm, pd, n_threads);
  }
  return py::make_tuple(mom, med);
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

// The executor reads columns as contiguous buffers of their kind's dtype.
template <class T>
py::array contiguous(const py::handle& h) {
  return py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(h);
}

template <class I>
py::tuple run_csr_as(const plan::Program& p, const plan::Inputs& in, index_t bound, int n_threads) {
  const index_t n = in.n_rows;
  py::array_t<double> data(static_cast<py::ssize_t>(std::max<index_t>(n * bound, 1)));
  py::array_t<I> indices(static_cast<py::ssize_t>(std::max<index_t>(n * bound, 1)));
  py::array_t<I> indptr(static_cast<py::ssize_t>(n + 1));
  double* pd = data.mutable_data();
  I* pi = indices.mutable_data();
  I* pp = indptr.mutable_data();
  index_t nnz;
  {
    // Safe: the kernel reads only the input buffers (held by the caller's `keep`) and the
    // program, and writes only the three fresh arrays.
    py::gil_scoped_release release;
    nnz = tr::run_csr<I>(p, in, bound, pd, pi, pp, n_threads);
  }
  return py::make_tuple(data, indices, indptr, nnz);
}

py::tuple run_csr(const plan::Program& p, const py::list& columns, const i32& kinds,
                  index_t n_rows, int n_threads) {
  require(n_rows >= 0, "plan: negative row count");
  std::vector<py::array> keep;
  plan::Inputs in = plan_inputs(p, columns, kinds, n_rows, keep);
  const index_t bound = std::min<index_t>(static_cast<index_t>(p.src.size()), p.n_slots);
  // scipy's index dtype: int32 while every index and nnz fit in it.
  if (n_rows * bound < (index_t{1} << 31) - 1 && p.n_slots < (index_t{1} << 31) - 1)
    return run_csr_as<std::int32_t>(p, in, bound, n_threads);
  return run_csr_as<std::int64_t>(p, in, bound, n_threads);
}

// A sketch state crosses the boundary as (list of float64 level arrays, uint8 parity array).
tr::Compactor to_compactor(const py::handle& state) {
  auto t = py::reinterpret_borrow<py::tuple>(state);
  require(t.size() == 2, "sketch: a state is (levels, parity)");
  tr::Compactor c;
  for (const auto& lv : py::reinterpret_borrow<py::list>(t[0])) {
    auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(lv);
    require(a && a.ndim() == 1, "sketch: levels must be 1-D float arrays");
    c.levels.emplace_back(a.data(), a.data() + a.size());
  }
  auto par = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(t[1]);
  require(par && par.ndim() == 1 && static_cast<std::size_t>(par.size()) == c.levels.size(),
          "sketch: one parity per level");
  for (py::ssize_t i = 0; i < par.size(); ++i) {
    require(par.data()[i] <= 1, "sketch: parity must be 0 or 1");
    c.parity.push_back(par.data()[i]);
  }
  return c;
}

py::tuple from_compactor(const tr::Compactor& c) {
  py::list levels;
  for (const auto& lv : c.levels)
    levels.append(py::array_t<double>(static_cast<py::ssize_t>(lv.size()), lv.data()));
  py::array_t<std::uint8_t> par(static_cast<py::ssize_t>(c.parity.size()), c.parity.data());
  return py::make_tuple(levels, par);
}

std::vector<tr::Compactor> compactors(const py::list& states) {
  std::vector<tr::Compactor> out;
  out.reserve(states.size());
  for (const auto& st : states) out.push_back(to_compactor(st));
  return out;
}

py::list as_states(const std::vector<tr::Compactor>& cs) {
  py::list out;
  for (const auto& c : cs) out.append(from_compactor(c));
  return out;
}

py::list sketch_add(const py::list& states, const std::vector<f64>& cols, index_t k, int n_threads) {
  require(states.size() == cols.size(), "sketch: one column per sketch");
  require(k >= 1, "sketch: k must be positive");
  auto cs = compactors(states);
  auto v = views(cols);
  {
    // Safe: each task touches only its own C++ compactor and reads `cols` (held here).
    py::gil_scoped_release release;
    parallel_for(static_cast<index_t>(cs.size()), n_threads, 1, [&](index_t b, index_t e, index_t) {
      for (index_t i = b; i < e; ++i)
        tr::compactor_add(cs[static_cast<std::size_t>(i)], v[static_cast<std::size_t>(i)], k);
    });
  }
  return as_states(cs);
}

py::list sketch_merge(const py::list& a, const py::list& b, index_t k, int n_threads) {
  require(a.size() == b.size(), "sketch: merge needs as many sketches on both sides");
  require(k >= 1, "sketch: k must be positive");
  auto ca = compactors(a);
  auto cb = compactors(b);
  {
    // Safe: pure C++ data only.
    py::gil_scoped_release release;
    parallel_for(static_cast<index_t>(ca.size()), n_threads, 1, [&](index_t lo, index_t hi, index_t) {
      for (index_t i = lo; i < hi; ++i)
        tr::compactor_merge(ca[static_cast<std::size_t>(i)], cb[static_cast<std::size_t>(i)], k);
    });
  }
  return as_states(ca);
}

py::array_t<double> sketch_quantiles(const py::list& states, const f64& q, int n_threads) {
  auto cs = compactors(states);
  auto vq = view1d(q);
  std::vector<double> qs(static_cast<std::size_t>(vq.size));
  for (index_t j = 0; j < vq.size; ++j) qs[static_cast<std::size_t>(j)] = vq[j];
  py::array_t<double> out({static_cast<py::ssize_t>(cs.size()), static_cast<py::ssize_t>(qs.size())});
  double* po = out.mutable_data();
  const index_t nq = vq.size;
  {
    // Safe: reads the C++ copies, writes the fresh `out`.
    py::gil_scoped_release release;
    parallel_for(static_cast<index_t>(cs.size()), n_threads, 1, [&](index_t b, index_t e, index_t) {
      for (index_t i = b; i < e; ++i)
        tr::compactor_quantiles(cs[static_cast<std::size_t>(i)], qs.data(), nq, po + i * nq);
    });
  }
  return out;
}

// Fit statistics of program outputs (see transforms.hpp): `groups` lists the program's
// groups whose registers are measured, one output row each.
py::array_t<double> program_moments(const plan::Program& p, const py::list& columns,
                                    const i32& kinds, index_t n_rows,
                                    const std::vector<std::int32_t>& groups, int n_threads,
                                    bool pairwise, bool sums) {
  require(n_rows >= 0, "fit: negative row count");
  std::vector<py::array> keep;
  plan::Inputs in = plan_inputs(p, columns, kinds, n_rows, keep);
  py::array_t<double> out({static_cast<py::ssize_t>(groups.size()),
                           static_cast<py::ssize_t>(tr::kMomentFields)});
  auto* dst = reinterpret_cast<tr::Moments*>(out.mutable_data());
  {
    // Safe: reads the input buffers held by `keep` and the program; writes only `out`.
    py::gil_scoped_release release;
    tr::program_moments(p, in, groups, dst, n_threads, pairwise, sums);
  }
  return out;
}

py::array_t<double> program_quantiles(const plan::Program& p, const py::list& columns,
                                      const i32& kinds, index_t n_rows,
                                      const std::vector<std::int32_t>& groups, const i64& lo,
                                      const i64& hi, const f64& gamma, int n_threads) {
  require(n_rows >= 0, "fit: negative row count");
  std::vector<py::array> keep;
  plan::Inputs in = plan_inputs(p, columns, kinds, n_rows, keep);
  QuantileIndex q(lo, hi, gamma, static_cast<index_t>(groups.size()), "group");
  {
    // Safe: inputs are held by `keep`, `lo`, `hi`, `gamma`; only `q.out` is written.
    py::gil_scoped_release release;
    tr::program_quantiles(p, in, groups, q.lo, q.hi, q.gamma, q.view, n_threads);
  }
  return q.out;
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
  m.def("_tf_sketch_add", &sketch_add, py::arg("states"), py::arg("cols"), py::arg("k"),
        py::arg("n_threads") = 0, "Add one column to each compactor sketch; returns new states.");
  m.def("_tf_sketch_merge", &sketch_merge, py::arg("a"), py::arg("b"), py::arg("k"),
        py::arg("n_threads") = 0, "Merge compactor sketches pairwise; returns new states.");
  m.def("_tf_sketch_quantiles", &sketch_quantiles, py::arg("states"), py::arg("q"),
        py::arg("n_threads") = 0, "Quantiles of each compactor sketch, (n_sketches, len(q)).");
  m.def("_tf_run_csr", &run_csr, py::arg("program"), py::arg("columns"), py::arg("kinds"),
        py::arg("n_rows"), py::arg("n_threads") = 0,
        "Run a FeatureProgram into CSR: (data, indices, indptr, nnz); data/indices are "
        "over-allocated, entries [0, nnz) are the result.");
  m.def("_tf_udf", &udf, py::arg("cols"), py::arg("fn"), py::arg("n"), py::arg("n_threads") = 0,
        "Run a compiled block UDF (address) over the columns; returns one value per row.");
  m.def("_tf_moments", &moments, py::arg("cols"), py::arg("n_threads") = 0,
        py::arg("pairwise") = true, py::arg("sums") = true,
        "Per-column (count, sum, m2, min, max, absmax, n_nan, n_posinf, n_neginf).");
  m.def("_tf_quantiles", &quantiles, py::arg("cols"), py::arg("lo"), py::arg("hi"),
        py::arg("gamma"), py::arg("n_threads") = 0,
        "Interpolated order statistics of the non-NaN values of each column.");
  m.def("_tf_program_moments", &program_moments, py::arg("program"), py::arg("columns"),
        py::arg("kinds"), py::arg("n_rows"), py::arg("groups"), py::arg("n_threads") = 0,
        py::arg("pairwise") = true, py::arg("sums") = true,
        "_tf_moments of the listed groups' registers (no output matrix is built).");
  m.def("_tf_program_quantiles", &program_quantiles, py::arg("program"), py::arg("columns"),
        py::arg("kinds"), py::arg("n_rows"), py::arg("groups"), py::arg("lo"), py::arg("hi"),
        py::arg("gamma"), py::arg("n_threads") = 0,
        "_tf_quantiles of the listed groups' registers (no output matrix is built).");
  m.def("_tf_medians", &medians, py::arg("cols"), py::arg("n_threads") = 0,
        "(_tf_moments(sums=False), np.ma.median) per column in one pass.");
  m.def("_tf_mode", &mode, py::arg("cols"), py::arg("n_threads") = 0,
        "Most frequent non-NaN value per column (smallest on ties) and its count.");
  m.def("_tf_kmeans_1d", &kmeans, py::arg("x"), py::arg("init"), py::arg("max_iter"),
        py::arg("tol"), "1-D Lloyd k-means from the given initial centers.");
}

}  // namespace forgeline::bind
