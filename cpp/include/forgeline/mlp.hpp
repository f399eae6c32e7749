// A feed-forward network as a flat list of ops (dense, activation, affine, layer norm,
// softmax), run over row blocks so that every intermediate stays in cache.
//
// Rows are independent and each dense output has a fixed summation order (linear.hpp), so
// the result of a row never depends on the block it lands in or on the thread count.
#pragma once
#include <memory>
#include <vector>

#include "forgeline/common.hpp"
#include "forgeline/linear.hpp"

namespace forgeline::nn {

template <class T>
class Network {
 public:
  explicit Network(index_t n_in);

  // weights (in, out) with in == current width; scale/shift empty or of length out.
  void add_dense(View2D<const T> weights, View1D<const T> bias, const std::vector<T>& scale,
                 const std::vector<T>& shift, Act act, T alpha);
  void add_activation(Act act, T alpha);
  // y = x * scale + shift per column (e.g. an eval-mode BatchNorm with no dense before it).
  void add_affine(const std::vector<T>& scale, const std::vector<T>& shift);
  // torch LayerNorm over the last dimension (biased variance); gamma/beta empty = identity.
  void add_layernorm(const std::vector<T>& gamma, const std::vector<T>& beta, double eps);
  // Row-wise softmax over the current width.
  void add_softmax();

  index_t n_in() const { return n_in_; }
  index_t n_out() const { return width_; }

  // out (n, n_out) C-contiguous. X may be float or double whatever T is: values are
  // converted to T first, as the source frameworks cast inputs to the model's dtype.
  // With check_finite, returns the first row holding a NaN or infinity (its outputs are
  // still computed), else -1: sources such as scikit-learn reject such rows, and the scan
  // runs on the block while it is in cache instead of as a separate pass.
  template <class In>
  index_t predict(View2D<const In> x, T* out, int n_threads, bool check_finite = false) const;

  // One row, inline on the calling thread, no pool: the latency path.
  template <class In>
  index_t predict_row(const In* x, index_t x_stride, T* out, bool check_finite = false) const;

 private:
  enum class Kind { dense, activation, affine, layernorm, softmax };
  struct Op {
    Kind kind = Kind::dense;
    index_t dense_index = -1;
    Act act = Act::identity;
    T alpha = 0;
    double eps = 0;
    std::vector<T> a, b;  // affine scale/shift or layernorm gamma/beta
  };

  template <class In>
  index_t run_block(const In* x, index_t x_row_stride, index_t x_col_stride, index_t n, T* out,
                    bool check_finite) const;
  index_t block_rows() const;

  index_t n_in_;
  index_t width_;
  index_t ld_;  // scratch row stride: the widest padded layer
  std::vector<Op> ops_;
  std::vector<std::unique_ptr<DenseLayer<T>>> dense_;
};

}  // namespace forgeline::nn
