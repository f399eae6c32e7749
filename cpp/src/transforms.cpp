// Fit statistics and the UDF runner (see transforms.hpp).
#include "forgeline/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "forgeline/parallel.hpp"
#include "forgeline/plan.hpp"

namespace forgeline::transforms {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// numpy's pairwise summation (umath loops_utils: blocks of 8 partial sums up to 128 values,
// halving above that), over f(0..n-1). np.sum of a contiguous float64 column is exactly this.
template <class F>
double pairwise_sum(index_t begin, index_t n, const F& f) {
  if (n < 8) {
    double r = 0.0;
    for (index_t i = 0; i < n; ++i) r += f(begin + i);
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = f(begin + j);
    index_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += f(begin + i + j);
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += f(begin + i);
    return res;
  }
  index_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(begin, n2, f) + pairwise_sum(begin + n2, n - n2, f);
}

template <class F>
double column_sum(index_t n, bool pairwise, const F& f) {
  if (pairwise) return pairwise_sum(0, n, f);
  double s = 0.0;
  for (index_t i = 0; i < n; ++i) s += f(i);
  return s;
}

}  // namespace

namespace {

// The statistics of one column (see column_moments).
Moments moments_of(const View1D<const double>& x, bool pairwise, bool sums) {
  Moments m;
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, amx = 0;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) {
      m.n_nan += 1;
      continue;
    }
    m.count += 1;
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    amx = std::max(amx, std::fabs(v));
    if (std::isinf(v)) (v > 0 ? m.n_posinf : m.n_neginf) += 1;
  }
  // NaN counts as 0 in every sum, as np.nansum does (it zero-fills, then sums).
  auto val = [&](index_t i) { const double v = x[i]; return std::isnan(v) ? 0.0 : v; };
  if (sums) m.sum = column_sum(x.size, pairwise, val);
  if (m.count > 0) {
    // sklearn's corrected two-pass variance: T = sum / n, then sum((x-T)^2) - (sum(x-T))^2/n.
    const double t = m.sum / m.count;
    auto dev = [&](index_t i) { const double v = x[i]; return std::isnan(v) ? 0.0 : v - t; };
    auto dev2 = [&](index_t i) {
      const double v = x[i];
      return std::isnan(v) ? 0.0 : (v - t) * (v - t);
    };
    if (sums) {
      const double corr = column_sum(x.size, pairwise, dev);
      const double ss = column_sum(x.size, pairwise, dev2);
      m.m2 = ss - corr * corr / m.count;
    }
    m.min = mn;
    m.max = mx;
    m.absmax = amx;
  } else {
    m.min = m.max = m.absmax = kNaN;
  }
  return m;
}

}  // namespace

void column_moments(const std::vector<View1D<const double>>& cols, Moments* out, int n_threads,
                    bool pairwise, bool sums) {
  const index_t p = static_cast<index_t>(cols.size());
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    for (index_t c = b; c < e; ++c) out[c] = moments_of(cols[static_cast<size_t>(c)], pairwise, sums);
  });
}

namespace {

// Puts the order statistics at the sorted positions [want, want_end) of a[begin, end) in place
// (each a[i] for i in want is what a full sort would put there). Divide and conquer on the
// middle wanted position: O(n log k) for k positions instead of O(n k).
void multi_select(double* a, std::int64_t begin, std::int64_t end, const std::int64_t* want,
                  const std::int64_t* want_end) {
  while (want < want_end) {
    if (want_end - want == 1 || end - begin <= 1) {
      for (const std::int64_t* w = want; w < want_end; ++w) {
        if (*w == begin) {
          std::iter_swap(a + begin, std::min_element(a + begin, a + end));
        } else {
          std::nth_element(a + begin, a + *w, a + end);
        }
        begin = *w + 1;
      }
      return;
    }
    const std::int64_t* mid = want + (want_end - want) / 2;
    std::nth_element(a + begin, a + *mid, a + end);
    multi_select(a, *mid + 1, end, mid + 1, want_end);
    end = *mid;
    want_end = mid;
  }
}

}  // namespace

namespace {

// Order-preserving 64-bit key of a non-NaN double (flip negatives, set the sign bit of the rest).
inline std::uint64_t order_key(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & (std::uint64_t{1} << 63)) ? ~u : (u | (std::uint64_t{1} << 63));
}

constexpr int kBucketBits = 16;
constexpr std::size_t kBuckets = std::size_t{1} << kBucketBits;

