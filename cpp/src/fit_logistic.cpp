// See forgeline/fit_logistic.hpp. Built with -ffp-contract=off (CMakeLists.txt).
#include "forgeline/fit_logistic.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>

// Vector values never cross a call (every helper taking or returning one is always
// inlined), so GCC's note that passing them changes the ABI without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace forgeline::fit {

namespace {

// sklearn's closs_grad_half_binomial (sklearn/_loss/_loss.pyx.tp), branch for branch.
struct LossGrad {
  double loss;
  double grad;
};

inline LossGrad half_binomial(double y_true, double raw) {
  LossGrad lg;
  if (raw <= -37) {
    lg.grad = std::exp(raw);
    lg.loss = lg.grad - y_true * raw;
    lg.grad -= y_true;
  } else if (raw <= -2) {
    lg.grad = std::exp(raw);
    lg.loss = std::log1p(lg.grad) - y_true * raw;
    lg.grad = ((1 - y_true) * lg.grad - y_true) / (1 + lg.grad);
  } else if (raw <= 18) {
    lg.grad = std::exp(-raw);
    lg.loss = std::log1p(lg.grad) + (1 - y_true) * raw;
    lg.grad = ((1 - y_true) - y_true * lg.grad) / (1 + lg.grad);
  } else {
    lg.grad = std::exp(-raw);
    lg.loss = lg.grad + (1 - y_true) * raw;
    lg.grad = ((1 - y_true) - y_true * lg.grad) / (1 + lg.grad);
  }
  return lg;
}

// Lane vectors. GCC's vector extension with the register width of each copy (AVX-512: 8
// lanes, AVX2: 4, baseline SSE2: 2); every lane gets its own IEEE multiply and add, so the
// copies differ only in speed.
typedef double v8d __attribute__((vector_size(64)));
typedef double v4d __attribute__((vector_size(32)));
typedef double v2d __attribute__((vector_size(16)));

template <class V>
__attribute__((always_inline)) inline V loadv(const double* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
__attribute__((always_inline)) inline void storev(double* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// One pass for lanes [c0, c0 + NB * kLaneBlock), R rows at a time. The R rows' sums are
// independent chains (each still in its own storage order), which hides the add latency
// one row's chain would expose; they and the row's gradients live in vector registers.
template <class V, int NB, int R, class I>
__attribute__((always_inline)) inline void pass_body(const Csr<I>& X, const Batch& b, index_t c0) {
  constexpr index_t nl = NB * kLaneBlock;
  constexpr int VW = static_cast<int>(sizeof(V) / sizeof(double));
  constexpr int NV = static_cast<int>(nl) / VW;  // vectors per row
  const I* FL_RESTRICT ip = X.indptr;
  const I* FL_RESTRICT ix = X.indices;
  const double* FL_RESTRICT xv = X.data;
  const index_t L = b.lanes;
  const double* FL_RESTRICT W = b.W + c0;
  double* FL_RESTRICT XG = b.XG + c0;
  const index_t kk = (b.k - c0 < nl) ? b.k - c0 : nl;  // real fits among these lanes
  for (index_t j = 0; j < X.n_cols; ++j)
    for (index_t c = 0; c < nl; ++c) XG[j * L + c] = 0.0;
  alignas(64) double sa[R][nl];
  alignas(64) double ga[R][nl];
  for (int r = 0; r < R; ++r)
    for (index_t c = 0; c < nl; ++c) ga[r][c] = 0.0;  // padding lanes scatter zeros
  for (index_t i0 = 0; i0 < X.n_rows; i0 += R) {
    const int nr = X.n_rows - i0 < R ? static_cast<int>(X.n_rows - i0) : R;
    index_t lo[R] = {}, hi[R] = {};
    for (int r = 0; r < nr; ++r) {
      lo[r] = static_cast<index_t>(ip[i0 + r]);
      hi[r] = static_cast<index_t>(ip[i0 + r + 1]);
    }
    V s[R][NV];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < NV; ++q) s[r][q] = V{};
    index_t common = 0;  // entries every row of a full group has: done in lockstep
    index_t shared = 0;  // leading entries whose column is the same in every row
    if (nr == R && R > 1) {
      common = hi[0] - lo[0];
      for (int r = 1; r < R; ++r) common = hi[r] - lo[r] < common ? hi[r] - lo[r] : common;
      for (; shared < common; ++shared) {
        bool same = true;
        for (int r = 1; r < R; ++r) same = same && ix[lo[r] + shared] == ix[lo[0] + shared];
        if (!same) break;
      }
      // shared columns: one read of the weights for the R rows
      for (index_t k = 0; k < shared; ++k) {
        const double* FL_RESTRICT wr = W + static_cast<index_t>(ix[lo[0] + k]) * L;
        for (int q = 0; q < NV; ++q) {
          const V wv = loadv<V>(wr + q * VW);
          for (int r = 0; r < R; ++r) s[r][q] = s[r][q] + xv[lo[r] + k] * wv;
        }
      }
      for (index_t k = shared; k < common; ++k) {
        for (int r = 0; r < R; ++r) {
          const double x = xv[lo[r] + k];
          const double* FL_RESTRICT wr = W + static_cast<index_t>(ix[lo[r] + k]) * L;
          for (int q = 0; q < NV; ++q) s[r][q] = s[r][q] + x * loadv<V>(wr + q * VW);
        }
      }
    }
    for (int r = 0; r < nr; ++r) {
      for (index_t p = lo[r] + common; p < hi[r]; ++p) {
        const double x = xv[p];
        const double* FL_RESTRICT wr = W + static_cast<index_t>(ix[p]) * L;
        for (int q = 0; q < NV; ++q) s[r][q] = s[r][q] + x * loadv<V>(wr + q * VW);
      }
      for (int q = 0; q < NV; ++q) storev(sa[r] + q * VW, s[r][q]);
    }
    for (int r = 0; r < nr; ++r) {
      const index_t i = i0 + r;
      const double yi = b.y[i];
      for (index_t c = 0; c < kk; ++c) {
        LossGrad lg = half_binomial(yi, sa[r][c] + b.intercepts[c0 + c]);
        if (b.sample_weight != nullptr) {
          lg.loss = b.sample_weight[i] * lg.loss;
          lg.grad = b.sample_weight[i] * lg.grad;
        }
        ga[r][c] = lg.grad / b.sw_sum;
        b.loss_out[c0 + c][i] = lg.loss;
        b.grad_out[c0 + c][i] = ga[r][c];
      }
    }
    // The scatter keeps row order for every XG entry, as csc_matvec's accumulation does.
    // Where each row holds a column at most once (b.unique_columns), a shared column's R
    // updates are that entry's only updates from these rows, so they can be applied back
    // to back in row order with one load and one store; the rest follow row after row.
    const index_t folded = b.unique_columns ? shared : 0;
    V g[R][NV];
    for (int r = 0; r < nr; ++r)
      for (int q = 0; q < NV; ++q) g[r][q] = loadv<V>(ga[r] + q * VW);
    for (index_t k = 0; k < folded; ++k) {
      double* FL_RESTRICT xr = XG + static_cast<index_t>(ix[lo[0] + k]) * L;
      for (int q = 0; q < NV; ++q) {
        V acc = loadv<V>(xr + q * VW);
        for (int r = 0; r < R; ++r) acc = acc + xv[lo[r] + k] * g[r][q];
        storev(xr + q * VW, acc);
      }
    }
    for (int r = 0; r < nr; ++r) {
      for (index_t p = lo[r] + folded; p < hi[r]; ++p) {
        const double x = xv[p];
        double* FL_RESTRICT xr = XG + static_cast<index_t>(ix[p]) * L;
        for (int q = 0; q < NV; ++q) storev(xr + q * VW, loadv<V>(xr + q * VW) + x * g[r][q]);
      }
    }
  }
}

// All lanes, in passes of at most MAXB blocks of eight (what fits the copy's registers:
// R x MAXB x 8 / VW accumulators).
template <class V, int R, int MAXB, class I>
__attribute__((always_inline)) inline void pass_all(const Csr<I>& X, const Batch& b) {
  constexpr index_t maxl = MAXB * kLaneBlock;
  for (index_t c0 = 0; c0 < b.lanes; c0 += maxl) {
    const index_t nb = ((b.lanes - c0 < maxl) ? b.lanes - c0 : maxl) / kLaneBlock;
    if constexpr (MAXB >= 4) {
      if (nb >= 4) { pass_body<V, 4, R>(X, b, c0); continue; }
      if (nb == 3) { pass_body<V, 3, R>(X, b, c0); continue; }
    }
    if constexpr (MAXB >= 2) {
      if (nb == 2) { pass_body<V, 2, R>(X, b, c0); continue; }
    }
    pass_body<V, 1, R>(X, b, c0);
  }
}

// The copies. Measured per fit and evaluation with 12 fits on the T2 tuning fold (80k rows,
// 340 columns, 49 entries a row): AVX-512 3.1 ms, AVX2 3.6 ms, baseline 4.7 ms, against
// 7.8 ms for sklearn's own evaluation; about half of each is the libm exp/log1p calls.
// Folding the shared columns' scatter (unique_columns) took 4-6% off the AVX-512 pass.
// Baseline SSE2 (16 registers): one row, one block of eight (4 accumulators).
template <class I>
void many_generic(const Csr<I>& X, const Batch& b) {
  pass_all<v2d, 1, 1>(X, b);
}

std::atomic<int> g_fit_isa{2};  // highest copy allowed: 2 AVX-512, 1 AVX2, 0 baseline

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
// AVX-512 (32 registers): four rows x up to four blocks (16 accumulators).
template <class I>
__attribute__((target("avx512f,avx512dq,avx512vl"))) void many_avx512(const Csr<I>& X, const Batch& b) {
  pass_all<v8d, 4, 4>(X, b);
}
// AVX2 (16 registers): two rows x up to two blocks (8 accumulators).
template <class I>
__attribute__((target("avx2"))) void many_avx2(const Csr<I>& X, const Batch& b) {
  pass_all<v4d, 2, 2>(X, b);
}
int cpu_isa() {
  static const int isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
      return 2;
    return __builtin_cpu_supports("avx2") ? 1 : 0;
  }();
  return isa;
}
#else
int cpu_isa() { return 0; }
#endif

}  // namespace

