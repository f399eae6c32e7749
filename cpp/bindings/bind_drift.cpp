#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "bindings.hpp"
#include "forgeline/drift.hpp"
#include "forgeline/parallel.hpp"

namespace forgeline::bind {

namespace {

using DArr = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::vector<View1D<const double>> views_of(const std::vector<DArr>& arrs) {
  std::vector<View1D<const double>> out;
  out.reserve(arrs.size());
  for (const auto& a : arrs) {
    if (a.ndim() != 1) throw std::invalid_argument("expected 1-D arrays");
    out.push_back({a.data(), static_cast<index_t>(a.shape(0)), 1});  // c_style: stride 1
  }
  return out;
}

// Bit flags selecting the statistics computed by _drift_pair_stats.
constexpr int kKS = 1, kCdf = 2, kCvm = 4, kAD = 8;

}  // namespace

void bind_drift(py::module_& m) {
  m.def(
      "_drift_sort_valid",
      [](const std::vector<DArr>& cols, int n_threads, bool moments) {
        auto views = views_of(cols);
        std::vector<py::array_t<double>> outs;
        std::vector<double*> ptrs;
        for (const auto& v : views) {
          outs.emplace_back(static_cast<py::ssize_t>(v.size));
          ptrs.push_back(outs.back().mutable_data());
        }
        std::vector<drift::ColumnStats> stats;
        {
          // Safe to drop the GIL: kernels touch only the buffers of `cols` (kept alive by
          // the argument list) and of `outs` (owned here); no Python object is touched.
          py::gil_scoped_release release;
          drift::sort_valid_many(views, ptrs, stats, n_threads, moments);
        }
        py::array_t<double> st({static_cast<py::ssize_t>(views.size()), py::ssize_t{9}});
        auto s = st.mutable_unchecked<2>();
        py::list sorted;
        for (size_t j = 0; j < views.size(); ++j) {
          const auto& c = stats[j];
          s(j, 0) = static_cast<double>(c.n_valid);
          s(j, 1) = static_cast<double>(c.n_missing);
          s(j, 2) = static_cast<double>(c.n_zero);
          s(j, 3) = static_cast<double>(c.n_inf);
          s(j, 4) = c.min;
          s(j, 5) = c.max;
          s(j, 6) = c.mean;
          s(j, 7) = c.m2;
          s(j, 8) = static_cast<double>(c.n_finite);
          // Trim to the valid count without a copy (a view on the owned buffer).
          sorted.append(outs[j][py::slice(0, static_cast<py::ssize_t>(c.n_valid), 1)]);
        }
        return py::make_tuple(sorted, st);
      },
      py::arg("cols"), py::arg("n_threads") = 0, py::arg("moments") = true,
      "Sort each column's non-NaN values (radix sort) and summarise it; columns in parallel.\n"
      "Returns (list of sorted arrays, stats[k, 9]) with stats columns n_valid, n_missing,\n"
      "n_zero, n_inf, min, max, mean, m2, n_finite.");

  m.def(
      "_drift_pair_stats",
      [](const std::vector<DArr>& a, const std::vector<DArr>& b, int flags, int n_threads) {
        if (a.size() != b.size()) throw std::invalid_argument("a and b must have the same length");
        auto va = views_of(a), vb = views_of(b);
        for (size_t j = 0; j < va.size(); ++j)
          if (va[j].size == 0 || vb[j].size == 0)
            throw std::invalid_argument("_drift_pair_stats: empty sample");
        const auto k = static_cast<py::ssize_t>(va.size());
        py::array_t<double> out({k, py::ssize_t{8}});
        double* o = out.mutable_data();
        std::fill(o, o + k * 8, std::numeric_limits<double>::quiet_NaN());
        {
          // Safe to drop the GIL: only the input buffers (alive via the arguments) and the
          // output buffer (owned here) are touched.
          py::gil_scoped_release release;
          parallel_for(static_cast<index_t>(k), n_threads, 1, [&](index_t b0, index_t e0, index_t) {
            for (index_t j = b0; j < e0; ++j) {
              double* r = o + j * 8;
              const auto& x = va[static_cast<size_t>(j)];
              const auto& y = vb[static_cast<size_t>(j)];
              if (flags & kKS) {
                auto ks = drift::ks_sorted(x, y);
                r[0] = ks.max_plus; r[1] = ks.max_minus; r[2] = ks.loc_plus; r[3] = ks.loc_minus;
              }
              if (flags & kCdf) {
                auto cd = drift::cdf_distances(x, y);
                r[4] = cd.l1; r[5] = cd.l2sq;
              }
              if (flags & kCvm) r[6] = drift::cvm_u(x, y);
              if (flags & kAD) r[7] = drift::ad_midrank_a2akn(x, y);
            }
          });
        }
        return out;
      },
      py::arg("a"), py::arg("b"), py::arg("flags"), py::arg("n_threads") = 0,
      "Two-sample statistics on sorted NaN-free pairs, one pair per task. Columns of the\n"
      "result: ks max_plus, ks max_minus, loc_plus, loc_minus, W1 sum, L2^2 sum, CvM U, AD A2akN.\n"
      "flags: 1 KS, 2 CDF distances, 4 CvM, 8 AD (NaN where not computed).");

  m.def(
      "_drift_probe",
      [](const std::vector<DArr>& cols, const std::vector<DArr>& thresholds,
         const std::vector<double>& shifts, int n_threads) {
        if (cols.size() != thresholds.size() || cols.size() != shifts.size())
          throw std::invalid_argument("_drift_probe: cols, thresholds and shifts differ in length");
        auto vc = views_of(cols), vt = views_of(thresholds);
        for (const auto& t : vt)
          for (index_t i = 0; i < t.size; ++i)
            if (std::isnan(t.data[i]) || (i > 0 && !(t.data[i - 1] < t.data[i])))
              throw std::invalid_argument("_drift_probe: thresholds must increase strictly");
        std::vector<py::array_t<std::int64_t>> lts, les;
        std::vector<std::int64_t*> plt, ple;
        for (const auto& t : vt) {
          lts.emplace_back(static_cast<py::ssize_t>(t.size));
          les.emplace_back(static_cast<py::ssize_t>(t.size));
          plt.push_back(lts.back().mutable_data());
          ple.push_back(les.back().mutable_data());
        }
        std::vector<drift::ProbeStats> st(vc.size());
        {
          // Safe to drop the GIL: only the argument buffers (kept alive by the caller's
          // lists) and the output arrays owned here are touched.
          py::gil_scoped_release release;
          parallel_for(static_cast<index_t>(vc.size()), n_threads, 1, [&](index_t b, index_t e, index_t) {
            for (index_t j = b; j < e; ++j) {
              const auto u = static_cast<size_t>(j);
              drift::probe_counts(vc[u], vt[u].data, vt[u].size, shifts[u], plt[u], ple[u], st[u]);
            }
          });
        }
        py::array_t<double> out({static_cast<py::ssize_t>(vc.size()), py::ssize_t{7}});
        auto o = out.mutable_unchecked<2>();
        py::list lt_list, le_list;
        for (size_t j = 0; j < vc.size(); ++j) {
          o(j, 0) = static_cast<double>(st[j].n_valid);
          o(j, 1) = static_cast<double>(st[j].n_missing);
          o(j, 2) = static_cast<double>(st[j].n_finite);
          o(j, 3) = st[j].min;
          o(j, 4) = st[j].max;
          o(j, 5) = st[j].sum;
          o(j, 6) = st[j].sumsq;
          lt_list.append(lts[j]);
          le_list.append(les[j]);
        }
        return py::make_tuple(lt_list, le_list, out);
      },
      py::arg("cols"), py::arg("thresholds"), py::arg("shifts"), py::arg("n_threads") = 0,
      "Counts of values < and <= each threshold per column, without sorting, plus stats\n"
      "[k, 7]: n_valid, n_missing, n_finite, min, max, sum(x - shift), sum((x - shift)^2).");

  m.def(
      "_drift_ks_unsorted",
      [](const std::vector<DArr>& a, const std::vector<DArr>& b, index_t n_bins, int n_threads) {
        if (a.size() != b.size()) throw std::invalid_argument("a and b must have the same length");
        if (n_bins < 1) throw std::invalid_argument("n_bins must be positive");
        auto va = views_of(a), vb = views_of(b);
        const auto k = static_cast<py::ssize_t>(va.size());
        std::vector<drift::KSUnsorted> res(va.size());
        {
          // Safe to drop the GIL: reads the argument buffers, writes only `res`.
          py::gil_scoped_release release;
          parallel_for(static_cast<index_t>(k), n_threads, 1, [&](index_t b0, index_t e0, index_t) {
            for (index_t j = b0; j < e0; ++j)
              res[static_cast<size_t>(j)] =
                  drift::ks_unsorted(va[static_cast<size_t>(j)], vb[static_cast<size_t>(j)], n_bins);
          });
        }
        py::array_t<double> out({k, py::ssize_t{11}});
        auto o = out.mutable_unchecked<2>();
        py::list edges, a_lt, thr, b_lt, b_le;
        auto arr_d = [](const std::vector<double>& v) {
          py::array_t<double> x(static_cast<py::ssize_t>(v.size()));
          std::copy(v.begin(), v.end(), x.mutable_data());
          return x;
        };
        auto arr_i = [](const std::vector<std::int64_t>& v) {
          py::array_t<std::int64_t> x(static_cast<py::ssize_t>(v.size()));
          std::copy(v.begin(), v.end(), x.mutable_data());
          return x;
        };
        for (py::ssize_t j = 0; j < k; ++j) {
          const auto& r = res[static_cast<size_t>(j)];
          const double v[11] = {r.ok ? 1.0 : 0.0, r.max_plus, r.max_minus,
                                static_cast<double>(r.n1), static_cast<double>(r.n1_missing), r.min1, r.max1,
                                static_cast<double>(r.n2), static_cast<double>(r.n2_missing), r.min2, r.max2};
          for (int c = 0; c < 11; ++c) o(j, c) = v[c];
          edges.append(arr_d(r.edges));
          a_lt.append(arr_i(r.a_lt));
          thr.append(arr_d(r.thr));
          b_lt.append(arr_i(r.b_lt));
          b_le.append(arr_i(r.b_le));
        }
        return py::make_tuple(out, edges, a_lt, thr, b_lt, b_le);
      },
      py::arg("a"), py::arg("b"), py::arg("n_bins"), py::arg("n_threads") = 0,
      "Exact KS statistic of unsorted pairs (NaN skipped) fused with a's quantile-bin counts,\n"
      "one pair per task. Returns (stats[k, 11]: ok, max_plus, max_minus, n1, n1_missing,\n"
      "min1, max1, n2, n2_missing, min2, max2; edges; #a < edge; thr = unique(edges, min1,\n"
      "max1); #b < thr; #b <= thr), lists with one array per pair.");

  m.def(
      "_drift_ks_exact",
      [](index_t n1, index_t n2, index_t h) {
        if (n1 <= 0 || n2 <= 0 || h < 0) throw std::invalid_argument("_drift_ks_exact: bad sizes");
        const index_t g = std::gcd(n1, n2);
        // Pure arithmetic on scalars: no Python objects touched while the GIL is released.
        py::gil_scoped_release release;
        if (n1 == n2) return drift::ks_prob_outside_square(n1, h);
        return drift::ks_outer_prob_inside(n1, n2, g, h);
      },
      py::arg("n1"), py::arg("n2"), py::arg("h"),
      "Exact two-sided two-sample KS p-value Pr(D >= h / lcm(n1, n2)).");

  m.def(
      "_drift_smirnov_sf",
      [](index_t n, double x) {
        if (n <= 0) throw std::invalid_argument("_drift_smirnov_sf: n must be positive");
        py::gil_scoped_release release;  // scalar arithmetic only
        return drift::smirnov_sf(n, x);
      },
      py::arg("n"), py::arg("x"), "One-sided Smirnov survival function Pr(D_n^+ >= x), exact.");
}

}  // namespace forgeline::bind