inline std::size_t bucket_of(double v) { return static_cast<std::size_t>(order_key(v) >> (64 - kBucketBits)); }

// Pass 1 of the radix select: a histogram of the top key bits of the non-NaN values; returns
// their count. With `m`, the same pass also takes the no-sum statistics of moments_of.
template <bool kStats>
std::int64_t key_histogram(const View1D<const double>& x, std::vector<std::uint32_t>& hist, Moments* m) {
  hist.assign(kBuckets, 0);
  std::int64_t n = 0;
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, amx = 0, nan = 0, pinf = 0, ninf = 0;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) {
      if (kStats) nan += 1;
      continue;
    }
    ++hist[bucket_of(v)];
    ++n;
    if (kStats) {
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      amx = std::max(amx, std::fabs(v));
      if (std::isinf(v)) (v > 0 ? pinf : ninf) += 1;
    }
  }
  if (kStats) {
    *m = Moments{};
    m->count = static_cast<double>(n);
    m->n_nan = nan;
    m->n_posinf = pinf;
    m->n_neginf = ninf;
    if (n > 0) {
      m->min = mn;
      m->max = mx;
      m->absmax = amx;
    } else {
      m->min = m->max = m->absmax = kNaN;
    }
  }
  return n;
}

// Scratch buffers of one worker for the radix select.
struct SelectScratch {
  std::vector<double> gathered, at;
  std::vector<std::uint32_t> hist;
  std::vector<std::int32_t> seg;  // bucket -> segment of `gathered`, -1 if not wanted
  std::vector<std::int64_t> need, seg_start, fill, local;
};

// Pass 2: the order statistics at sorted positions `s.need` (sorted, unique, < the histogram's
// count) into `s.at`. Only the buckets holding a wanted position are gathered, each into its
// own segment, and each segment is selected on its own: the work is the size of those
// buckets, however many positions (bin edges) are wanted.
void select_from_histogram(const View1D<const double>& x, SelectScratch& s) {
  const auto& need = s.need;
  s.seg.assign(kBuckets, -1);
  s.seg_start.clear();
  s.local.resize(need.size());
  std::vector<std::int32_t> seg_of(need.size());
  std::int64_t total = 0;
  {
    std::size_t q = 0;
    std::int64_t below = 0;
    for (std::size_t b = 0; b < kBuckets && q < need.size(); ++b) {
      const std::int64_t c = s.hist[b];
      while (q < need.size() && need[q] < below + c) {
        if (s.seg[b] < 0) {
          s.seg[b] = static_cast<std::int32_t>(s.seg_start.size());
          s.seg_start.push_back(total);
          total += c;
        }
        seg_of[q] = s.seg[b];
        s.local[q] = need[q] - below;
        ++q;
      }
      below += c;
    }
  }
  s.gathered.resize(static_cast<std::size_t>(total));
  s.fill = s.seg_start;
  for (index_t i = 0; i < x.size; ++i) {
    const double v = x[i];
    if (std::isnan(v)) continue;
    const std::int32_t g = s.seg[bucket_of(v)];
    if (g >= 0) s.gathered[static_cast<std::size_t>(s.fill[static_cast<std::size_t>(g)]++)] = v;
  }
  s.at.resize(need.size());
  // Positions of one segment are consecutive in `need` (buckets are visited in key order).
  for (std::size_t q = 0; q < need.size();) {
    std::size_t r = q;
    while (r < need.size() && seg_of[r] == seg_of[q]) ++r;
    const auto g = static_cast<std::size_t>(seg_of[q]);
    const std::int64_t begin = s.seg_start[g];
    const std::int64_t len = (g + 1 < s.seg_start.size() ? s.seg_start[g + 1] : total) - begin;
    double* seg = s.gathered.data() + begin;
    multi_select(seg, 0, len, s.local.data() + q, s.local.data() + r);
    for (std::size_t k = q; k < r; ++k) s.at[k] = seg[s.local[k]];
    q = r;
  }
}

// numpy's _lerp between the order statistics of need positions lo and hi.
inline double lerp_at(double a, double bb, double t) {
  const double diff = bb - a;
  // numpy's _lerp: a + diff*t, replaced by b - diff*(1-t) where t >= 0.5.
  return t >= 0.5 ? bb - diff * (1 - t) : a + diff * t;
}

}  // namespace