void set_fit_isa(int level) { g_fit_isa.store(level, std::memory_order_relaxed); }

int fit_isa() {
  const int allowed = g_fit_isa.load(std::memory_order_relaxed);
  return cpu_isa() < allowed ? cpu_isa() : allowed;
}

template <class I>
void half_binomial_many(const Csr<I>& X, const Batch& b) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  switch (fit_isa()) {
    case 2: many_avx512(X, b); return;
    case 1: many_avx2(X, b); return;
    default: break;
  }
#endif
  many_generic(X, b);
}

template <class I>
std::string check_csr(const Csr<I>& X, index_t nnz, bool* increasing) {
  if (X.indptr[0] != 0) return "indptr[0] is not 0";
  for (index_t i = 0; i < X.n_rows; ++i) {
    if (X.indptr[i + 1] < X.indptr[i]) return "indptr is not monotone";
  }
  const index_t used = static_cast<index_t>(X.indptr[X.n_rows]);
  if (used > nnz) return "indptr points past the stored entries";
  bool inc = true;
  for (index_t i = 0; i < X.n_rows; ++i) {
    const index_t lo = static_cast<index_t>(X.indptr[i]), hi = static_cast<index_t>(X.indptr[i + 1]);
    for (index_t p = lo; p < hi; ++p) {
      const index_t j = static_cast<index_t>(X.indices[p]);
      if (j < 0 || j >= X.n_cols) return "a column index is out of range";
      if (p > lo && j <= static_cast<index_t>(X.indices[p - 1])) inc = false;
    }
  }
  if (increasing != nullptr) *increasing = inc;
  return {};
}

template void half_binomial_many<std::int32_t>(const Csr<std::int32_t>&, const Batch&);
template void half_binomial_many<std::int64_t>(const Csr<std::int64_t>&, const Batch&);
template std::string check_csr<std::int32_t>(const Csr<std::int32_t>&, index_t, bool*);
template std::string check_csr<std::int64_t>(const Csr<std::int64_t>&, index_t, bool*);

}  // namespace forgeline::fit
