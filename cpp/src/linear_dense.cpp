// Dense layer kernels: packing, the gemm register tiles and the dot kernel, in a portable
// and an AVX2+FMA flavour. See linear.hpp for the summation-order contract.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "forgeline/linear.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FL_X86_DISPATCH 1
#include <immintrin.h>
#define FL_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace forgeline::nn {

bool valid_act(int code) { return code >= 0 && code <= static_cast<int>(Act::gelu_tanh); }

namespace {

std::atomic<int> g_isa_override{-1};

int detect_isa() {
#ifdef FL_X86_DISPATCH
  __builtin_cpu_init();
  return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#else
  return 0;
#endif
}

int detected_isa() {
  static const int isa = detect_isa();
  return isa;
}

// The per-column epilogue of one panel (pointers already offset to the panel's columns).
template <class T>
struct Epi {
  const T* bias;
  const T* scale;  // nullptr when the layer has no affine
  const T* shift;
  Act act;
  T alpha;
};

template <class T>
inline T epi_scalar(T v, index_t j, const Epi<T>& e) {
  v = v + e.bias[j];
  if (e.scale) v = v * e.scale[j] + e.shift[j];
  // `v < 0` is false for NaN, so NaN propagates exactly as torch's relu does.
  if (e.act == Act::relu) v = v < T(0) ? T(0) : v;
  else if (e.act == Act::leaky_relu) v = v < T(0) ? v * e.alpha : v;
  return v;
}

// ---- portable kernels ------------------------------------------------------------------

template <class T, int MR>
void tile_generic(const T* FL_RESTRICT x, index_t ldx, const T* FL_RESTRICT wp, index_t K,
                  T* FL_RESTRICT y, index_t ldy, const Epi<T>& e) {
  constexpr index_t NR = panel_width<T>();
  T acc[MR][NR] = {};
  for (index_t k = 0; k < K; ++k) {
    const T* wk = wp + k * NR;
    for (int r = 0; r < MR; ++r) {
      const T a = x[r * ldx + k];
      for (index_t j = 0; j < NR; ++j) acc[r][j] += a * wk[j];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (index_t j = 0; j < NR; ++j) y[r * ldy + j] = epi_scalar(acc[r][j], j, e);
}

// Lane layout shared by both dot flavours: lane l of accumulator i sums k = S*t + L*i + l.
template <class T>
constexpr index_t dot_lanes() {
  return sizeof(T) == 4 ? 8 : 4;
}

template <class T>
T dot_generic(const T* FL_RESTRICT x, const T* FL_RESTRICT w, index_t K) {
  constexpr index_t L = dot_lanes<T>();
  T acc[4][L] = {};
  index_t k = 0;
  for (; k + 4 * L <= K; k += 4 * L)
    for (int i = 0; i < 4; ++i)
      for (index_t l = 0; l < L; ++l) acc[i][l] += x[k + L * i + l] * w[k + L * i + l];
  T lanes[L];
  for (index_t l = 0; l < L; ++l) lanes[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
  T s = 0;
  for (index_t l = 0; l < L; ++l) s += lanes[l];
  for (; k < K; ++k) s += x[k] * w[k];
  return s;
}

// ---- AVX2 + FMA kernels ----------------------------------------------------------------
#ifdef FL_X86_DISPATCH

struct F32x8 {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  FL_AVX2 static V zero() { return _mm256_setzero_ps(); }
  FL_AVX2 static V load(const T* p) { return _mm256_loadu_ps(p); }
  FL_AVX2 static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  FL_AVX2 static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  FL_AVX2 static V set1(T a) { return _mm256_set1_ps(a); }
  FL_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  FL_AVX2 static V add(V a, V b) { return _mm256_add_ps(a, b); }
  FL_AVX2 static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  FL_AVX2 static V neg_mask(V a) { return _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_LT_OQ); }
  FL_AVX2 static V blend(V a, V b, V m) { return _mm256_blendv_ps(a, b, m); }
  FL_AVX2 static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  FL_AVX2 static V bor(V a, V b) { return _mm256_or_ps(a, b); }
  FL_AVX2 static bool all_zero(V a) { return _mm256_testz_si256(_mm256_castps_si256(a), _mm256_castps_si256(a)); }
};

struct F64x4 {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  FL_AVX2 static V zero() { return _mm256_setzero_pd(); }
  FL_AVX2 static V load(const T* p) { return _mm256_loadu_pd(p); }
  FL_AVX2 static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  FL_AVX2 static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  FL_AVX2 static V set1(T a) { return _mm256_set1_pd(a); }
  FL_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  FL_AVX2 static V add(V a, V b) { return _mm256_add_pd(a, b); }
  FL_AVX2 static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  FL_AVX2 static V neg_mask(V a) { return _mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_LT_OQ); }
  FL_AVX2 static V blend(V a, V b, V m) { return _mm256_blendv_pd(a, b, m); }
  FL_AVX2 static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  FL_AVX2 static V bor(V a, V b) { return _mm256_or_pd(a, b); }
  FL_AVX2 static bool all_zero(V a) { return _mm256_testz_si256(_mm256_castpd_si256(a), _mm256_castpd_si256(a)); }
};

template <class S>
FL_AVX2 inline typename S::V epi_vec(typename S::V v, const typename S::T* bias, const Epi<typename S::T>& e,
                                     index_t j) {
  using V = typename S::V;
  v = S::add(v, S::load(bias + j));
  if (e.scale) v = S::add(S::mul(v, S::load(e.scale + j)), S::load(e.shift + j));
  if (e.act == Act::relu) {
    v = S::blend(v, S::zero(), S::neg_mask(v));
  } else if (e.act == Act::leaky_relu) {
    const V m = S::neg_mask(v);
    v = S::blend(v, S::mul(v, S::set1(e.alpha)), m);
  }
  return v;
}

// Up to six rows x one panel (two vectors). The twelve accumulators are named variables,
// not an array: GCC keeps an array of vectors in memory and stores it every iteration.
// Rows past `mr` re-read row 0 (valid memory) and are simply not stored.
#define FL_ROW_FMA(i)                          \
  {                                            \
    const V b = S::bcast(x##i + k);            \
    a##i##0 = S::fma(b, w0, a##i##0);          \
    a##i##1 = S::fma(b, w1, a##i##1);          \
  }
#define FL_ROW_STORE(i)                                           \
  if (i < mr) {                                                   \
    S::store(y + i * ldy, epi_vec<S>(a##i##0, e.bias, e, 0));     \
    S::store(y + i * ldy + W, epi_vec<S>(a##i##1, e.bias, e, W)); \
  }
template <class S>
FL_AVX2 void tile_avx2(const typename S::T* FL_RESTRICT x, index_t ldx, index_t mr,
                       const typename S::T* FL_RESTRICT wp, index_t K, typename S::T* FL_RESTRICT y,
                       index_t ldy, const Epi<typename S::T>& e) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W;
  const T* x0 = x;
  const T* x1 = x + (mr > 1 ? ldx : 0);
  const T* x2 = x + (mr > 2 ? 2 * ldx : 0);
  const T* x3 = x + (mr > 3 ? 3 * ldx : 0);
  const T* x4 = x + (mr > 4 ? 4 * ldx : 0);
  const T* x5 = x + (mr > 5 ? 5 * ldx : 0);
  V a00 = S::zero(), a01 = S::zero(), a10 = S::zero(), a11 = S::zero(), a20 = S::zero(), a21 = S::zero();
  V a30 = S::zero(), a31 = S::zero(), a40 = S::zero(), a41 = S::zero(), a50 = S::zero(), a51 = S::zero();
  for (index_t k = 0; k < K; ++k) {
    const V w0 = S::load(wp + k * 2 * W);
    const V w1 = S::load(wp + k * 2 * W + W);
    FL_ROW_FMA(0) FL_ROW_FMA(1) FL_ROW_FMA(2) FL_ROW_FMA(3) FL_ROW_FMA(4) FL_ROW_FMA(5)
  }
  FL_ROW_STORE(0) FL_ROW_STORE(1) FL_ROW_STORE(2) FL_ROW_STORE(3) FL_ROW_STORE(4) FL_ROW_STORE(5)
}
#undef FL_ROW_FMA
#undef FL_ROW_STORE

// One row x up to four panels: eight independent accumulators hide the FMA latency at
// batch 1. Same per-output order as tile_avx2, so batch-1 rows equal batch rows bit for bit.
// Panels past `np` re-read panel 0 and are not stored.
#define FL_PANEL_FMA(p)                                               \
  a##p##0 = S::fma(b, S::load(w##p + k * 2 * W), a##p##0);            \
  a##p##1 = S::fma(b, S::load(w##p + k * 2 * W + W), a##p##1);
#define FL_PANEL_STORE(p)                                                          \
  if (p < np) {                                                                    \
    S::store(y + p * 2 * W, epi_vec<S>(a##p##0, e.bias, e, p * 2 * W));           \
    S::store(y + p * 2 * W + W, epi_vec<S>(a##p##1, e.bias, e, p * 2 * W + W));   \
  }
template <class S>
FL_AVX2 void row_avx2(const typename S::T* FL_RESTRICT x, const typename S::T* FL_RESTRICT wp, index_t K,
                      index_t np, typename S::T* FL_RESTRICT y, const Epi<typename S::T>& e) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W;
  const index_t ps = K * 2 * W;
  const T* w0 = wp;
  const T* w1 = wp + (np > 1 ? ps : 0);
  const T* w2 = wp + (np > 2 ? 2 * ps : 0);
  const T* w3 = wp + (np > 3 ? 3 * ps : 0);
  V a00 = S::zero(), a01 = S::zero(), a10 = S::zero(), a11 = S::zero();
  V a20 = S::zero(), a21 = S::zero(), a30 = S::zero(), a31 = S::zero();
  for (index_t k = 0; k < K; ++k) {
    const V b = S::bcast(x + k);
    FL_PANEL_FMA(0) FL_PANEL_FMA(1) FL_PANEL_FMA(2) FL_PANEL_FMA(3)
  }
  FL_PANEL_STORE(0) FL_PANEL_STORE(1) FL_PANEL_STORE(2) FL_PANEL_STORE(3)
}
#undef FL_PANEL_FMA
#undef FL_PANEL_STORE

template <class S>
FL_AVX2 typename S::T dot_avx2(const typename S::T* FL_RESTRICT x, const typename S::T* FL_RESTRICT w, index_t K) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::W;
  V a0 = S::zero(), a1 = S::zero(), a2 = S::zero(), a3 = S::zero();
  index_t k = 0;
  for (; k + 4 * L <= K; k += 4 * L) {
    a0 = S::fma(S::load(x + k), S::load(w + k), a0);
    a1 = S::fma(S::load(x + k + L), S::load(w + k + L), a1);
    a2 = S::fma(S::load(x + k + 2 * L), S::load(w + k + 2 * L), a2);
    a3 = S::fma(S::load(x + k + 3 * L), S::load(w + k + 3 * L), a3);
  }
  T lanes[L];
  S::store(lanes, S::add(S::add(a0, a1), S::add(a2, a3)));
  T s = 0;
  for (int l = 0; l < L; ++l) s += lanes[l];
  for (; k < K; ++k) s += x[k] * w[k];
  return s;
}

// x - x is +0 for finite x and NaN otherwise; OR-ing the bit patterns keeps any NaN.
template <class S>
FL_AVX2 bool all_finite_avx2(const typename S::T* x, index_t n) {
  using V = typename S::V;
  constexpr int W = S::W;
  V acc0 = S::zero(), acc1 = S::zero();
  index_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    const V a = S::load(x + j), b = S::load(x + j + W);
    acc0 = S::bor(acc0, S::sub(a, a));
    acc1 = S::bor(acc1, S::sub(b, b));
  }
  if (!S::all_zero(S::bor(acc0, acc1))) return false;
  for (; j < n; ++j)
    if (!std::isfinite(x[j])) return false;
  return true;
}

template <class T>
struct AvxOf;
template <>
struct AvxOf<float> {
  using S = F32x8;
};
template <>
struct AvxOf<double> {
  using S = F64x4;
};

template <class T>
FL_AVX2 void gemm_avx2(const DenseLayer<T>& L, const T* x, index_t ldx, index_t n, T* y, index_t ldy) {
  using S = typename AvxOf<T>::S;
  constexpr index_t NR = panel_width<T>();
  const index_t K = L.in;
  const index_t panels = L.out_pad / NR;
  const T* sc = L.scale.empty() ? nullptr : L.scale.data();
  const T* sh = L.shift.empty() ? nullptr : L.shift.data();
  // Full row tiles go panel by panel: one K x NR weight panel stays in L1 while the
  // block's rows stream past it (the order of the tiles does not change any sum).
  const index_t full = n / kMR * kMR;
  for (index_t p = 0; p < panels && full > 0; ++p) {
    const Epi<T> e{L.bias.data() + p * NR, sc ? sc + p * NR : nullptr, sh ? sh + p * NR : nullptr, L.act, L.alpha};
    const T* wp = L.w.data() + p * K * NR;
    for (index_t r0 = 0; r0 < full; r0 += kMR) tile_avx2<S>(x + r0 * ldx, ldx, kMR, wp, K, y + r0 * ldy + p * NR, ldy, e);
  }
  for (index_t r0 = full; r0 < n; r0 += kMR) {
    const index_t mr = std::min(kMR, n - r0);
    const T* xr = x + r0 * ldx;
    T* yr = y + r0 * ldy;
    if (mr == 1) {
      for (index_t p = 0; p < panels; p += 4) {
        const Epi<T> e{L.bias.data() + p * NR, sc ? sc + p * NR : nullptr, sh ? sh + p * NR : nullptr, L.act, L.alpha};
        row_avx2<S>(xr, L.w.data() + p * K * NR, K, std::min<index_t>(4, panels - p), yr + p * NR, e);
      }
      continue;
    }
    for (index_t p = 0; p < panels; ++p) {
      const Epi<T> e{L.bias.data() + p * NR, sc ? sc + p * NR : nullptr, sh ? sh + p * NR : nullptr, L.act, L.alpha};
      tile_avx2<S>(xr, ldx, mr, L.w.data() + p * K * NR, K, yr + p * NR, ldy, e);
    }
  }
}

template <class T>
FL_AVX2 void dot_layer_avx2(const DenseLayer<T>& L, const T* x, index_t ldx, index_t n, T* y, index_t ldy) {
  using S = typename AvxOf<T>::S;
  const Epi<T> e{L.bias.data(), L.scale.empty() ? nullptr : L.scale.data(),
                 L.shift.empty() ? nullptr : L.shift.data(), L.act, L.alpha};
  for (index_t r = 0; r < n; ++r)
    for (index_t j = 0; j < L.out; ++j)
      y[r * ldy + j] = epi_scalar(dot_avx2<S>(x + r * ldx, L.w.data() + j * L.in, L.in), j, e);
}
#endif  // FL_X86_DISPATCH

template <class T>
void gemm_generic(const DenseLayer<T>& L, const T* x, index_t ldx, index_t n, T* y, index_t ldy) {
  constexpr index_t NR = panel_width<T>();
  const index_t K = L.in;
  const index_t panels = L.out_pad / NR;
  const T* sc = L.scale.empty() ? nullptr : L.scale.data();
  const T* sh = L.shift.empty() ? nullptr : L.shift.data();
  for (index_t r0 = 0; r0 < n; r0 += kMR) {
    const index_t mr = std::min(kMR, n - r0);
    for (index_t p = 0; p < panels; ++p) {
      const Epi<T> e{L.bias.data() + p * NR, sc ? sc + p * NR : nullptr, sh ? sh + p * NR : nullptr, L.act, L.alpha};
      const T* xr = x + r0 * ldx;
      const T* wp = L.w.data() + p * K * NR;
      T* yp = y + r0 * ldy + p * NR;
      switch (mr) {
        case 6: tile_generic<T, 6>(xr, ldx, wp, K, yp, ldy, e); break;
        case 5: tile_generic<T, 5>(xr, ldx, wp, K, yp, ldy, e); break;
        case 4: tile_generic<T, 4>(xr, ldx, wp, K, yp, ldy, e); break;
        case 3: tile_generic<T, 3>(xr, ldx, wp, K, yp, ldy, e); break;
        case 2: tile_generic<T, 2>(xr, ldx, wp, K, yp, ldy, e); break;
        default: tile_generic<T, 1>(xr, ldx, wp, K, yp, ldy, e); break;
      }
    }
  }
}

template <class T>
void dot_layer_generic(const DenseLayer<T>& L, const T* x, index_t ldx, index_t n, T* y, index_t ldy) {
  const Epi<T> e{L.bias.data(), L.scale.empty() ? nullptr : L.scale.data(),
                 L.shift.empty() ? nullptr : L.shift.data(), L.act, L.alpha};
  for (index_t r = 0; r < n; ++r)
    for (index_t j = 0; j < L.out; ++j)
      y[r * ldy + j] = epi_scalar(dot_generic(x + r * ldx, L.w.data() + j * L.in, L.in), j, e);
}

bool fused_act(Act a) { return a == Act::identity || a == Act::relu || a == Act::leaky_relu; }

}  // namespace

int active_isa() {
  const int o = g_isa_override.load(std::memory_order_relaxed);
  return o >= 0 ? o : detected_isa();
}

void set_isa(int isa) {
  g_isa_override.store(isa < 0 ? -1 : (isa > 0 ? detected_isa() : 0), std::memory_order_relaxed);
}

template <class T>
DenseLayer<T>::DenseLayer(View2D<const T> weights, View1D<const T> b, const std::vector<T>& scale_,
                          const std::vector<T>& shift_, Act act_, T alpha_)
    : in(weights.rows), out(weights.cols), act(act_), alpha(alpha_) {
  require(in > 0 && out > 0, "dense layer needs at least one input and one output");
  require(b.size == out, "dense layer: bias length does not match the number of outputs");
  require(scale_.size() == shift_.size() && (scale_.empty() || static_cast<index_t>(scale_.size()) == out),
          "dense layer: affine scale/shift length does not match the number of outputs");
  constexpr index_t NR = panel_width<T>();
  dot = out < kDotMaxOut;
  out_pad = dot ? out : (out + NR - 1) / NR * NR;
  bias.assign(static_cast<size_t>(out_pad), T(0));
  for (index_t j = 0; j < out; ++j) bias[static_cast<size_t>(j)] = b[j];
  if (!scale_.empty()) {
    scale.assign(static_cast<size_t>(out_pad), T(1));
    shift.assign(static_cast<size_t>(out_pad), T(0));
    std::copy(scale_.begin(), scale_.end(), scale.begin());
    std::copy(shift_.begin(), shift_.end(), shift.begin());
  }
  w.assign(static_cast<size_t>(in * out_pad), T(0));
  if (dot) {
    for (index_t j = 0; j < out; ++j)
      for (index_t k = 0; k < in; ++k) w[static_cast<size_t>(j * in + k)] = weights(k, j);
  } else {
    for (index_t j = 0; j < out; ++j) {
      const index_t p = j / NR, c = j % NR;
      for (index_t k = 0; k < in; ++k) w[static_cast<size_t>((p * in + k) * NR + c)] = weights(k, j);
    }
  }
}

template <class T>
void DenseLayer<T>::forward(const T* x, index_t ldx, index_t n, T* y, index_t ldy) const {
  if (n <= 0) return;
#ifdef FL_X86_DISPATCH
  if (active_isa() == 1) {
    if (dot) dot_layer_avx2(*this, x, ldx, n, y, ldy);
    else gemm_avx2(*this, x, ldx, n, y, ldy);
  } else
#endif
  {
    if (dot) dot_layer_generic(*this, x, ldx, n, y, ldy);
    else gemm_generic(*this, x, ldx, n, y, ldy);
  }
  if (!fused_act(act)) apply_activation(act, alpha, y, n, out, ldy);
}

template <class T>
void apply_activation(Act act, T alpha, T* y, index_t n, index_t cols, index_t ld) {
  // Evaluated in double (also for float32 layers) and rounded once: at most half an ulp
  // from the exact value, so float32 results stay within the contract of any faithful
  // float32 implementation (torch, keras).
  for (index_t r = 0; r < n; ++r) {
    T* row = y + r * ld;
    switch (act) {
      case Act::identity: break;
      case Act::relu:
        for (index_t j = 0; j < cols; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];
        break;
      case Act::leaky_relu:
        for (index_t j = 0; j < cols; ++j) row[j] = row[j] < T(0) ? row[j] * alpha : row[j];
        break;
      case Act::tanh:
        for (index_t j = 0; j < cols; ++j) row[j] = static_cast<T>(std::tanh(static_cast<double>(row[j])));
        break;
      case Act::sigmoid:
        for (index_t j = 0; j < cols; ++j) row[j] = static_cast<T>(1.0 / (1.0 + std::exp(-static_cast<double>(row[j]))));
        break;
      case Act::silu:
        for (index_t j = 0; j < cols; ++j) {
          const double v = row[j];
          row[j] = static_cast<T>(v / (1.0 + std::exp(-v)));
        }
        break;
      case Act::gelu_erf:
        for (index_t j = 0; j < cols; ++j) {
          const double v = row[j];
          row[j] = static_cast<T>(v * 0.5 * (1.0 + std::erf(v * 0.70710678118654752440)));
        }
        break;
      case Act::gelu_tanh:
        for (index_t j = 0; j < cols; ++j) {
          const double v = row[j];
          // sqrt(2 / pi) and the 0.044715 cubic coefficient of the tanh approximation.
          const double inner = 0.79788456080286535588 * (v + 0.044715 * v * v * v);
          row[j] = static_cast<T>(0.5 * v * (1.0 + std::tanh(inner)));
        }
        break;
    }
  }
}

template <class T>
bool all_finite(const T* x, index_t n) {
#ifdef FL_X86_DISPATCH
  if (active_isa() == 1) return all_finite_avx2<typename AvxOf<T>::S>(x, n);
#endif
  bool ok = true;
  for (index_t j = 0; j < n; ++j) ok &= static_cast<bool>(std::isfinite(x[j]));
  return ok;
}

template struct DenseLayer<float>;
template bool all_finite<float>(const float*, index_t);
template bool all_finite<double>(const double*, index_t);
template struct DenseLayer<double>;
template void apply_activation<float>(Act, float, float*, index_t, index_t, index_t);
template void apply_activation<double>(Act, double, double*, index_t, index_t, index_t);

}  // namespace forgeline::nn
