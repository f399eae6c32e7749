// Exact packed CSR products (see sparse.hpp). Built with -ffp-contract=off (CMakeLists.txt):
// a fused multiply-add would skip the product's rounding and break bit-equality with scipy.
#include "forgeline/sparse.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <string>

#include "forgeline/parallel.hpp"

namespace forgeline::sparse {

namespace detail {

constexpr std::size_t kHuge = std::size_t{1} << 21;

void* big_alloc(std::size_t bytes) {
  if (bytes < 2 * kHuge) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    return p;
  }
  const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, rounded, MADV_HUGEPAGE);  // a hint: without THP it is a no-op
#endif
  return p;
}

void big_free(void* p) noexcept { std::free(p); }

}  // namespace detail

namespace {

constexpr index_t kGroup = 4;  // rows whose chains run side by side

// Row range of `a`, checked: indptr must start >= 0, never decrease and end <= nnz.
void check_indptr(const CsrRef& a) {
  require(a.n_rows >= 0 && a.n_cols >= 0 && a.nnz >= 0, "sparse matrix: negative shape");
  index_t prev = a.indptr[0];
  if (prev < 0 || prev > a.nnz)
    throw std::invalid_argument("sparse matrix: indptr[0] = " + std::to_string(prev) +
                                " is outside [0, " + std::to_string(a.nnz) + "]");
  for (index_t r = 0; r < a.n_rows; ++r) {
    const index_t next = a.indptr[r + 1];
    if (next < prev || next > a.nnz)
      throw std::invalid_argument("sparse matrix: indptr[" + std::to_string(r + 1) + "] = " +
                                  std::to_string(next) + " is below indptr[" + std::to_string(r) +
                                  "] = " + std::to_string(prev) + " or above nnz = " +
                                  std::to_string(a.nnz));
    prev = next;
  }
}

void check_indices(const CsrRef& a, index_t lo, index_t hi) {
  for (index_t k = lo; k < hi; ++k) {
    const index_t j = a.indices[k];
    if (FL_UNLIKELY(j < 0 || j >= a.n_cols))
      throw std::invalid_argument("sparse matrix: indices[" + std::to_string(k) + "] = " +
                                  std::to_string(j) + " is outside [0, " + std::to_string(a.n_cols) +
                                  ")");
  }
}

// NaN payloads. For non-NaN results IEEE products and sums are commutative, so the order in
// which the compiler feeds operands to the FPU cannot matter. For NaN it does: x86 returns
// the first operand's NaN when both are NaN, and compilers treat + and * as commutative.
// scipy's compiled loops are, for csr_matvec, `p = x[j] * a; s = s + p` and, for csc_matvec
// over A.T, `p = a * g[i]; s = p + s`. A row whose fast sum is NaN (rare) is recomputed with
// those operand orders spelled out, so even the NaN bits match scipy's on x86-64.
inline double quiet(double v) {
  std::uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  b |= std::uint64_t{1} << 51;
  std::memcpy(&v, &b, sizeof b);
  return v;
}
inline double mul_first(double a, double b) {
  if (a != a) return quiet(a);
  if (b != b) return quiet(b);
  return a * b;
}
inline double add_first(double a, double b) {
  if (a != a) return quiet(a);
  if (b != b) return quiet(b);
  return a + b;
}

}  // namespace

index_t transposed_block(index_t n_rows, index_t n_cols, index_t nnz) {
  // Every block holds one segment per column; a wide, very sparse matrix would otherwise
  // spend more on segment bounds than on entries, so blocks grow until the segments are at
  // most an eighth of the entries (or the 16-bit offsets run out).
  index_t block = Packed::kBlockRows;
  auto segments = [&](index_t b) { return ((n_rows + b - 1) / b) * n_cols; };
  while (block < 65536 && segments(block) > std::max<index_t>(nnz / 8, n_cols)) block *= 2;
  return std::max<index_t>(1, std::min(block, n_rows));
}

