#include "forgeline/drift.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "forgeline/parallel.hpp"

namespace forgeline::drift {

namespace {

constexpr int kRadixBits = 11;
constexpr int kRadixPasses = 6;  // 66 bits >= 64
constexpr std::uint64_t kRadixMask = (1u << kRadixBits) - 1;
constexpr std::uint64_t kSign = std::uint64_t{1} << 63;

// Order-preserving map from IEEE doubles to unsigned integers: negative numbers have all
// bits flipped, non-negative ones only the sign bit.
inline std::uint64_t to_key(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & kSign) ? ~u : (u | kSign);
}

inline double from_key(std::uint64_t u) {
  u = (u & kSign) ? (u & ~kSign) : ~u;
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// Neumaier-compensated running sum: the statistics below sum many terms whose exact value
// must not depend on the order of a long loop.
struct KahanSum {
  double s = 0.0, c = 0.0;
  void add(double x) {
    const double t = s + x;
    c += (std::fabs(s) >= std::fabs(x)) ? (s - t) + x : (x - t) + s;
    s = t;
  }
  double value() const { return s + c; }
};

// Fixed 4-lane summation: deterministic, vectorisable and accurate enough for profile
// moments (exact-mode tests compute their moments from the raw column instead).
double lane_sum(const double* v, index_t n) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  index_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) s[l] += v[i + l];
  for (; i < n; ++i) s[0] += v[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

double lane_sq_dev(const double* v, index_t n, double mean, double* dev_sum) {
  double s[4] = {0.0, 0.0, 0.0, 0.0}, d[4] = {0.0, 0.0, 0.0, 0.0};
  index_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) {
      const double x = v[i + l] - mean;
      s[l] += x * x;
      d[l] += x;
    }
  for (; i < n; ++i) {
    const double x = v[i] - mean;
    s[0] += x * x;
    d[0] += x;
  }
  *dev_sum = (d[0] + d[1]) + (d[2] + d[3]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

void finish_stats(const double* v, index_t n, ColumnStats& st, bool moments) {
  st.n_valid = n;
  if (n == 0) {
    st.min = st.max = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  st.min = v[0];
  st.max = v[n - 1];
  index_t lo = 0, hi = n;
  while (lo < hi && std::isinf(v[lo])) ++lo;
  while (hi > lo && std::isinf(v[hi - 1])) --hi;
  st.n_inf = n - (hi - lo);
  st.n_finite = hi - lo;
  if (st.n_finite == 0 || !moments) return;
  const double nf = static_cast<double>(st.n_finite);
  const double mean = lane_sum(v + lo, st.n_finite) / nf;
  double dev = 0.0;
  const double m2 = lane_sq_dev(v + lo, st.n_finite, mean, &dev);
  // The correction term removes the rounding error of the mean (two-pass algorithm).
  st.mean = mean;
  st.m2 = std::max(0.0, m2 - dev * dev / nf);
}

}  // namespace

index_t sort_valid(View1D<const double> x, double* out, ColumnStats& st, bool moments) {
  st = ColumnStats{};
  const index_t n = x.size;
  index_t m = 0;
  index_t zeros = 0;
  if (n < 512) {
    for (index_t i = 0; i < n; ++i) {
      const double v = x[i];
      if (std::isnan(v)) continue;
      zeros += (v == 0.0);
      out[m++] = v;
    }
    std::sort(out, out + m);
  } else {
    // Scratch reused across calls on the same thread: fresh multi-megabyte buffers would cost
    // a page fault per 4 KB on every column.
    thread_local std::vector<std::uint64_t> keys, tmp;
    if (keys.size() < static_cast<size_t>(n)) {
      keys.resize(static_cast<size_t>(n));
      tmp.resize(static_cast<size_t>(n));
    }
    std::vector<index_t> hist(static_cast<size_t>(kRadixPasses) << kRadixBits, 0);
    for (index_t i = 0; i < n; ++i) {
      const double v = x[i];
      if (std::isnan(v)) continue;
      zeros += (v == 0.0);
      const std::uint64_t k = to_key(v);
      keys[static_cast<size_t>(m++)] = k;
      for (int p = 0; p < kRadixPasses; ++p)
        ++hist[(static_cast<size_t>(p) << kRadixBits) + ((k >> (p * kRadixBits)) & kRadixMask)];
    }
    std::uint64_t* src = keys.data();
    std::uint64_t* dst = tmp.data();
    for (int p = 0; p < kRadixPasses; ++p) {
      index_t* h = hist.data() + (static_cast<size_t>(p) << kRadixBits);
      const std::uint64_t first = src[0];
      // A pass where every key has the same digit would only copy; skip it.
      if (m == 0 || h[(first >> (p * kRadixBits)) & kRadixMask] == m) continue;
      index_t sum = 0;
      for (size_t b = 0; b <= kRadixMask; ++b) {
        const index_t c = h[b];
        h[b] = sum;
        sum += c;
      }
      for (index_t i = 0; i < m; ++i) {
        const std::uint64_t k = src[i];
        dst[h[(k >> (p * kRadixBits)) & kRadixMask]++] = k;
      }
      std::swap(src, dst);
    }
    for (index_t i = 0; i < m; ++i) out[i] = from_key(src[i]);
  }
  st.n_missing = n - m;
  st.n_zero = zeros;
  finish_stats(out, m, st, moments);
  return m;
}

void sort_valid_many(const std::vector<View1D<const double>>& cols, const std::vector<double*>& out,
                     std::vector<ColumnStats>& stats, int n_threads, bool moments) {
  const index_t k = static_cast<index_t>(cols.size());
  stats.assign(cols.size(), ColumnStats{});
  // One column per chunk: columns are independent, so the result cannot depend on threads.
  parallel_for(k, n_threads, 1, [&](index_t b, index_t e, index_t) {
    for (index_t j = b; j < e; ++j)
      sort_valid(cols[static_cast<size_t>(j)], out[static_cast<size_t>(j)], stats[static_cast<size_t>(j)],
                 moments);
  });
}

KSResult ks_sorted(View1D<const double> a, View1D<const double> b) {
  KSResult r;
  const index_t n1 = a.size, n2 = b.size;
  require(n1 > 0 && n2 > 0, "ks_sorted: empty sample");
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  double best_max = -std::numeric_limits<double>::infinity();
  double best_min = std::numeric_limits<double>::infinity();
  index_t i = 0, j = 0;
  // Merge walk written so that the choice of the next value compiles to conditional moves:
  // with interleaved samples an if/else here mispredicts about half the time.
  auto visit = [&](double v) {
    // Same expression as scipy: searchsorted(..., 'right') / n for each sample.
    const double diff = static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
    if (diff > best_max) { best_max = diff; r.loc_plus = v; }
    if (diff < best_min) { best_min = diff; r.loc_minus = v; }
  };
  while (i < n1 && j < n2) {
    const double av = a[i], bv = b[j];
    const double v = av < bv ? av : bv;
    i += (av == v);
    j += (bv == v);
    const bool more = (i < n1 && a[i] == v) || (j < n2 && b[j] == v);
    if (FL_LIKELY(!more)) visit(v);
  }
  while (i < n1) {
    const double v = a[i];
    while (i < n1 && a[i] == v) ++i;
    visit(v);
  }
  while (j < n2) {
    const double v = b[j];
    while (j < n2 && b[j] == v) ++j;
    visit(v);
  }
  r.max_plus = best_max;
  r.max_minus = std::min(std::max(-best_min, 0.0), 1.0);
  return r;
}

double ks_prob_outside_square(index_t n, index_t h) {
  require(n > 0 && h > 0 && h <= n, "ks_prob_outside_square: need 0 < h <= n");
  // P = 2 * A0 * (1 - A1 * (1 - A2 * (...))), evaluated from the innermost term outwards,
  // which avoids the subtractive cancellation of the alternating binomial sum.
  double p = 0.0;
  for (index_t k = n / h; k >= 0; --k) {
    double p1 = 1.0;
    for (index_t j = 0; j < h; ++j)
      p1 = static_cast<double>(n - k * h - j) * p1 / static_cast<double>(n + k * h + j + 1);
    p = p1 * (1.0 - p);
  }
  return 2.0 * p;
}

double ks_outer_prob_inside(index_t m, index_t n, index_t g, index_t h) {
  if (m < n) std::swap(m, n);
  const index_t mg = m / g, ng = n / g;
  const double dmg = static_cast<double>(mg);
  // Column of the lattice holds, for each y in a sliding window, the probability that a path
  // to (x, y) has already left the band |x/m - y/n| < h/lcm. Outside the window it is 1
  // (above or below the band: already left).
  index_t minj = 0;
  index_t maxj = std::min<index_t>(static_cast<index_t>(std::ceil(static_cast<double>(h) / dmg)), n + 1);
  index_t curlen = maxj - minj;
  const index_t len_a = std::min<index_t>(2 * maxj + 2, n + 1);
  std::vector<double> A(static_cast<size_t>(std::max<index_t>(len_a, 1)), 1.0);
  for (index_t j = minj; j < maxj; ++j) A[static_cast<size_t>(j)] = 0.0;
  for (index_t i = 1; i <= m; ++i) {
    const index_t lastminj = minj, lastlen = curlen;
    minj = std::max<index_t>(
        static_cast<index_t>(std::floor(static_cast<double>(ng * i - h) / dmg)) + 1, 0);
    minj = std::min(minj, n);
    maxj = std::min<index_t>(
        static_cast<index_t>(std::ceil(static_cast<double>(ng * i + h) / dmg)), n + 1);
    if (maxj <= minj) return 1.0;
    double val = (minj == 0) ? 0.0 : 1.0;
    const double di = static_cast<double>(i);
    for (index_t jj = 0; jj < maxj - minj; ++jj) {
      const index_t j = jj + minj;
      const double dj = static_cast<double>(j);
      val = (A[static_cast<size_t>(jj + minj - lastminj)] * di + val * dj) / (di + dj);
      A[static_cast<size_t>(jj)] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen)
      for (index_t t = maxj - minj; t < maxj - minj + (lastlen - curlen); ++t)
        if (t < static_cast<index_t>(A.size())) A[static_cast<size_t>(t)] = 1.0;
  }
  return A[static_cast<size_t>(maxj - minj - 1)];
}

double smirnov_sf(index_t n, double x) {
  require(n > 0, "smirnov_sf: n must be positive");
  if (std::isnan(x)) return x;
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  // Birnbaum-Tingey: x * sum_j C(n,j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j), j < n(1-x).
  // All terms are positive and rise to a single peak in j, then fall. Only the terms within
  // e^-60 of the peak matter (the rest add < 1e-20 relative), so the peak is located by a
  // ternary search on the log-term, the significant range by binary searches, and that
  // range is summed in fixed chunks (deterministic for any thread count).
  const double N = static_cast<double>(n), NX = N * x;
  const double log_x = std::log(x);
  const long double lgn = std::lgamma(static_cast<long double>(N) + 1.0L);
  index_t jmax = static_cast<index_t>(std::floor(N - NX));
  while (jmax >= 0 && N - NX - static_cast<double>(jmax) <= 0.0) --jmax;
  if (jmax < 0) return 0.0;
  auto lcomb = [&](index_t j) {
    const long double J = static_cast<long double>(j);
    return lgn - std::lgamma(J + 1.0L) - std::lgamma(static_cast<long double>(N) - J + 1.0L);
  };
  auto logterm = [&](index_t j, long double lc) {
    const double J = static_cast<double>(j);
    return static_cast<double>(lc) + (J - 1.0) * std::log((NX + J) / N) +
           (N - J) * std::log((N - NX - J) / N) + log_x;
  };
  auto lt_at = [&](index_t j) { return logterm(j, lcomb(j)); };
  index_t lo = 0, hi = jmax;
  while (hi - lo > 2) {
    const index_t m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;
    if (lt_at(m1) < lt_at(m2)) lo = m1 + 1; else hi = m2 - 1;
  }
  index_t peak = lo;
  for (index_t j = lo + 1; j <= hi; ++j) if (lt_at(j) > lt_at(peak)) peak = j;
  const double floor_lt = lt_at(peak) - 60.0;
  index_t a = 0, b = peak;  // first j in [0, peak] with logterm >= floor
  while (a < b) {
    const index_t m = a + (b - a) / 2;
    if (lt_at(m) >= floor_lt) b = m; else a = m + 1;
  }
  const index_t first = a;
  a = peak; b = jmax;  // last j in [peak, jmax] with logterm >= floor
  while (a < b) {
    const index_t m = a + (b - a + 1) / 2;
    if (lt_at(m) >= floor_lt) a = m; else b = m - 1;
  }
  const index_t last = a;
  const index_t count = last - first + 1;
  // Long sums: the terms, continued to real j, form a smooth bump that is negligible
  // (< e^-60 of the peak) at both ends of [first, last] and analytic far around it (the
  // nearest singularities are the lgamma poles at j = -1 and n + 1 and the log branch
  // points at j = -nx and n - nx). For such a function the sum over integers and the
  // trapezoid sum with any step h both equal the integral up to about exp(-2 pi d / h),
  // d the distance to the nearest singularity (Poisson summation), so sampling every h-th
  // term with h <= d / 16 keeps the relative error far below 1e-20. The step-2h sum is
  // checked against the step-h sum; any disagreement beyond 1e-13 falls back to the
  // exact term-by-term sum.
  if (count >= 16384) {
    const double room = std::min(static_cast<double>(first) + std::min(1.0, NX),
                                 (N - NX) - static_cast<double>(last)) / 16.0;
    index_t h = 1;
    while (static_cast<double>(2 * h) <= room && h < 256 && count / (2 * h) >= 1024) h *= 2;
    if (h >= 4) {
      // log-term by Stirling's series around n, j and n - j (all >= 16 h >= 64 here), so
      // the O(n) parts cancel analytically and only O(nx)-sized terms meet in double.
      auto corr = [](double z) {
        const double r = 1.0 / z, r2 = r * r;
        return r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 / 1680.0)));
      };
      const double cn = corr(N) + log_x;
      constexpr double kLog2Pi = 1.8378770664093454836;
      auto term = [&](double J) {
        const double M = N - J;
        const double lt = J * std::log1p(NX / J) + M * std::log1p(-NX / M) -
                          std::log((NX + J) / N) + 0.5 * (std::log(N / (J * M)) - kLog2Pi) + cn -
                          corr(J) - corr(M);
        return std::exp(lt);
      };
      long double s_all = 0.0L, s_even = 0.0L;
      const index_t steps = (last - first) / h;
      for (index_t m = 0; m <= steps; ++m) {
        const long double v = term(static_cast<double>(first + m * h));
        s_all += v;
        if ((m & 1) == 0) s_even += v;
      }
      const long double hs = static_cast<long double>(h) * s_all;
      const long double h2 = static_cast<long double>(2 * h) * s_even;
      if (hs > 0.0L && std::fabs(static_cast<double>(hs - h2)) <= 1e-13 * static_cast<double>(hs))
        return std::min(1.0, std::max(0.0, static_cast<double>(hs)));
    }
  }
  // Each chunk restarts log C(n, j) from lgamma in long double (lgamma of ~1e6 needs the
  // extra digits) and then updates it in double: over 4096 steps the drift stays ~1e-12.
  constexpr index_t kGrain = 4096;
  std::vector<long double> partial(static_cast<size_t>(num_chunks(count, kGrain)), 0.0L);
  parallel_for(count, 0, kGrain, [&](index_t cb, index_t ce, index_t chunk) {
    double lc = static_cast<double>(lcomb(first + cb));
    double sum = 0.0;
    for (index_t t = cb; t < ce; ++t) {
      const index_t j = first + t;
      sum += std::exp(logterm(j, lc));
      const double J = static_cast<double>(j);
      lc += std::log((N - J) / (J + 1.0));
    }
    partial[static_cast<size_t>(chunk)] = sum;
  });
  long double total = 0.0L;
  for (long double v : partial) total += v;
  const double p = static_cast<double>(total);
  return std::min(1.0, std::max(0.0, p));
}

