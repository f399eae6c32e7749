// The binary logistic loss and its gradient for several fits at once, over one CSR matrix,
// for the tuning loops' LogisticRegression candidates (forgeline/_tune_logistic.py).
//
// sklearn's lbfgs objective (LinearModelLoss.loss_gradient with HalfBinomialLoss) reads the
// training matrix twice per evaluation: raw = X @ w + b (scipy's csr_matvec), then, after
// the pointwise loss, X.T @ g (scipy's csc_matvec on the transpose). Candidates that share a
// fold's transformed matrix and differ in C (or any other model parameter) make the same
// reads with different w. This pass serves K such evaluations with one read of X: lane c
// does exactly the arithmetic of fit c's own evaluation, in the same order, so every output
// is the same bits as sklearn's:
//  * raw[c][i] = (0.0 + x_i0 * w_c[j0] + x_i1 * w_c[j1] + ...) + intercept_c, entries in
//    storage order (csr_matvec starts each row's sum from the zeroed result);
//  * loss[c][i], g[c][i] from sklearn's piecewise closs_grad_half_binomial (same branches,
//    same libm exp/log1p calls, same operation order), times sample_weight[i] when given;
//  * g[c][i] /= sw_sum (sklearn divides the pointwise gradient in place);
//  * xg[j][c] += x_ij * g[c][i], rows in order from zero (csc_matvec's accumulation).
// Lanes are independent: vector instructions apply the same IEEE multiply or add to each
// lane, and the file builds without FP contraction, so no multiply-add is fused and the
// AVX-512, AVX2 and baseline copies give the same bits.
// Single-threaded by design (row order is the accumulation order); the tuning loops run
// several such passes side by side.
#pragma once
#include <string>

#include "forgeline/common.hpp"

namespace forgeline::fit {

template <class I>
struct Csr {
  const I* indptr = nullptr;   // n_rows + 1
  const I* indices = nullptr;  // nnz
  const double* data = nullptr;
  index_t n_rows = 0;
  index_t n_cols = 0;
};

// Lanes are padded to a multiple of this; W and XG rows hold `lanes` doubles.
constexpr index_t kLaneBlock = 8;

struct Batch {
  index_t k = 0;                       // fits in this pass
  index_t lanes = 0;                   // k rounded up to kLaneBlock
  const double* W = nullptr;           // n_cols x lanes: W[j * lanes + c] = w_c[j]
  const double* intercepts = nullptr;  // k
  const double* y = nullptr;           // n_rows, shared by the fits
  const double* sample_weight = nullptr;  // n_rows or nullptr
  double sw_sum = 0.0;
  double* const* loss_out = nullptr;   // k arrays of n_rows
  double* const* grad_out = nullptr;   // k arrays of n_rows (divided by sw_sum)
  double* XG = nullptr;                // n_cols x lanes, overwritten
  bool unique_columns = false;         // no row holds a column twice (scipy's canonical format)
};

// The caller has checked the CSR structure (check_csr) and the batch's sizes.
template <class I>
void half_binomial_many(const Csr<I>& X, const Batch& b);

// Empty when the CSR arrays are consistent (indptr starts at 0, is monotone and ends within
// nnz; every column index in [0, n_cols)), otherwise what is wrong. When consistent,
// *increasing tells whether every row's column indices strictly increase (so no row holds a
// column twice: Batch::unique_columns).
template <class I>
std::string check_csr(const Csr<I>& X, index_t nnz, bool* increasing);

// The copy in use: 2 AVX-512, 1 AVX2, 0 baseline (the highest the CPU has, capped by
// set_fit_isa; tests step down through the copies, which must give the same bits).
int fit_isa();
void set_fit_isa(int level);

}  // namespace forgeline::fit
