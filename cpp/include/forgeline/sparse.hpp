// Exact sparse matrix-vector products for model fits (forgeline.tune's cached CSR matrices).
// Pure C++: never include pybind11 here.
//
// Exactness: every output element is the chain scipy's sparsetools computes,
// `s = 0.0; for each entry of the row in storage order: s += a * x[j]`: a product rounded
// to double, then an add rounded to double, never fused (the file is built with
// -ffp-contract=off and no FMA target). Speed comes from the layout, not from reordering:
// rows are packed in groups of four whose entries are interleaved, so one sequential stream
// feeds four independent add chains (scipy's loop waits on one add's latency per entry),
// with 16-bit column indices when the matrix is at most 65536 columns wide (a sixth less
// memory traffic). Rows split across threads; a row's chain never depends on the split.
// NaN results carry scipy's NaN bits too (x86-64 operand-order rules, see sparse.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::sparse {

// A CSR matrix over caller-owned buffers (int32 indptr and indices, float64 data).
struct CsrRef {
  const std::int32_t* indptr = nullptr;  // n_rows + 1 entries
  const std::int32_t* indices = nullptr;
  const double* data = nullptr;
  index_t n_rows = 0;
  index_t n_cols = 0;
  index_t nnz = 0;  // length of indices and data
};

// An owned, validated, packed copy of a CSR matrix. Immutable after construction, so the
// products need no per-entry checks and may run on any number of threads at once.
class Packed {
 public:
  // The packed copy of `a` or, with `transpose`, of a.T. Checks `a` completely (indptr
  // starts >= 0, never decreases, ends <= nnz; every index in [0, n_cols)) and throws
  // std::invalid_argument naming the first problem. Only the entries the rows use
  // ([indptr[0], indptr[n_rows])) are kept, as scipy's products do.
  //
  // a.T is the CSC layout of `a`, built by one stable counting pass: column j's entries in
  // row order and, within a row, in storage order, duplicates included. Its product is
  // therefore exactly scipy's `a.T @ g` (csc_matvec over the transposed view).
  static Packed from_csr(const CsrRef& a, bool transpose);

  // y (n_rows) = A @ x (n_cols), bit-identical to scipy's csr_matvec.
  void matvec(const double* x, double* y, int n_threads) const;

  index_t n_rows() const { return n_rows_; }
  index_t n_cols() const { return n_cols_; }
  index_t nnz() const { return static_cast<index_t>(data_.size()); }
  // Bytes held (indptr, indices, values).
  index_t nbytes() const;

 private:
  index_t n_rows_ = 0;
  index_t n_cols_ = 0;
  std::vector<std::int64_t> indptr_;  // rows' ranges, starting at 0 (the packed group of
                                      // four rows covers the same range as the rows did)
  std::vector<std::uint16_t> idx16_;  // used when n_cols <= 65536
  std::vector<std::int32_t> idx32_;   // otherwise
  std::vector<double> data_;
  bool transposed_ = false;  // which of scipy's two loops (operand orders) to reproduce

  template <class I>
  double nan_row(const I* idx, const double* x, index_t r) const;

  // Packs rows given in CSR order (indptr_ set, starting at 0) into this object's layout.
  template <class I>
  void pack(const std::int32_t* idx, const double* val, std::vector<I>& out);
  template <class I>
  void run(const I* idx, const double* x, double* y, int n_threads) const;
};

}  // namespace forgeline::sparse