// Walks the distinct values of two sorted, NaN-free samples in increasing order: for each
// value v, fn(v, i0, i1, j0, j1) gets the index ranges [i0, i1) of a and [j0, j1) of b that
// equal v. Shared by the CDF distances, Cramer-von Mises and Anderson-Darling kernels.
template <class F>
void for_each_tie(View1D<const double> a, View1D<const double> b, F&& fn) {
  const index_t n1 = a.size, n2 = b.size;
  index_t i = 0, j = 0;
  while (i < n1 || j < n2) {
    const double v = (j >= n2 || (i < n1 && a[i] <= b[j])) ? a[i] : b[j];
    const index_t i0 = i, j0 = j;
    while (i < n1 && a[i] == v) ++i;
    while (j < n2 && b[j] == v) ++j;
    fn(v, i0, i, j0, j);
  }
}

CdfDistances cdf_distances(View1D<const double> a, View1D<const double> b) {
  CdfDistances r;
  const index_t n1 = a.size, n2 = b.size;
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  KahanSum s1, s2;
  for_each_tie(a, b, [&](double v, index_t, index_t i, index_t, index_t j) {
    if (i >= n1 && j >= n2) return;  // the last value: no interval after it
    const double next = (j >= n2 || (i < n1 && a[i] <= b[j])) ? a[i] : b[j];
    const double diff = static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
    const double delta = next - v;
    s1.add(std::fabs(diff) * delta);
    s2.add(diff * diff * delta);
  });
  r.l1 = s1.value();
  r.l2sq = s2.value();
  return r;
}

