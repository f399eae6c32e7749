// See forgeline/fit_logistic.hpp. Built with -ffp-contract=off (CMakeLists.txt).
#include "forgeline/fit_logistic.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>

// v8d values never cross a call (every helper taking or returning one is always inlined),
// so GCC's note that passing them changes the ABI without AVX-512 does not apply.
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

// Lanes per pass over X (four blocks of eight): the row sums stay in registers.
constexpr index_t kMaxLanes = 4 * kLaneBlock;

// Eight lanes. GCC's vector extension: an AVX-512 register in the AVX-512 copy, four SSE2
// registers in the baseline one; either way each lane gets its own IEEE multiply and add.
typedef double v8d __attribute__((vector_size(64)));
__attribute__((always_inline)) inline v8d load8(const double* p) {
  v8d v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void store8(double* p, v8d v) { __builtin_memcpy(p, &v, sizeof v); }

// One pass for lanes [c0, c0 + NB * kLaneBlock). The row sums and the row's gradients live
// in NB vector registers.
template <int NB, int R, class I>
__attribute__((always_inline)) inline void pass_body(const Csr<I>& X, const Batch& b, index_t c0) {
  constexpr index_t nl = NB * kLaneBlock;
  const I* FL_RESTRICT ip = X.indptr;
  const I* FL_RESTRICT ix = X.indices;
  const double* FL_RESTRICT xv = X.data;
  const index_t L = b.lanes;
  const double* FL_RESTRICT W = b.W + c0;
  double* FL_RESTRICT XG = b.XG + c0;
  const index_t kk = (b.k - c0 < nl) ? b.k - c0 : nl;  // real fits among these lanes
  for (index_t j = 0; j < X.n_cols; ++j)
    for (index_t c = 0; c < nl; ++c) XG[j * L + c] = 0.0;
  // Rows go R at a time: their sums are independent chains (each still in its own
  // storage order), which hides the add latency that one row's chain would expose.
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
    v8d s[R][NB];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < NB; ++q) s[r][q] = v8d{};
    index_t common = 0;  // entries every row of a full group has: done in lockstep
    if (nr == R) {
      common = hi[0] - lo[0];
      for (int r = 1; r < R; ++r) common = hi[r] - lo[r] < common ? hi[r] - lo[r] : common;
      for (index_t k = 0; k < common; ++k) {
        for (int r = 0; r < R; ++r) {
          const double x = xv[lo[r] + k];
          const double* FL_RESTRICT wr = W + static_cast<index_t>(ix[lo[r] + k]) * L;
          for (int q = 0; q < NB; ++q) s[r][q] = s[r][q] + x * load8(wr + q * kLaneBlock);
        }
      }
    }
    for (int r = 0; r < nr; ++r) {
      for (index_t p = lo[r] + common; p < hi[r]; ++p) {
        const double x = xv[p];
        const double* FL_RESTRICT wr = W + static_cast<index_t>(ix[p]) * L;
        for (int q = 0; q < NB; ++q) s[r][q] = s[r][q] + x * load8(wr + q * kLaneBlock);
      }
      for (int q = 0; q < NB; ++q) store8(sa[r] + q * kLaneBlock, s[r][q]);
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
    // the scatter keeps row order: every XG entry accumulates as csc_matvec's does
    for (int r = 0; r < nr; ++r) {
      v8d g[NB];
      for (int q = 0; q < NB; ++q) g[q] = load8(ga[r] + q * kLaneBlock);
      for (index_t p = lo[r]; p < hi[r]; ++p) {
        const double x = xv[p];
        double* FL_RESTRICT xr = XG + static_cast<index_t>(ix[p]) * L;
        for (int q = 0; q < NB; ++q) store8(xr + q * kLaneBlock, load8(xr + q * kLaneBlock) + x * g[q]);
      }
    }
  }
}

template <int R, class I>
__attribute__((always_inline)) inline void pass_any(const Csr<I>& X, const Batch& b, index_t c0, index_t nl) {
  switch (nl / kLaneBlock) {
    case 1: pass_body<1, R>(X, b, c0); break;
    case 2: pass_body<2, R>(X, b, c0); break;
    case 3: pass_body<3, R>(X, b, c0); break;
    default: pass_body<4, R>(X, b, c0); break;
  }
}

// Rows per group, per copy: with 32 vector registers the AVX-512 copy keeps 4 rows x 4
// blocks of sums in registers. The baseline copy (one row at a time) is the reference the
// tests compare bits against; GCC lowers v8d to narrower registers through the stack, so
// it is several times slower than sklearn's own two mat-vecs (measured: 19 ms per fit and
// evaluation at 12 fits vs sklearn's 7.8 ms; an AVX2 copy measured worse still), and
// forgeline.tune only runs fits in lockstep where the AVX-512 copy exists (fit_fast_copy).
template <class I>
void many_generic(const Csr<I>& X, const Batch& b, index_t c0, index_t nl) {
  pass_any<1>(X, b, c0, nl);
}

std::atomic<bool> g_fit_simd{true};

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
template <class I>
__attribute__((target("avx512f,avx512dq,avx512vl"))) void many_avx512(const Csr<I>& X, const Batch& b,
                                                                      index_t c0, index_t nl) {
  pass_any<4>(X, b, c0, nl);
}
bool has_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
  }();
  return yes;
}
#endif

}  // namespace

void set_fit_simd(bool on) { g_fit_simd.store(on, std::memory_order_relaxed); }

bool fit_fast_copy() {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  return has_avx512();
#else
  return false;
#endif
}

template <class I>
void half_binomial_many(const Csr<I>& X, const Batch& b) {
  for (index_t c0 = 0; c0 < b.lanes; c0 += kMaxLanes) {
    const index_t nl = (b.lanes - c0 < kMaxLanes) ? b.lanes - c0 : kMaxLanes;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    if (g_fit_simd.load(std::memory_order_relaxed) && has_avx512()) {
      many_avx512(X, b, c0, nl);
      continue;
    }
#endif
    many_generic(X, b, c0, nl);
  }
}

template <class I>
std::string check_csr(const Csr<I>& X, index_t nnz) {
  if (X.indptr[0] != 0) return "indptr[0] is not 0";
  for (index_t i = 0; i < X.n_rows; ++i) {
    if (X.indptr[i + 1] < X.indptr[i]) return "indptr is not monotone";
  }
  const index_t used = static_cast<index_t>(X.indptr[X.n_rows]);
  if (used > nnz) return "indptr points past the stored entries";
  for (index_t p = 0; p < used; ++p) {
    const index_t j = static_cast<index_t>(X.indices[p]);
    if (j < 0 || j >= X.n_cols) return "a column index is out of range";
  }
  return {};
}

template void half_binomial_many<std::int32_t>(const Csr<std::int32_t>&, const Batch&);
template void half_binomial_many<std::int64_t>(const Csr<std::int64_t>&, const Batch&);
template std::string check_csr<std::int32_t>(const Csr<std::int32_t>&, index_t);
template std::string check_csr<std::int64_t>(const Csr<std::int64_t>&, index_t);

}  // namespace forgeline::fit
