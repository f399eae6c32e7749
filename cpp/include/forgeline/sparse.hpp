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
#include <cstddef>
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::sparse {

namespace detail {
void* big_alloc(std::size_t bytes);
void big_free(void* p) noexcept;
}  // namespace detail

// Allocator for the packed arrays: large ones are 2 MiB aligned and asked to be backed by
// transparent huge pages (as numpy does for its large arrays). A product streams the whole
// copy; with 4 KiB pages it would take a TLB miss every 4 KiB and lose to scipy reading
// numpy's huge-page arrays.
template <class T>
struct BigAlloc {
  using value_type = T;
  BigAlloc() = default;
  template <class U>
  BigAlloc(const BigAlloc<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(detail::big_alloc(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { detail::big_free(p); }
  template <class U>
  bool operator==(const BigAlloc<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const BigAlloc<U>&) const noexcept { return false; }
};
template <class T>
using big_vector = std::vector<T, BigAlloc<T>>;

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
  // therefore exactly scipy's `a.T @ g` (csc_matvec over the transposed view). It is cut
  // into blocks of kBlockRows rows of `a`: each output's chain runs over block 0, then
  // block 1, ... (the same chain, carried through y), so the slice of g a block reads stays
  // in L1, and 16-bit offsets within the block replace 32-bit row numbers. (512 measured
  // best on the T2 matrix, 80k x 340: 1.26x scipy vs 0.94x with 16384-row blocks.)
  static Packed from_csr(const CsrRef& a, bool transpose);

  // y (n_rows) = A @ x (n_cols), bit-identical to scipy's csr_matvec (or, for a transposed
  // copy, to csc_matvec over a.T).
  void matvec(const double* x, double* y, int n_threads) const;

  index_t n_rows() const { return n_rows_; }
  index_t n_cols() const { return n_cols_; }
  index_t nnz() const { return static_cast<index_t>(data_.size()); }
  // Bytes held (indptr, indices, values).
  index_t nbytes() const;

  static constexpr index_t kBlockRows = 512;

 private:
  index_t n_rows_ = 0;
  index_t n_cols_ = 0;
  index_t n_blocks_ = 1;  // blocks of x: 1 for a copy of `a`, ceil(n_cols / block_) for a.T
  index_t block_ = 0;     // x entries per block
  // Segment (b, r) = row r's entries that index block b, at [indptr_[b*n_rows + r],
  // indptr_[b*n_rows + r + 1]). Four consecutive rows of a block form a group that keeps
  // their joint range: first their common length interleaved, then each row's rest.
  big_vector<std::int64_t> indptr_;
  big_vector<std::uint16_t> idx16_;  // offsets within the block, when block_ <= 65536
  big_vector<std::int32_t> idx32_;   // otherwise
  big_vector<double> data_;
  bool transposed_ = false;  // which of scipy's two loops (operand orders) to reproduce

  template <class I>
  void pack(const std::int32_t* idx, const double* val, big_vector<I>& out);
  template <class I>
  void run(const I* idx, const double* x, double* y, int n_threads) const;
  template <class I>
  double nan_row(const I* idx, const double* x, index_t r) const;
};

// Rows of `a` per block of its transposed copy: kBlockRows, doubled while the blocks'
// per-column segments would outnumber an eighth of the entries (at most 65536).
index_t transposed_block(index_t n_rows, index_t n_cols, index_t nnz);

}  // namespace forgeline::sparse
