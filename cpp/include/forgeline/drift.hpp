// Drift statistics kernels: sorting, per-column moments and two-sample statistics on sorted
// arrays. Pure C++: never include pybind11 here.
//
// Every two-sample routine takes two ascending arrays without NaN and reproduces the
// floating-point formula scipy uses for the same statistic, so that results agree to
// rounding (the drift exactness contract is rtol 1e-9).
#pragma once
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::drift {

// Moments of one column; NaN counts as missing, +-inf are values (they sort to the ends).
struct ColumnStats {
  index_t n_valid = 0;
  index_t n_missing = 0;
  index_t n_zero = 0;
  index_t n_inf = 0;
  double min = 0.0;  // NaN when n_valid == 0
  double max = 0.0;
  double mean = 0.0;  // of the finite values
  double m2 = 0.0;    // sum of squared deviations from mean, finite values only
  index_t n_finite = 0;
};

// Copies the non-NaN values of x into out (which must hold x.size values), sorts them
// ascending (LSD radix sort on the IEEE bit pattern; -0.0 sorts before +0.0, which compares
// equal in every statistic) and returns the number written. Also fills stats.
index_t sort_valid(View1D<const double> x, double* out, ColumnStats& stats, bool moments = true);

// Sorts and summarises many columns in parallel (one column per task). out[j] must hold
// cols[j].size values; stats[j].n_valid receives the count written.
void sort_valid_many(const std::vector<View1D<const double>>& cols, const std::vector<double*>& out,
                     std::vector<ColumnStats>& stats, int n_threads, bool moments = true);

// Two-sample Kolmogorov-Smirnov statistic as scipy.stats.ks_2samp computes it: the
// difference of right-continuous ECDFs i/n1 - j/n2 at every pooled value. Returns
// max_plus = max(cdf1 - cdf2) and max_minus = max(cdf2 - cdf1), both clipped at 0, and the
// value where each is reached (first occurrence in pooled sorted order).
struct KSResult {
  double max_plus = 0.0, max_minus = 0.0, loc_plus = 0.0, loc_minus = 0.0;
};
KSResult ks_sorted(View1D<const double> a, View1D<const double> b);

// Pr(D_{n,n} >= h/n) for equal sample sizes (two-sided), scipy's Horner-like recursion.
double ks_prob_outside_square(index_t n, index_t h);
// Pr(D_{m,n} >= h/lcm) for unequal sizes (two-sided), the "inside method" computing 1-p
// directly with a sliding window column (Hodges; Viehmann 2021).
double ks_outer_prob_inside(index_t m, index_t n, index_t g, index_t h);
// Smirnov one-sided survival function Pr(D_n^+ >= x), exact Birnbaum-Tingey sum in long
// double (all terms positive, so no cancellation).
double smirnov_sf(index_t n, double x);

// Sums over the pooled sorted values used by scipy's _cdf_distance (p = 1 and p = 2):
// l1 = sum |F_a - F_b| * delta, l2sq = sum (F_a - F_b)^2 * delta.
struct CdfDistances {
  double l1 = 0.0, l2sq = 0.0;
};
CdfDistances cdf_distances(View1D<const double> a, View1D<const double> b);

// Cramer-von Mises two-sample U with mid-ranks (scipy.stats.cramervonmises_2samp).
double cvm_u(View1D<const double> a, View1D<const double> b);

// Anderson-Darling k-sample (k = 2) A2akN with mid-ranks (Scholz & Stephens eq. 7), the
// unnormalised statistic of scipy.stats.anderson_ksamp(variant="midrank").
double ad_midrank_a2akn(View1D<const double> a, View1D<const double> b);

// Rank probe of one unsorted column against K ascending thresholds t (no NaN among them):
// lt[i] = #values < t[i], le[i] = #values <= t[i], in one pass without sorting (a lookup
// table over the threshold range narrows each search to a few comparisons). Moments are
// accumulated about `shift` (e.g. the reference mean) to limit cancellation.
struct ProbeStats {
  index_t n_valid = 0, n_missing = 0, n_finite = 0;
  double min = 0.0, max = 0.0, sum = 0.0, sumsq = 0.0;  // sums of (x - shift), finite x
};
void probe_counts(View1D<const double> x, const double* t, index_t k, double shift,
                  std::int64_t* lt, std::int64_t* le, ProbeStats& st);

// Exact two-sample KS statistic (same values as ks_sorted) without sorting either sample,
// fused with a's quantile-bin histogram: both samples are counted into value-range
// buckets, the ECDF difference is exact at bucket ends, and only the buckets that could
// hold the maximum, a wanted order statistic of a, or a threshold of b are gathered and
// sorted. Also returns a's interior quantile edges at k / n_bins (numpy's linear rule,
// duplicates dropped, as quantile_edges() in Python), a_lt = #a < edge, and b's counts
// b_lt / b_le (< and <=) at thr = sorted unique(edges, min a, max a). ok = false (nothing
// computed) when a sample is empty, holds +-inf, or both hold one single value.
struct KSUnsorted {
  bool ok = false;
  double max_plus = 0.0, max_minus = 0.0;
  index_t n1 = 0, n1_missing = 0, n2 = 0, n2_missing = 0;
  double min1 = 0.0, max1 = 0.0, min2 = 0.0, max2 = 0.0;
  std::vector<double> edges, thr;
  std::vector<std::int64_t> a_lt, b_lt, b_le;
};
KSUnsorted ks_unsorted(View1D<const double> a, View1D<const double> b, index_t n_bins);

}  // namespace forgeline::drift
