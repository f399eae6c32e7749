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
  while (table_ok && slots < 8 * k && slots < (index_t{1} << 20)) slots <<= 1;
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
  // Four independent min/max chains (scalars, so they stay in registers); NaN fails every
  // comparison, so it never enters them, and infinities show up as infinite extremes.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double mn0 = kInf, mn1 = kInf, mn2 = kInf, mn3 = kInf;
  double mx0 = -kInf, mx1 = -kInf, mx2 = -kInf, mx3 = -kInf;
  index_t nan = 0;
  const double* FL_RESTRICT p = x.data;
  const index_t st = x.stride, n = x.size;
  index_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double v0 = p[i * st], v1 = p[(i + 1) * st], v2 = p[(i + 2) * st], v3 = p[(i + 3) * st];
    nan += (v0 != v0) + (v1 != v1) + (v2 != v2) + (v3 != v3);
    mn0 = v0 < mn0 ? v0 : mn0;
    mn1 = v1 < mn1 ? v1 : mn1;
    mn2 = v2 < mn2 ? v2 : mn2;
    mn3 = v3 < mn3 ? v3 : mn3;
    mx0 = v0 > mx0 ? v0 : mx0;
    mx1 = v1 > mx1 ? v1 : mx1;
    mx2 = v2 > mx2 ? v2 : mx2;
    mx3 = v3 > mx3 ? v3 : mx3;
  }
  for (; i < n; ++i) {
    const double v = p[i * st];
    nan += v != v;
    mn0 = v < mn0 ? v : mn0;
    mx0 = v > mx0 ? v : mx0;
  }
  Side s;
  s.missing = nan;
  s.valid = n - nan;
  s.min = std::min(std::min(mn0, mn1), std::min(mn2, mn3));
  s.max = std::max(std::max(mx0, mx1), std::max(mx2, mx3));
  s.has_inf = std::isinf(s.min) || std::isinf(s.max);
  return s;
}

}  // namespace