namespace {

// Row c of column_quantiles' output for column x.
void quantiles_of(const View1D<const double>& x, index_t c, View2D<const std::int64_t> lo,
                  View2D<const std::int64_t> hi, View2D<const double> gamma, View2D<double> out,
                  SelectScratch& s) {
  const index_t k = lo.cols;
  auto& need = s.need;
  need.clear();
  for (index_t q = 0; q < k; ++q) {
    if (lo(c, q) >= 0) need.push_back(lo(c, q));
    if (hi(c, q) >= 0) need.push_back(hi(c, q));
  }
  std::sort(need.begin(), need.end());
  need.erase(std::unique(need.begin(), need.end()), need.end());
  if (!need.empty()) {
    const std::int64_t n = key_histogram<false>(x, s.hist, nullptr);
    for (std::int64_t idx : need) require(idx < n, "quantile index out of range");
    select_from_histogram(x, s);
  }
  auto value_at = [&](std::int64_t pos) {
    return s.at[static_cast<size_t>(std::lower_bound(need.begin(), need.end(), pos) - need.begin())];
  };
  for (index_t q = 0; q < k; ++q) {
    const std::int64_t l = lo(c, q), h = hi(c, q);
    out(c, q) = (l < 0 || h < 0) ? kNaN : lerp_at(value_at(l), value_at(h), gamma(c, q));
  }
}

// One pass for both the no-sum moments and the histogram, then the two middle order
// statistics: np.ma.median's (a + b) / 2 (NaN without values).
double median_of(const View1D<const double>& x, Moments* m, SelectScratch& s) {
  const std::int64_t n = key_histogram<true>(x, s.hist, m);
  if (n == 0) return kNaN;
  s.need.assign({(n - 1) / 2, n / 2});
  s.need.erase(std::unique(s.need.begin(), s.need.end()), s.need.end());
  select_from_histogram(x, s);
  // through numpy's lerp at t = 0 as the quantile path computes it (it maps -0.0 to 0.0)
  return (lerp_at(s.at.front(), s.at.front(), 0.0) + lerp_at(s.at.back(), s.at.back(), 0.0)) / 2.0;
}

// The register of group g over all rows, as the plan executor computes it tile by tile.
void program_column(const plan::Program& p, const plan::Inputs& in, std::size_t g,
                    std::vector<double>& buf) {
  buf.resize(static_cast<std::size_t>(in.n_rows));
  for (index_t t0 = 0; t0 < in.n_rows; t0 += plan::kGroupTile)
    plan::group_values(p, in, g, t0, std::min(plan::kGroupTile, in.n_rows - t0), buf.data() + t0);
}

void check_groups(const plan::Program& p, const std::vector<std::int32_t>& groups) {
  for (std::int32_t g : groups) {
    require(g >= 0 && static_cast<std::size_t>(g) < p.src.size(), "fit: group out of range");
    const auto kind = static_cast<plan::Source>(p.src_kind[static_cast<std::size_t>(g)]);
    require(kind != plan::Source::Udf && kind != plan::Source::Product,
            "fit: a register group has no column of its own");
  }
}

}  // namespace

void column_quantiles(const std::vector<View1D<const double>>& cols, View2D<const std::int64_t> lo,
                      View2D<const std::int64_t> hi, View2D<const double> gamma, View2D<double> out,
                      int n_threads) {
  const index_t p = static_cast<index_t>(cols.size());
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    SelectScratch s;
    for (index_t c = b; c < e; ++c) quantiles_of(cols[static_cast<size_t>(c)], c, lo, hi, gamma, out, s);
  });
}

void column_medians(const std::vector<View1D<const double>>& cols, Moments* m, double* med,
                    int n_threads) {
  const index_t p = static_cast<index_t>(cols.size());
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    SelectScratch s;
    for (index_t c = b; c < e; ++c) med[c] = median_of(cols[static_cast<size_t>(c)], m + c, s);
  });
}

void program_moments(const plan::Program& p, const plan::Inputs& in,
                     const std::vector<std::int32_t>& groups, Moments* out, int n_threads,
                     bool pairwise, bool sums) {
  check_groups(p, groups);
  const index_t ng = static_cast<index_t>(groups.size());
  parallel_for(ng, n_threads, 1, [&](index_t b, index_t e, index_t) {
    std::vector<double> buf;
    for (index_t c = b; c < e; ++c) {
      program_column(p, in, static_cast<std::size_t>(groups[static_cast<std::size_t>(c)]), buf);
      out[c] = moments_of(View1D<const double>{buf.data(), in.n_rows, 1}, pairwise, sums);
    }
  });
}