template <class I>
double Packed::nan_row(const I* idx, const double* x, index_t r) const {
  const std::int64_t* ptr = indptr_.data();
  const double* d = data_.data();
  double s = 0.0;
  const index_t g0 = r - r % kGroup;
  const bool grouped = g0 + kGroup <= n_rows_;
  const index_t lane = r - g0;
  for (index_t b = 0; b < n_blocks_; ++b) {
    const double* xb = x + b * block_;
    const std::int64_t* pb = ptr + b * n_rows_;
    auto step = [&](index_t q) {
      const double v = xb[idx[q]];
      s = transposed_ ? add_first(mul_first(d[q], v), s) : add_first(s, mul_first(v, d[q]));
    };
    if (!grouped) {
      for (index_t q = pb[r]; q < pb[r + 1]; ++q) step(q);
      continue;
    }
    // The segment's entries in the group layout: lane `lane` of the interleaved part, then
    // its own rest after the rests of the lanes before it.
    index_t m = pb[g0 + 1] - pb[g0];
    for (index_t i = 1; i < kGroup; ++i) m = std::min<index_t>(m, pb[g0 + i + 1] - pb[g0 + i]);
    for (index_t k = 0; k < m; ++k) step(pb[g0] + k * kGroup + lane);
    index_t q = pb[g0] + m * kGroup;
    for (index_t i = 0; i < lane; ++i) q += pb[g0 + i + 1] - pb[g0 + i] - m;
    const index_t rest = pb[r + 1] - pb[r] - m;
    for (index_t k = 0; k < rest; ++k) step(q + k);
  }
  return s;
}

Packed Packed::from_csr(const CsrRef& a, bool transpose) {
  check_indptr(a);
  const index_t lo = a.indptr[0], hi = a.indptr[a.n_rows];
  check_indices(a, lo, hi);
  Packed p;
  p.transposed_ = transpose;
  const index_t used = hi - lo;
  std::vector<std::int32_t> t_idx;
  std::vector<double> t_val;
  const std::int32_t* idx = a.indices + lo;
  const double* val = a.data + lo;
  if (!transpose) {
    p.n_rows_ = a.n_rows;
    p.n_cols_ = a.n_cols;
    p.block_ = a.n_cols;
    p.indptr_.resize(static_cast<size_t>(a.n_rows) + 1);
    for (index_t r = 0; r <= a.n_rows; ++r) p.indptr_[static_cast<size_t>(r)] = a.indptr[r] - lo;
  } else {
    const index_t n = a.n_cols;  // rows of a.T
    p.n_rows_ = n;
    p.n_cols_ = a.n_rows;
    p.block_ = transposed_block(a.n_rows, a.n_cols, used);
    p.n_blocks_ = std::max<index_t>(1, (a.n_rows + p.block_ - 1) / p.block_);
    auto& ptr = p.indptr_;
    ptr.assign(static_cast<size_t>(p.n_blocks_ * n) + 1, 0);
    for (index_t r = 0; r < a.n_rows; ++r) {
      const index_t base = (r / p.block_) * n + 1;
      for (index_t k = a.indptr[r]; k < a.indptr[r + 1]; ++k) ++ptr[static_cast<size_t>(base + a.indices[k])];
    }
    for (size_t s = 1; s < ptr.size(); ++s) ptr[s] += ptr[s - 1];
    t_idx.resize(static_cast<size_t>(used));
    t_val.resize(static_cast<size_t>(used));
    std::vector<std::int64_t> next(ptr.begin(), ptr.end() - 1);
    // Rows ascending, entries in storage order: each (block, column) segment receives its
    // entries in the order csc_matvec over a.T adds them.
    for (index_t r = 0; r < a.n_rows; ++r) {
      const index_t blk = r / p.block_;
      const index_t base = blk * n;
      const auto off = static_cast<std::int32_t>(r - blk * p.block_);
      for (index_t k = a.indptr[r]; k < a.indptr[r + 1]; ++k) {
        const auto pos = static_cast<size_t>(next[static_cast<size_t>(base + a.indices[k])]++);
        t_idx[pos] = off;
        t_val[pos] = a.data[k];
      }
    }
    idx = t_idx.data();
    val = t_val.data();
  }
  if (p.block_ <= 65536)
    p.pack(idx, val, p.idx16_);
  else
    p.pack(idx, val, p.idx32_);
  return p;
}

template <class I>
void Packed::pack(const std::int32_t* idx, const double* val, big_vector<I>& out) {
  const index_t nnz = indptr_.back();
  out.resize(static_cast<size_t>(nnz));
  data_.resize(static_cast<size_t>(nnz));
  const index_t groups_end = n_rows_ - n_rows_ % kGroup;
  for (index_t b = 0; b < n_blocks_; ++b) {
    const std::int64_t* ptr = indptr_.data() + b * n_rows_;
    for (index_t r = 0; r < groups_end; r += kGroup) {
      index_t m = ptr[r + 1] - ptr[r];
      for (index_t i = 1; i < kGroup; ++i) m = std::min<index_t>(m, ptr[r + i + 1] - ptr[r + i]);
      index_t q = ptr[r];
      for (index_t k = 0; k < m; ++k)
        for (index_t i = 0; i < kGroup; ++i, ++q) {
          out[static_cast<size_t>(q)] = static_cast<I>(idx[ptr[r + i] + k]);
          data_[static_cast<size_t>(q)] = val[ptr[r + i] + k];
        }
      for (index_t i = 0; i < kGroup; ++i)
        for (index_t k = ptr[r + i] + m; k < ptr[r + i + 1]; ++k, ++q) {
          out[static_cast<size_t>(q)] = static_cast<I>(idx[k]);
          data_[static_cast<size_t>(q)] = val[k];
        }
    }
    for (index_t k = ptr[groups_end]; k < ptr[n_rows_]; ++k) {
      out[static_cast<size_t>(k)] = static_cast<I>(idx[k]);
      data_[static_cast<size_t>(k)] = val[k];
    }
  }
}

