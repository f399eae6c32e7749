#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "forgeline/drift.hpp"

namespace forgeline::drift {

void probe_counts(View1D<const double> x, const double* t, index_t k, double shift,
                  std::int64_t* lt, std::int64_t* le, ProbeStats& st) {
  st = ProbeStats{};
  std::vector<std::int64_t> bucket(static_cast<size_t>(k) + 1, 0), eq(static_cast<size_t>(std::max<index_t>(k, 1)), 0);
  // Lookup table over the finite threshold range: slot s holds the number of thresholds <=
  // the slot's left end, so a value needs only a short forward scan from there.
  index_t f0 = 0, f1 = k;
  while (f0 < k && std::isinf(t[f0])) ++f0;
  while (f1 > f0 && std::isinf(t[f1 - 1])) --f1;
  const bool table_ok = f1 - f0 >= 2 && t[f1 - 1] > t[f0];
  const index_t slots = table_ok ? std::max<index_t>(64, 8 * k) : 1;
  const double lo = table_ok ? t[f0] : 0.0;
  const double scale = table_ok ? static_cast<double>(slots) / (t[f1 - 1] - t[f0]) : 0.0;
  std::vector<index_t> start(static_cast<size_t>(slots) + 1, 0);
  if (table_ok) {
    for (index_t s = 0; s <= slots; ++s) {
      const double left = lo + static_cast<double>(s) / scale;
      start[static_cast<size_t>(s)] = std::upper_bound(t, t + k, left) - t;
    }
  }
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  double sum = 0.0, sumsq = 0.0;
  index_t n_nan = 0, n_fin = 0;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) {
      ++n_nan;
      continue;
    }
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    if (std::isfinite(v)) {
      const double d = v - shift;
      sum += d;
      sumsq += d * d;
      ++n_fin;
    }
    index_t b;
    if (k == 0 || v < t[0]) {
      b = 0;
    } else if (v >= t[k - 1]) {
      b = k;
    } else if (table_ok && v >= lo) {
      double pos = (v - lo) * scale;
      index_t s = pos >= static_cast<double>(slots) ? slots : static_cast<index_t>(pos);
      // Floating-point slot arithmetic may be one off: step back while the start is too far.
      b = start[static_cast<size_t>(s)];
      while (b > 0 && t[b - 1] > v) --b;
      while (b < k && t[b] <= v) ++b;
    } else {
      b = std::upper_bound(t, t + k, v) - t;
    }
    ++bucket[static_cast<size_t>(b)];
    if (b > 0 && t[b - 1] == v) ++eq[static_cast<size_t>(b - 1)];
  }
  std::int64_t run = 0;
  for (index_t i = 0; i < k; ++i) {
    run += bucket[static_cast<size_t>(i)];
    lt[i] = run;
    le[i] = run + eq[static_cast<size_t>(i)];
  }
  st.n_missing = n_nan;
  st.n_valid = x.size - n_nan;
  st.n_finite = n_fin;
  st.min = st.n_valid ? mn : std::numeric_limits<double>::quiet_NaN();
  st.max = st.n_valid ? mx : std::numeric_limits<double>::quiet_NaN();
  st.sum = sum;
  st.sumsq = sumsq;
}

}  // namespace forgeline::drift