KSUnsorted ks_unsorted(View1D<const double> a, View1D<const double> b, index_t n_bins) {
  KSUnsorted r;
  const Side sa = scan(a), sb = scan(b);
  r.n1 = sa.valid; r.n1_missing = sa.missing; r.min1 = sa.min; r.max1 = sa.max;
  r.n2 = sb.valid; r.n2_missing = sb.missing; r.min2 = sb.min; r.max2 = sb.max;
  if (sa.valid == 0 || sb.valid == 0 || sa.has_inf || sb.has_inf) return r;  // ok = false
  if (sa.valid >= (index_t{1} << 31) || sb.valid >= (index_t{1} << 31)) return r;
  const double lo = std::min(sa.min, sb.min), hi = std::max(sa.max, sb.max);
  // A single distinct value overall: the caller's sorted path handles it (ok = false).
  if (!(hi > lo)) return r;
  const index_t n1 = sa.valid, n2 = sb.valid;
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  r.ok = true;
  const index_t nb = std::min<index_t>(std::max<index_t>((n1 + n2) / 32, 16), index_t{1} << 20);
  const double scale = static_cast<double>(nb) / (hi - lo);
  // (v - lo) * scale is monotone in v under round-to-nearest, so buckets respect the order
  // of values and equal values share a bucket.
  auto bucket = [&](double v) -> size_t {
    const double p = (v - lo) * scale;
    return static_cast<size_t>(p >= static_cast<double>(nb) ? nb - 1 : static_cast<index_t>(p));
  };
  const auto unb = static_cast<size_t>(nb);
  // na/nbk: per-bucket counts; ca/cb: prefix counts (ca[k] = values of a in buckets < k).
  std::vector<std::int64_t> na(unb, 0), nbk(unb, 0), ca(unb + 1, 0), cb(unb + 1, 0);
  {
    // 32-bit counts keep the bucket array in L1 (n < 2^31 is checked above).
    std::vector<std::uint32_t> hv(unb, 0);
    std::uint32_t* FL_RESTRICT h = hv.data();
    const double lo_ = lo, scale_ = scale, top = static_cast<double>(nb);
    const index_t last = nb - 1;
    auto count = [&](View1D<const double> x, std::vector<std::int64_t>& out) {
      const double* FL_RESTRICT p = x.data;
      const index_t st = x.stride, n = x.size;
      std::fill(h, h + unb, 0u);
      for (index_t i = 0; i < n; ++i) {
        const double v = p[i * st];
        if (v != v) continue;
        const double q = (v - lo_) * scale_;
        ++h[q >= top ? last : static_cast<index_t>(q)];
      }
      for (size_t k = 0; k < unb; ++k) out[k] = h[k];
    };
    count(a, na);
    count(b, nbk);
  }
  for (size_t k = 0; k < unb; ++k) {
    ca[k + 1] = ca[k] + na[k];
    cb[k + 1] = cb[k] + nbk[k];
  }
  auto diff = [&](std::int64_t i, std::int64_t j) {
    return static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
  };
  // The last value of a non-empty bucket sees every value of the bucket: its difference is
  // known exactly from the prefix counts.
  double best_max = -std::numeric_limits<double>::infinity();
  double best_min = std::numeric_limits<double>::infinity();
  for (size_t u = 0; u < unb; ++u) {
    if (na[u] + nbk[u] == 0) continue;
    const double dk = diff(ca[u + 1], cb[u + 1]);
    best_max = std::max(best_max, dk);
    best_min = std::min(best_min, dk);
  }
  // want bit 1: KS candidate (both samples gathered); bit 2: a gathered (order statistics);
  // bit 4: b gathered (counts at thresholds). A bucket can hold a larger (smaller) KS
  // difference only if its most favourable count combination beats the best so far.
  std::vector<std::uint8_t> want(unb, 0);
  for (size_t u = 0; u < unb; ++u) {
    if (na[u] + nbk[u] < 2) continue;  // one value: its difference is the bucket's own
    const bool up = na[u] > 0 && diff(ca[u + 1], cb[u]) > best_max;
    const bool down = nbk[u] > 0 && diff(ca[u], cb[u + 1]) < best_min;
    if (up || down) want[u] |= 1;
  }
  // Interior edges at a's quantiles k / n_bins with numpy's linear rule, the positions
  // computed as np.linspace(0, 1, n_bins + 1)[1:-1] * (n1 - 1) does.
  const index_t ne = std::max<index_t>(n_bins - 1, 0);
  std::vector<double> pos(static_cast<size_t>(ne));
  std::vector<index_t> rlo(static_cast<size_t>(ne)), rhi(static_cast<size_t>(ne));
  const double step = 1.0 / static_cast<double>(n_bins);
  auto rank_bucket = [&](index_t rank) {
    return static_cast<size_t>(std::upper_bound(ca.begin(), ca.end(), rank) - ca.begin()) - 1;
  };
  for (index_t q = 0; q < ne; ++q) {
    const auto u = static_cast<size_t>(q);
    pos[u] = static_cast<double>(q + 1) * step * static_cast<double>(n1 - 1);
    rlo[u] = static_cast<index_t>(std::floor(pos[u]));
    rhi[u] = std::min(rlo[u] + 1, n1 - 1);
    want[rank_bucket(rlo[u])] |= 2;
    want[rank_bucket(rhi[u])] |= 2;
  }
  auto gather = [&](View1D<const double> x, const std::vector<std::int64_t>& cnt, std::uint8_t bits,
                    std::vector<std::int64_t>& off, std::vector<double>& vals) {
    off.assign(unb + 1, 0);
    for (size_t u = 0; u < unb; ++u) off[u + 1] = off[u] + ((want[u] & bits) ? cnt[u] : 0);
    vals.resize(static_cast<size_t>(off[unb]));
    std::vector<std::int64_t> putv(off.begin(), off.end() - 1);
    std::int64_t* FL_RESTRICT put = putv.data();
    double* FL_RESTRICT dst = vals.data();
    const std::uint8_t* FL_RESTRICT w = want.data();
    const double* FL_RESTRICT p = x.data;
    const index_t st = x.stride, n = x.size;
    const double lo_ = lo, scale_ = scale, top = static_cast<double>(nb);
    const index_t last = nb - 1;
    for (index_t i = 0; i < n; ++i) {
      const double v = p[i * st];
      if (v != v) continue;
      const double q = (v - lo_) * scale_;
      const index_t u = q >= top ? last : static_cast<index_t>(q);  // same as bucket(v)
      if (w[u] & bits) dst[put[u]++] = v;
    }
    for (size_t u = 0; u < unb; ++u)
      if (off[u + 1] - off[u] > 1) std::sort(vals.begin() + off[u], vals.begin() + off[u + 1]);
  };
  std::vector<std::int64_t> off_a, off_b;
  std::vector<double> va, vb;
  gather(a, na, 3, off_a, va);
  auto order_stat = [&](index_t rank) {
    const size_t u = rank_bucket(rank);
    return va[static_cast<size_t>(off_a[u] + (rank - ca[u]))];
  };
  r.edges.resize(static_cast<size_t>(ne));
  for (index_t q = 0; q < ne; ++q) {
    const auto u = static_cast<size_t>(q);
    const double vlo = order_stat(rlo[u]), vhi = order_stat(rhi[u]);
    r.edges[u] = vlo + (vhi - vlo) * (pos[u] - static_cast<double>(rlo[u]));
  }
  std::sort(r.edges.begin(), r.edges.end());
  r.edges.erase(std::unique(r.edges.begin(), r.edges.end()), r.edges.end());
  // Counts of a below each edge: the edge's bucket is gathered or empty for a, except if
  // rounding put it past the order statistics it interpolates; then count directly.
  r.a_lt.resize(r.edges.size());
  for (size_t q = 0; q < r.edges.size(); ++q) {
    const double e = r.edges[q];
    const size_t u = bucket(e);
    if (na[u] == 0) {
      r.a_lt[q] = ca[u];
    } else if (want[u] & 3) {
      r.a_lt[q] = ca[u] + (std::lower_bound(va.begin() + off_a[u], va.begin() + off_a[u + 1], e) -
                           (va.begin() + off_a[u]));
    } else {
      std::int64_t c = 0;
      for (index_t i = 0; i < a.size; ++i) c += a[i] < e;  // NaN compares false
      r.a_lt[q] = c;
    }
  }
  // Thresholds for b: the edges plus a's min and max (out-of-range share).
  r.thr = r.edges;
  r.thr.push_back(sa.min);
  r.thr.push_back(sa.max);
  std::sort(r.thr.begin(), r.thr.end());
  r.thr.erase(std::unique(r.thr.begin(), r.thr.end()), r.thr.end());
  for (double t : r.thr) want[bucket(t)] |= 4;
  gather(b, nbk, 5, off_b, vb);
  r.b_lt.resize(r.thr.size());
  r.b_le.resize(r.thr.size());
  for (size_t q = 0; q < r.thr.size(); ++q) {
    const double t = r.thr[q];
    const size_t u = bucket(t);
    const auto first = vb.begin() + off_b[u], last = vb.begin() + off_b[u + 1];
    r.b_lt[q] = cb[u] + (std::lower_bound(first, last, t) - first);
    r.b_le[q] = cb[u] + (std::upper_bound(first, last, t) - first);
  }
  // Walk the KS candidate buckets exactly.
  for (size_t u = 0; u < unb; ++u) {
    if (!(want[u] & 1)) continue;
    const double* a0 = va.data() + off_a[u];
    const double* a1 = va.data() + off_a[u + 1];
    const double* b0 = vb.data() + off_b[u];
    const double* b1 = vb.data() + off_b[u + 1];
    std::int64_t i = ca[u], j = cb[u];
    while (a0 < a1 || b0 < b1) {
      const double v = (b0 >= b1 || (a0 < a1 && *a0 <= *b0)) ? *a0 : *b0;
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