void program_quantiles(const plan::Program& p, const plan::Inputs& in,
                       const std::vector<std::int32_t>& groups, View2D<const std::int64_t> lo,
                       View2D<const std::int64_t> hi, View2D<const double> gamma,
                       View2D<double> out, int n_threads) {
  check_groups(p, groups);
  const index_t ng = static_cast<index_t>(groups.size());
  parallel_for(ng, n_threads, 1, [&](index_t b, index_t e, index_t) {
    std::vector<double> buf;
    SelectScratch s;
    for (index_t c = b; c < e; ++c) {
      program_column(p, in, static_cast<std::size_t>(groups[static_cast<std::size_t>(c)]), buf);
      quantiles_of(View1D<const double>{buf.data(), in.n_rows, 1}, c, lo, hi, gamma, out, s);
    }
  });
}

void column_mode(const std::vector<View1D<const double>>& cols, double* value, double* count,
                 int n_threads) {
  const index_t p = static_cast<index_t>(cols.size());
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    std::vector<double> buf;
    for (index_t c = b; c < e; ++c) {
      const auto& x = cols[static_cast<size_t>(c)];
      buf.clear();
      for (index_t i = 0; i < x.size; ++i)
        if (!std::isnan(x[i])) buf.push_back(x[i]);
      std::sort(buf.begin(), buf.end());
      double best = kNaN, best_n = 0;
      size_t i = 0;
      while (i < buf.size()) {
        size_t j = i + 1;
        while (j < buf.size() && buf[j] == buf[i]) ++j;
        const double run = static_cast<double>(j - i);
        if (run > best_n) {  // strict: the first (smallest) value wins ties
          best_n = run;
          best = buf[i];
        }
        i = j;
      }
      value[c] = best;
      count[c] = best_n;
    }
  });
}

int kmeans_1d(View1D<const double> x, std::vector<double>& centers, int max_iter, double tol) {
  // Lloyd iterations as sklearn's _kmeans_single_lloyd runs them: assign each point to the
  // nearest center (first center on ties), move centers to the mean of their points (an empty
  // cluster keeps its center), stop when labels no longer change ("strict convergence") or
  // the squared center shift is <= tol.
  const size_t k = centers.size();
  const index_t n = x.size;
  std::vector<std::int32_t> labels(static_cast<size_t>(n), -1), old(static_cast<size_t>(n), -1);
  std::vector<double> sums(k), counts(k), next(k);
  auto assign = [&](const std::vector<double>& cs, std::vector<std::int32_t>& lab) {
    for (index_t i = 0; i < n; ++i) {
      const double v = x[i];
      std::int32_t best = 0;
      double bd = (v - cs[0]) * (v - cs[0]);
      for (size_t j = 1; j < k; ++j) {
        const double d = (v - cs[j]) * (v - cs[j]);
        if (d < bd) {
          bd = d;
          best = static_cast<std::int32_t>(j);
        }
      }
      lab[static_cast<size_t>(i)] = best;
    }
  };
  int it = 0;
  bool strict = false;
  for (; it < max_iter; ++it) {
    assign(centers, labels);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0.0);
    for (index_t i = 0; i < n; ++i) {
      sums[static_cast<size_t>(labels[static_cast<size_t>(i)])] += x[i];
      counts[static_cast<size_t>(labels[static_cast<size_t>(i)])] += 1;
    }
    double shift = 0;
    for (size_t j = 0; j < k; ++j) {
      next[j] = counts[j] > 0 ? sums[j] / counts[j] : centers[j];
      shift += (next[j] - centers[j]) * (next[j] - centers[j]);
    }
    std::swap(centers, next);
    if (labels == old) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    old = labels;
  }
  (void)strict;
  return it + 1;
}

namespace {
constexpr index_t kBlock = 256;
}  // namespace

void run_udf(const std::vector<View1D<const double>>& cols, UdfBlock fn, double* out, index_t n,
             int n_threads) {
  const index_t k = static_cast<index_t>(cols.size());
  parallel_for(n, n_threads, kBlock, [&](index_t b, index_t e, index_t) {
    const index_t m = e - b;
    std::vector<double> block(static_cast<size_t>(m * std::max<index_t>(k, 1)));
    for (index_t c = 0; c < k; ++c)
      for (index_t i = 0; i < m; ++i) block[static_cast<size_t>(c * m + i)] = cols[static_cast<size_t>(c)][b + i];
    if (fn(block.data(), m, k, out + b) != 1) throw std::domain_error("udf raised an exception");
  });
}

}  // namespace forgeline::transforms
