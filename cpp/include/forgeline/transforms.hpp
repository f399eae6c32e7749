// Column kernels behind forgeline.transforms: fit statistics and the fused transform program.
// Pure C++: never include pybind11 here.
#pragma once
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

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

void column_moments(const std::vector<View1D<const double>>& cols, Moments* out, int n_threads,
                    bool pairwise);

// Order statistics of the non-NaN values of each column. For column c and slot q it returns
// numpy's interpolation between the lo[c,q]-th and hi[c,q]-th smallest values with weight
// gamma[c,q] (numpy's `_lerp`, including its t >= 0.5 branch). Indices of -1 mark "no value"
// (a column without any non-NaN value) and give NaN.
void column_quantiles(const std::vector<View1D<const double>>& cols, View2D<const std::int64_t> lo,
                      View2D<const std::int64_t> hi, View2D<const double> gamma, View2D<double> out,
                      int n_threads);

// Most frequent non-NaN value per column (the smallest among ties, as scipy/sklearn's mode),
// and its count. NaN / 0 for an all-NaN column.
void column_mode(const std::vector<View1D<const double>>& cols, double* value, double* count,
                 int n_threads);

// 1-D Lloyd k-means as scikit-learn's KMeans(init=centers, n_init=1) runs it on one column:
// returns the final centers in `centers` (in place) and the iteration count.
int kmeans_1d(View1D<const double> x, std::vector<double>& centers, int max_iter, double tol);

// numpy's ufunc inner-loop signature (char** args, npy_intp const* dims, npy_intp const* steps,
// void* data). forgeline calls numpy's float64 log1p/expm1 loops through it so its results
// are bit-identical to numpy's SIMD implementations; without them it falls back to libm.
using UfuncLoop = void (*)(char**, const std::int64_t*, const std::int64_t*, void*);
void set_numpy_loops(UfuncLoop log1p, void* log1p_data, UfuncLoop expm1, void* expm1_data);
bool numpy_loops_set();

// ---------------------------------------------------------------- the transform program
//
// A program is a list of column programs. Each reads one source column, runs a short list of
// elementwise ops over a block of rows held in a scratch buffer, then emits into the output
// matrix at column `dst` (and up to `width` columns after it).

enum Source : std::int32_t { kSrcFloat = 0, kSrcCode = 1, kSrcDatetime = 2 };

enum Op : std::int32_t {
  kImpute = 1,       // NaN -> a
  kLog1p = 2,
  kSub = 3,          // x - a
  kDiv = 4,          // x / a
  kMul = 5,          // x * a
  kAdd = 6,          // x + a
  kClip = 7,         // min(max(x, a), b), NaN stays NaN
  kIsNan = 8,        // 1.0 if NaN else 0.0
  kYeoJohnson = 9,   // lambda a
  kCheckFinite = 10, // flags +-inf (sets the program's flag); value unchanged
  kBin = 11,         // searchsorted(table[t0:t0+tn], x, side="right")
  kSinCycle = 12,    // sin(2*pi*x/a)
  kCosCycle = 13,    // cos(2*pi*x/a)
  kDatePart = 14,    // int64 ns source only: a = part (0 year 1 month 2 day 3 weekday 4 hour 5 minute 6 second 7 dayofyear)
  kCheckNan = 15,    // flags NaN (sets the program's flag)
  kIsNanFlip = 16,   // 0.0 if NaN else x  (encoded missing handled by tables instead)
};

enum Emit : std::int32_t {
  kEmitValue = 0,       // out[dst] = x
  kEmitOneHot = 1,      // x is a slot in [0, width): out[dst + x] = 1, others 0
  kEmitCodeOneHot = 2,  // slot = maps[moff + code + 2]; slot >= 0: out[dst + slot] = 1
  kEmitCodeLookup = 3,  // out[dst + t] = table[toff + (code + 2) * width + t]
};

struct OpSpec {
  std::int32_t code = 0;
  double a = 0, b = 0;
  std::int64_t toff = 0, tlen = 0;  // into `tables`
};

struct ColumnProgram {
  std::int32_t source = kSrcFloat;
  std::int64_t src = 0;  // index into the source list of that kind
  std::int64_t op_begin = 0, op_end = 0;
  std::int32_t emit = kEmitValue;
  std::int64_t dst = 0, width = 1;
  std::int64_t toff = 0;  // table (lookup) or map (code one-hot) offset
  std::int64_t tlen = 0;  // entries there: codes outside [-2, tlen/width - 2) are an error
};

struct ProgramInputs {
  std::vector<View1D<const double>> floats;
  std::vector<View1D<const std::int32_t>> codes;
  std::vector<View1D<const std::int64_t>> datetimes;
};

// Runs every column program over all rows (parallel over fixed row blocks). `flags[p]` is set
// to the op code of a check op of program p that fired (0 when none did). `out` must be row-major with at least
// max(dst + width) columns; columns written by one-hot emitters are zeroed first.
void run_program(const ProgramInputs& in, const std::vector<ColumnProgram>& progs,
                 const std::vector<OpSpec>& ops, const double* tables, const std::int32_t* maps,
                 View2D<double> out, std::int32_t* flags, int n_threads);

// A user-defined function compiled by Numba (`forgeline.transforms.udf`), called by address:
// fn(in, m, k, out) reads a column-major block of m rows x k input columns and writes m values.
using UdfBlock = void (*)(const double* in, std::int64_t m, std::int64_t k, double* out);

// Runs `fn` over all rows in fixed row blocks (parallel); `out` has n contiguous values.
void run_udf(const std::vector<View1D<const double>>& cols, UdfBlock fn, double* out, index_t n,
             int n_threads);

}  // namespace forgeline::transforms
