#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "forgeline/drift.hpp"

namespace forgeline::drift {

namespace {

// Slot of a value v in [lo, hi]: floor((v - lo) * scale), clamped to the last slot. The
// same function classifies thresholds and values, and it is monotone in v under
// round-to-nearest, so a slot that holds no threshold sees one constant "thresholds <= v"
// count, whatever the rounding of the slot arithmetic.
inline index_t slot_of(double v, double lo, double scale, index_t last) {
  const double p = (v - lo) * scale;
  return p >= static_cast<double>(last) ? last : static_cast<index_t>(p);
}

}  // namespace

void probe_counts(View1D<const double> x, const double* t, index_t k, double shift,
                  std::int64_t* lt, std::int64_t* le, ProbeStats& st) {
  st = ProbeStats{};
  std::vector<std::int64_t> bucket(static_cast<size_t>(k) + 1, 0), eq(static_cast<size_t>(k) + 1, 0);
  // Finite threshold range [lo, hi]; values inside it are classified by slot, the rest
  // (and infinities, and every value when the range is degenerate) by binary search.
  index_t f0 = 0, f1 = k;
  while (f0 < k && std::isinf(t[f0])) ++f0;
  while (f1 > f0 && std::isinf(t[f1 - 1])) --f1;
  const bool table_ok = f1 - f0 >= 2 && t[f1 - 1] > t[f0] && k < (index_t{1} << 24);
  index_t slots = 1;
  while (table_ok && slots < 16 * k && slots < (index_t{1} << 20)) slots <<= 1;
  const double lo = table_ok ? t[f0] : 1.0, hi = table_ok ? t[f1 - 1] : 0.0;  // empty when !ok
  const double scale = table_ok ? static_cast<double>(slots) / (hi - lo) : 0.0;
  const index_t last = slots - 1;
  // Per slot: base[s] = thresholds in slots < s, and the slot's own threshold when it holds
  // exactly one (+inf when it holds none, so "v >= thr" is false there); cnt[s] >= 2 marks
  // the rare slots that need a short scan. One-threshold and empty slots are branch-free.
  struct Slot {
    double thr = std::numeric_limits<double>::infinity();
    std::uint32_t base = 0, many = 0;
  };
  std::vector<Slot> tab(static_cast<size_t>(slots));
  if (table_ok) {
    std::vector<index_t> in_slot(static_cast<size_t>(slots), 0);
    for (index_t i = f0; i < f1; ++i) ++in_slot[static_cast<size_t>(slot_of(t[i], lo, scale, last))];
    index_t before = f0;  // the -inf thresholds lie below every slot
    for (index_t s = 0; s < slots; ++s) {
      const auto u = static_cast<size_t>(s);
      const index_t c = in_slot[u];
      tab[u].base = static_cast<std::uint32_t>(before);
      if (c == 1) tab[u].thr = t[before];
      tab[u].many = c >= 2;
      before += c;
    }
  }
  auto classify_slow = [&](double v) {
    const index_t b = std::upper_bound(t, t + k, v) - t;
    ++bucket[static_cast<size_t>(b)];
    if (b > 0 && t[b - 1] == v) ++eq[static_cast<size_t>(b - 1)];
  };
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  double sum = 0.0, sumsq = 0.0;
  index_t n_nan = 0, n_fin = 0;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (v >= lo && v <= hi) {  // false for NaN and whenever the table is off
      const double d = v - shift;
      sum += d;
      sumsq += d * d;
      ++n_fin;
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
      const auto u = static_cast<size_t>(slot_of(v, lo, scale, last));
      const Slot& sl = tab[u];
      if (FL_LIKELY(!sl.many)) {
        const index_t b0 = sl.base;
        const double tv = sl.thr;
        bucket[static_cast<size_t>(b0 + (v >= tv))] += 1;
        if (FL_UNLIKELY(v == tv)) ++eq[static_cast<size_t>(b0)];
      } else {
        classify_slow(v);
      }
      continue;
    }
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
    classify_slow(v);
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

namespace forgeline::drift {

namespace {

struct Side {
  index_t valid = 0, missing = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  bool has_inf = false;
};

Side scan(View1D<const double> x) {
  Side s;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) { ++s.missing; continue; }
    s.has_inf |= std::isinf(v);
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.valid = x.size - s.missing;
  return s;
}

}  // namespace

KSUnsorted ks_unsorted(View1D<const double> a, View1D<const double> b) {
  KSUnsorted r;
  const Side sa = scan(a), sb = scan(b);
  r.n1 = sa.valid; r.n1_missing = sa.missing; r.min1 = sa.min; r.max1 = sa.max;
  r.n2 = sb.valid; r.n2_missing = sb.missing; r.min2 = sb.min; r.max2 = sb.max;
  if (sa.valid == 0 || sb.valid == 0 || sa.has_inf || sb.has_inf) return r;  // ok = false
  const double lo = std::min(sa.min, sb.min), hi = std::max(sa.max, sb.max);
  const index_t n1 = sa.valid, n2 = sb.valid;
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  r.ok = true;
  if (!(hi > lo)) {  // a single distinct value in both samples: the ECDFs coincide
    r.max_plus = 0.0; r.max_minus = 0.0;
    return r;
  }
  const index_t nb = std::min<index_t>(std::max<index_t>((n1 + n2) / 32, 16), index_t{1} << 20);
  const double scale = static_cast<double>(nb) / (hi - lo);
  // (v - lo) * scale is monotone in v under round-to-nearest, so buckets respect the order
  // of values and equal values share a bucket.
  auto bucket = [&](double v) {
    const double p = (v - lo) * scale;
    const index_t k = p >= static_cast<double>(nb) ? nb - 1 : static_cast<index_t>(p);
    return k;
  };
  std::vector<std::int64_t> ca(static_cast<size_t>(nb) + 1, 0), cb(static_cast<size_t>(nb) + 1, 0);
  for (index_t i = 0; i < a.size; ++i) if (!std::isnan(a[i])) ++ca[static_cast<size_t>(bucket(a[i])) + 1];
  for (index_t i = 0; i < b.size; ++i) if (!std::isnan(b[i])) ++cb[static_cast<size_t>(bucket(b[i])) + 1];
  // ca/cb become prefix counts: ca[k] = values in buckets < k.
  std::vector<std::int64_t> na(static_cast<size_t>(nb)), nbk(static_cast<size_t>(nb));
  for (index_t k = 0; k < nb; ++k) {
    na[static_cast<size_t>(k)] = ca[static_cast<size_t>(k) + 1];
    nbk[static_cast<size_t>(k)] = cb[static_cast<size_t>(k) + 1];
    ca[static_cast<size_t>(k) + 1] += ca[static_cast<size_t>(k)];
    cb[static_cast<size_t>(k) + 1] += cb[static_cast<size_t>(k)];
  }
  auto diff = [&](std::int64_t i, std::int64_t j) {
    return static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
  };
  // The last value of a non-empty bucket sees every value of the bucket: its difference is
  // known exactly from the prefix counts.
  double best_max = -std::numeric_limits<double>::infinity();
  double best_min = std::numeric_limits<double>::infinity();
  for (index_t k = 0; k < nb; ++k) {
    const auto u = static_cast<size_t>(k);
    if (na[u] + nbk[u] == 0) continue;
    const double dk = diff(ca[u + 1], cb[u + 1]);
    best_max = std::max(best_max, dk);
    best_min = std::min(best_min, dk);
  }
  // A bucket can hold a larger (smaller) difference only if its most favourable count
  // combination beats the best so far; the difference is monotone in each count.
  std::vector<std::uint8_t> cand(static_cast<size_t>(nb), 0);
  index_t n_cand = 0;
  for (index_t k = 0; k < nb; ++k) {
    const auto u = static_cast<size_t>(k);
    if (na[u] + nbk[u] < 2) continue;  // one value: its difference is the bucket's own
    const bool up = na[u] > 0 && diff(ca[u + 1], cb[u]) > best_max;
    const bool down = nbk[u] > 0 && diff(ca[u], cb[u + 1]) < best_min;
    if (up || down) { cand[u] = 1; ++n_cand; }
  }
  if (n_cand == 0) {
    r.max_plus = best_max;
    r.max_minus = std::min(std::max(-best_min, 0.0), 1.0);
    return r;
  }
  // Gather candidate buckets' values (both samples), then walk each bucket exactly.
  std::vector<std::int64_t> off_a(static_cast<size_t>(nb) + 1, 0), off_b(static_cast<size_t>(nb) + 1, 0);
  for (index_t k = 0; k < nb; ++k) {
    const auto u = static_cast<size_t>(k);
    off_a[u + 1] = off_a[u] + (cand[u] ? na[u] : 0);
    off_b[u + 1] = off_b[u] + (cand[u] ? nbk[u] : 0);
  }
  std::vector<double> va(static_cast<size_t>(off_a[static_cast<size_t>(nb)]));
  std::vector<double> vb(static_cast<size_t>(off_b[static_cast<size_t>(nb)]));
  std::vector<std::int64_t> pa(off_a.begin(), off_a.end() - 1), pb(off_b.begin(), off_b.end() - 1);
  for (index_t i = 0; i < a.size; ++i) {
    const double v = a[i];
    if (std::isnan(v)) continue;
    const auto u = static_cast<size_t>(bucket(v));
    if (cand[u]) va[static_cast<size_t>(pa[u]++)] = v;
  }
  for (index_t i = 0; i < b.size; ++i) {
    const double v = b[i];
    if (std::isnan(v)) continue;
    const auto u = static_cast<size_t>(bucket(v));
    if (cand[u]) vb[static_cast<size_t>(pb[u]++)] = v;
  }
  for (index_t k = 0; k < nb; ++k) {
    const auto u = static_cast<size_t>(k);
    if (!cand[u]) continue;
    double* a0 = va.data() + off_a[u];
    double* a1 = va.data() + off_a[u + 1];
    double* b0 = vb.data() + off_b[u];
    double* b1 = vb.data() + off_b[u + 1];
    std::sort(a0, a1);
    std::sort(b0, b1);
    std::int64_t i = ca[u], j = cb[u];
    while (a0 < a1 || b0 < b1) {
      double v;
      if (b0 >= b1 || (a0 < a1 && *a0 <= *b0)) v = *a0;
      else v = *b0;
      while (a0 < a1 && *a0 == v) { ++a0; ++i; }
      while (b0 < b1 && *b0 == v) { ++b0; ++j; }
      const double dk = diff(i, j);
      best_max = std::max(best_max, dk);
      best_min = std::min(best_min, dk);
    }
  }
  r.max_plus = best_max;
  r.max_minus = std::min(std::max(-best_min, 0.0), 1.0);
  return r;
}

}  // namespace forgeline::drift

namespace forgeline::drift {

void order_stats(View1D<const double> x, const index_t* ranks, index_t k, double* out) {
  std::vector<double> vals;
  index_t n = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  bool has_inf = false;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) continue;
    ++n;
    has_inf |= std::isinf(v);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  for (index_t r = 0; r < k; ++r) require(ranks[r] >= 0 && ranks[r] < n, "order_stats: rank out of range");
  if (k == 0) return;
  if (has_inf || !(hi > lo) || n < 64) {
    vals.reserve(static_cast<size_t>(n));
    for (index_t i = 0; i < x.size; ++i) if (!std::isnan(x[i])) vals.push_back(x[i]);
    std::sort(vals.begin(), vals.end());
    for (index_t r = 0; r < k; ++r) out[r] = vals[static_cast<size_t>(ranks[r])];
    return;
  }
  // Value-range buckets (monotone in the value), then only the buckets holding a wanted
  // rank are gathered and sorted.
  const index_t nb = std::max<index_t>(16, n / 32);
  const double scale = static_cast<double>(nb) / (hi - lo);
  auto bucket = [&](double v) {
    const double p = (v - lo) * scale;
    return p >= static_cast<double>(nb) ? nb - 1 : static_cast<index_t>(p);
  };
  std::vector<index_t> start(static_cast<size_t>(nb) + 1, 0);
  for (index_t i = 0; i < x.size; ++i) if (!std::isnan(x[i])) ++start[static_cast<size_t>(bucket(x[i])) + 1];
  for (index_t b = 0; b < nb; ++b) start[static_cast<size_t>(b) + 1] += start[static_cast<size_t>(b)];
  std::vector<index_t> which(static_cast<size_t>(k));
  std::vector<std::uint8_t> want(static_cast<size_t>(nb), 0);
  for (index_t r = 0; r < k; ++r) {
    const index_t b = static_cast<index_t>(
        std::upper_bound(start.begin(), start.end(), ranks[r]) - start.begin()) - 1;
    which[static_cast<size_t>(r)] = b;
    want[static_cast<size_t>(b)] = 1;
  }
  std::vector<index_t> off(static_cast<size_t>(nb) + 1, 0);
  for (index_t b = 0; b < nb; ++b)
    off[static_cast<size_t>(b) + 1] = off[static_cast<size_t>(b)] +
        (want[static_cast<size_t>(b)] ? start[static_cast<size_t>(b) + 1] - start[static_cast<size_t>(b)] : 0);
  vals.resize(static_cast<size_t>(off[static_cast<size_t>(nb)]));
  std::vector<index_t> pos(off.begin(), off.end() - 1);
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) continue;
    const auto b = static_cast<size_t>(bucket(v));
    if (want[b]) vals[static_cast<size_t>(pos[b]++)] = v;
  }
  for (index_t b = 0; b < nb; ++b)
    if (want[static_cast<size_t>(b)])
      std::sort(vals.begin() + off[static_cast<size_t>(b)], vals.begin() + off[static_cast<size_t>(b) + 1]);
  for (index_t r = 0; r < k; ++r) {
    const auto b = static_cast<size_t>(which[static_cast<size_t>(r)]);
    out[r] = vals[static_cast<size_t>(off[b] + (ranks[r] - start[b]))];
  }
}

}  // namespace forgeline::drift