double cvm_u(View1D<const double> a, View1D<const double> b) {
  const index_t n1 = a.size, n2 = b.size;
  KahanSum sa, sb;
  for_each_tie(a, b, [&](double, index_t i0, index_t i, index_t j0, index_t j) {
    const index_t before = i0 + j0, ties = (i - i0) + (j - j0);
    const double rank = static_cast<double>(before) + static_cast<double>(ties + 1) / 2.0;
    for (index_t t = i0; t < i; ++t) {
      const double d = rank - static_cast<double>(t + 1);
      sa.add(d * d);
    }
    for (index_t t = j0; t < j; ++t) {
      const double d = rank - static_cast<double>(t + 1);
      sb.add(d * d);
    }
  });
  return static_cast<double>(n1) * sa.value() + static_cast<double>(n2) * sb.value();
}

double ad_midrank_a2akn(View1D<const double> a, View1D<const double> b) {
  const index_t n1 = a.size, n2 = b.size, N = n1 + n2;
  const double dN = static_cast<double>(N), dn1 = static_cast<double>(n1), dn2 = static_cast<double>(n2);
  KahanSum s1, s2;
  for_each_tie(a, b, [&](double, index_t i0, index_t i, index_t j0, index_t j) {
    const double lj = static_cast<double>((i - i0) + (j - j0));
    const double bj = static_cast<double>(i0 + j0) + lj / 2.0;
    const double denom = bj * (dN - bj) - dN * lj / 4.0;
    const double m1 = static_cast<double>(i) - static_cast<double>(i - i0) / 2.0;
    const double m2 = static_cast<double>(j) - static_cast<double>(j - j0) / 2.0;
    const double t1 = dN * m1 - bj * dn1, t2 = dN * m2 - bj * dn2;
    s1.add(lj / dN * t1 * t1 / denom);
    s2.add(lj / dN * t2 * t2 / denom);
  });
  double out = 0.0;
  out += s1.value() / dn1;
  out += s2.value() / dn2;
  out *= (dN - 1.0) / dN;
  return out;
}

}  // namespace forgeline::drift