template <class I>
void Packed::run(const I* FL_RESTRICT idx, const double* FL_RESTRICT x, double* FL_RESTRICT y,
                 int n_threads) const {
  const double* FL_RESTRICT d = data_.data();
  const index_t n = n_rows_;
  const index_t groups_end = n - n % kGroup;
  // About 32k entries a chunk (per block), a whole number of groups. The grain only decides who
  // computes a row, never how, so it may depend on the shape.
  const index_t per_row = std::max<index_t>(1, nnz() / std::max<index_t>(n * n_blocks_, 1));
  const index_t grain = std::max<index_t>(1, (index_t{1} << 15) / per_row / kGroup) * kGroup;
  // Blocks outer: the copy is stored block by block, so one thread streams it front to back
  // and a block's slice of x stays in cache. Each pass ends with a join, so block b+1 reads
  // every chain's carried sum after block b wrote it.
  for (index_t b = 0; b < n_blocks_; ++b) {
    parallel_for(n, n_threads, grain, [&](index_t begin, index_t end, index_t) {
      const double* FL_RESTRICT xb = x + b * block_;
      const std::int64_t* ptr = indptr_.data() + b * n_rows_;
      const bool first = b == 0;
      index_t r = begin;
      for (; r + kGroup <= end && r < groups_end; r += kGroup) {
        const index_t l0 = ptr[r], l1 = ptr[r + 1], l2 = ptr[r + 2], l3 = ptr[r + 3], l4 = ptr[r + 4];
        const index_t a0 = l1 - l0, a1 = l2 - l1, a2 = l3 - l2, a3 = l4 - l3;
        const index_t m = std::min(std::min(a0, a1), std::min(a2, a3));
        // a later block continues the chain from the stored sum: the same sequence of adds
        double s0 = first ? 0.0 : y[r], s1 = first ? 0.0 : y[r + 1];
        double s2 = first ? 0.0 : y[r + 2], s3 = first ? 0.0 : y[r + 3];
        index_t q = l0;
        for (index_t k = 0; k < m; ++k, q += kGroup) {
          s0 += d[q] * xb[idx[q]];
          s1 += d[q + 1] * xb[idx[q + 1]];
          s2 += d[q + 2] * xb[idx[q + 2]];
          s3 += d[q + 3] * xb[idx[q + 3]];
        }
        for (index_t k = m; k < a0; ++k, ++q) s0 += d[q] * xb[idx[q]];
        for (index_t k = m; k < a1; ++k, ++q) s1 += d[q] * xb[idx[q]];
        for (index_t k = m; k < a2; ++k, ++q) s2 += d[q] * xb[idx[q]];
        for (index_t k = m; k < a3; ++k, ++q) s3 += d[q] * xb[idx[q]];
        y[r] = s0;
        y[r + 1] = s1;
        y[r + 2] = s2;
        y[r + 3] = s3;
      }
      for (; r < end; ++r) {
        double s = first ? 0.0 : y[r];
        for (index_t q = ptr[r]; q < ptr[r + 1]; ++q) s += d[q] * xb[idx[q]];
        y[r] = s;
      }
      if (b + 1 == n_blocks_)
        for (r = begin; r < end; ++r)
          if (FL_UNLIKELY(y[r] != y[r])) y[r] = nan_row(idx, x, r);
    });
  }
}

void Packed::matvec(const double* x, double* y, int n_threads) const {
  if (!idx16_.empty() || idx32_.empty())
    run(idx16_.data(), x, y, n_threads);
  else
    run(idx32_.data(), x, y, n_threads);
}

index_t Packed::nbytes() const {
  return static_cast<index_t>(indptr_.size() * sizeof(std::int64_t) + idx16_.size() * sizeof(std::uint16_t) +
                              idx32_.size() * sizeof(std::int32_t) + data_.size() * sizeof(double));
}

}  // namespace forgeline::sparse
