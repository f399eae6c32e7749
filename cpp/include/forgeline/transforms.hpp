// Column kernels behind forgeline.transforms: fit statistics and the UDF runner (transforms
// themselves execute as forgeline::plan programs, see plan.hpp).
// Pure C++: never include pybind11 here.
#pragma once
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::plan {
struct Program;
struct Inputs;
}  // namespace forgeline::plan

namespace forgeline::transforms {

// Per-column fit statistics. Sums follow numpy's order so that means and variances are
// bit-identical to scikit-learn's (`_incremental_mean_and_var`, np.ma.mean): `pairwise`
// reproduces np.sum over a contiguous column (what numpy does for F-ordered data); otherwise
// values are added in row order (numpy's axis-0 reduction of a C-ordered matrix).
struct Moments {
  double count = 0;     // non-NaN values
  double sum = 0;       // of non-NaN values
  double m2 = 0;        // corrected two-pass sum of squared deviations (Chan, Golub, LeVeque)
  double min = 0;       // NaN when count == 0
  double max = 0;
  double absmax = 0;
  double n_nan = 0;
  double n_posinf = 0;
  double n_neginf = 0;
};
constexpr int kMomentFields = 9;

// With `sums` false only the counts, min/max/absmax are computed (sum and m2 stay 0): what
// callers that need no mean (a median imputer) pay for.
void column_moments(const std::vector<View1D<const double>>& cols, Moments* out, int n_threads,
                    bool pairwise, bool sums = true);

// Order statistics of the non-NaN values of each column. For column c and slot q it returns
// numpy's interpolation between the lo[c,q]-th and hi[c,q]-th smallest values with weight
// gamma[c,q] (numpy's `_lerp`, including its t >= 0.5 branch). Indices of -1 mark "no value"
// (a column without any non-NaN value) and give NaN.
void column_quantiles(const std::vector<View1D<const double>>& cols, View2D<const std::int64_t> lo,
                      View2D<const std::int64_t> hi, View2D<const double> gamma, View2D<double> out,
                      int n_threads);

// column_moments(sums=false) and np.ma.median of each column in one data pass plus a gather
// of the (one or two) histogram buckets holding the middle: what a median imputer needs.
void column_medians(const std::vector<View1D<const double>>& cols, Moments* m, double* median,
                    int n_threads);

// The same statistics of program outputs, without materialising them: for each listed group
// g (a column group, not a udf/product register) the register the plan executor would emit
// is built over all rows into a per-worker buffer, and its statistics taken from there. So a
// fit of StandardScaler after SimpleImputer -> Log1p sees exactly the values transform()
// would have written, with no (rows x columns) intermediate. Row c of the output belongs to
// groups[c]. A check op that fires throws as plan::run does.
void program_moments(const plan::Program& p, const plan::Inputs& in,
                     const std::vector<std::int32_t>& groups, Moments* out, int n_threads,
                     bool pairwise, bool sums = true);
void program_quantiles(const plan::Program& p, const plan::Inputs& in,
                       const std::vector<std::int32_t>& groups, View2D<const std::int64_t> lo,
                       View2D<const std::int64_t> hi, View2D<const double> gamma,
                       View2D<double> out, int n_threads);

// Most frequent non-NaN value per column (the smallest among ties, as scipy/sklearn's mode),
// and its count. NaN / 0 for an all-NaN column.
void column_mode(const std::vector<View1D<const double>>& cols, double* value, double* count,
                 int n_threads);

// 1-D Lloyd k-means as scikit-learn's KMeans(init=centers, n_init=1) runs it on one column:
// returns the final centers in `centers` (in place) and the iteration count.
int kmeans_1d(View1D<const double> x, std::vector<double>& centers, int max_iter, double tol);

// A user-defined function compiled by Numba (`forgeline.transforms.udf`), called by address:
// fn(in, m, k, out) reads a column-major block of m rows x k input columns, writes m values
// and returns 1 (anything else means the function raised; run_udf then throws).
using UdfBlock = std::int64_t (*)(const double* in, std::int64_t m, std::int64_t k, double* out);

// Runs `fn` over all rows in fixed row blocks (parallel); `out` has n contiguous values.
void run_udf(const std::vector<View1D<const double>>& cols, UdfBlock fn, double* out, index_t n,
             int n_threads);

}  // namespace forgeline::transforms
