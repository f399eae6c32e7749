// Histograms for scikit-learn's HistGradientBoosting tree growing, bit-identical to
// sklearn's HistogramBuilder (sklearn/ensemble/_hist_gradient_boosting/histogram.pyx).
//
// What sklearn computes, per feature f and bin b of a node with samples s_0..s_{n-1}:
//   sum_gradients[f][b] = (((+0.0 + g_0') + g_1') + ...)   float64, in sample order, over the
//   sum_hessians[f][b]  = same with hessians                samples whose X[s_i, f] == b
//   count[f][b]         = number of those samples           (uint32)
// where g_i' is the float32 gradient converted to float64. sum_hessians stays +0.0 when the
// hessians are constant. Only additions: no multiply exists to contract into an FMA.
//
// Why it is faster: sklearn walks one feature at a time, and consecutive samples landing in
// the same bin (most of them, for one-hot columns) form a chain load -> add -> store ->
// load of the same memory, so the loop runs at store-forwarding + add latency. Here a
// group of features is walked together: for each sample, every feature of the group adds
// into its own histogram. The per-(feature, bin) additions keep sklearn's exact order (each
// still sees the samples in node order); only the interleaving between *different*
// features changes, and those chains are independent, so the CPU overlaps them. Small nodes
// read a row-major copy of X instead (one or two cache lines per sample instead of one per
// sample and feature) and walk 64 features per sample, again in node order per (feature, bin).
//
// Exactness of each step: the sums start from sklearn's memset (+0.0) in the output records
// themselves; {sum_gradients, sum_hessians} are updated by one SSE2 addpd, whose two lanes
// are two independent IEEE double additions under the thread's rounding mode - the same
// operation, operands and order as sklearn's two scalar `+=`. No reassociation, no FMA.
#pragma once
#include <cstdint>

#include "forgeline/common.hpp"

namespace forgeline::fit {

// sklearn's HISTOGRAM_DTYPE: a packed 20-byte record (numpy structured dtype, no padding).
#pragma pack(push, 1)
struct HistBin {
  double sum_gradients;
  double sum_hessians;
  std::uint32_t count;
};
#pragma pack(pop)
static_assert(sizeof(HistBin) == 20, "HISTOGRAM_DTYPE is a packed 20-byte record");

struct HistInputs {
  const std::uint8_t* X = nullptr;  // X_binned, column-major: X[row + f * col_stride]
  index_t n_rows = 0;
  index_t n_features = 0;
  index_t col_stride = 0;
  // Optional row-major copy of X_binned (XR[row * n_features + f]). Nodes other than the
  // root read their scattered rows from it: one or two cache lines per sample and group of
  // features instead of one line per sample and feature.
  const std::uint8_t* XR = nullptr;
  // Optional per-column bin counts of X (n_features x 256, uint32): the root's counts, which
  // no tree changes. Given, the root's loop stores only the sums.
  const std::uint32_t* root_counts = nullptr;
  const float* gradients = nullptr;  // n_grad entries
  const float* hessians = nullptr;   // n_grad entries, or 1 when hessians_constant
  index_t n_grad = 0;
  bool hessians_constant = false;
  // sklearn's ordered_gradients / ordered_hessians buffers: the builder's state (the root
  // reads them as they are; other nodes first gather into their first n entries).
  float* ordered_g = nullptr;
  float* ordered_h = nullptr;  // unused when hessians_constant
};

// sklearn's compute_histograms_brute: for a node with `n_node` samples, gathers the
// ordered gradients (when n_node != n_grad, as sklearn does) and fills out[f, :] for each f
// in `features` (all features when features == nullptr). out has n_features rows of n_bins
// bins; rows not listed are left untouched. Deterministic for any n_threads (features are
// split into fixed chunks; one feature's sums are always serial). A non-root node with fewer
// than n_rows / rows_below samples reads in.XR (when given) instead of the columns; both paths
// give the same bits (kRowsBelow: measured on the tuner's 80k x 340 folds, rows win below
// ~1/30 of the rows, columns above).
constexpr index_t kRowsBelow = 32;
void hist_brute(const HistInputs& in, const std::uint32_t* sample_indices, index_t n_node,
                const std::uint32_t* features, index_t n_listed, HistBin* out, index_t n_bins,
                int n_threads, index_t rows_below = kRowsBelow);

// sklearn's compute_histograms_subtraction: parent[f, b] -= sibling[f, b] field by field
// (float64 subtraction; uint32 count wraps as C does), for the listed features.
void hist_subtract(HistBin* parent, const HistBin* sibling, const std::uint32_t* features,
                   index_t n_listed, index_t n_bins);

}  // namespace forgeline::fit
