// Dense (fully connected) layers: y = act((x @ W + b) * scale + shift), float32 and float64.
//
// Summation order. Every output y[r, j] is accumulated over k = 0..K-1 in one fixed order
// that depends only on the layer's shape and the CPU's instruction set, never on the
// number of rows in the call, the row block, the thread count or which tile the output
// falls in. Batch-1 and batch-N calls therefore give bit-identical rows.
//
// Kernels. Two families, picked per layer from its shape alone:
//  * "gemm" (out >= kDotMaxOut): W is packed into panels of NR columns (16 floats /
//    8 doubles, two AVX2 registers) laid out [panel][k][NR], so a row tile walks W
//    sequentially. A 6-row x NR-column register tile accumulates k in order with FMA.
//    Bias, the optional per-column affine (an eval-mode BatchNorm applied as torch does it)
//    and ReLU/LeakyReLU are applied in registers before the single store.
//  * "dot" (out < kDotMaxOut): per output a dot product with 4 vector accumulators
//    (strided lanes), reduced in a fixed tree, then the scalar tail in order.
// The AVX2+FMA versions are chosen at run time (no -march flags); other CPUs use portable
// loops with the same tiling. The two ISAs round differently (FMA), so results are
// deterministic per machine, and both are far inside the exactness contract.
//
// Own kernel or BLAS? Rule: the own kernel, for every shape and both dtypes; forgeline does
// not call BLAS. Measured per layer shape of the benchmark MLP (bench/peers_linear.py,
// "dense layer" rows; single-thread CPU time, BLAS limited to one thread with threadpoolctl,
// Zen 4 core, 2026-11-26): own fused dense+ReLU / (numpy OpenBLAS matmul + bias + ReLU) =
//   batch 64:   50->256 0.84 (f32) 0.90 (f64), 256->128 0.81 / 0.85, 128->1 0.43 / 0.53
//   batch 100k: 50->256 0.51 / 0.48,           256->128 0.78 / 0.71, 128->1 0.83 / 0.47
// so the own kernel wins everywhere; the bare BLAS matmul, before its bias and ReLU passes,
// is ahead only at 64 x 50->256 (by 10-18%) and loses that in the passes. The float32 gemm tile sustains ~92% of the
// core's FMA peak (117 GFLOPS measured with an FMA-only loop), so there is no headroom
// left that BLAS could claim. BLAS would also need full-size intermediates, cannot fuse the
// epilogue, does not promise a summation order independent of its thread count, and
// switches kernels with the batch size (batch-1 and batch-N rows would differ in bits).
// Tried and not kept: skipping the zero inputs after a ReLU (per-row nonzero lists, K
// blocked so the weights stay in L1, AVX2 and AVX-512 variants). It gives identical sums,
// but with no weight reuse across rows it is bound by load ports: at par with the dense
// tile at 50% zeros, and only ~20% faster at 85% zeros.
#pragma once
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::nn {

// Activation codes; the Python side uses the same integers.
enum class Act : int {
  identity = 0,
  relu = 1,
  leaky_relu = 2,
  tanh = 3,
  sigmoid = 4,
  silu = 5,
  gelu_erf = 6,
  gelu_tanh = 7,
};

bool valid_act(int code);

// Register tile height of the gemm kernel.
constexpr index_t kMR = 6;
// Layers with fewer outputs than this use the dot kernel.
constexpr index_t kDotMaxOut = 4;

template <class T>
constexpr index_t panel_width() {
  return sizeof(T) == 4 ? 16 : 8;
}

template <class T>
struct DenseLayer {
  index_t in = 0;
  index_t out = 0;
  index_t out_pad = 0;  // out rounded up to panel_width (gemm) or out (dot)
  bool dot = false;
  std::vector<T> w;      // dot: [out][in]; gemm: [out_pad / NR][in][NR], zero padded
  std::vector<T> bias;   // out_pad, zero padded
  std::vector<T> scale;  // empty, or out_pad: y = (acc + bias) * scale + shift
  std::vector<T> shift;
  Act act = Act::identity;
  T alpha = 0;  // LeakyReLU negative slope

  // weights is (in, out); bias has `out` entries; scale/shift are empty or have `out`.
  DenseLayer(View2D<const T> weights, View1D<const T> b, const std::vector<T>& scale_,
             const std::vector<T>& shift_, Act act_, T alpha_);

  // y[r, j] for r < n, j < out (gemm layers also write the padding columns up to out_pad,
  // so ldy must be >= out_pad). x has row stride ldx and at least `in` columns.
  void forward(const T* x, index_t ldx, index_t n, T* y, index_t ldy) const;
};

// Elementwise activation over an n x cols block (row stride ld), in place. Transcendental
// activations of float32 layers are evaluated in double and rounded once.
template <class T>
void apply_activation(Act act, T alpha, T* y, index_t n, index_t cols, index_t ld);

// True when none of the n contiguous values is NaN or infinite.
template <class T>
bool all_finite(const T* x, index_t n);

// Instruction set in use: 1 = AVX2+FMA, 0 = portable. set_isa(-1) restores detection;
// set_isa(0) forces the portable kernels (tests use it to cover both paths).
int active_isa();
void set_isa(int isa);

}  // namespace forgeline::nn
