// Network executor: row blocks through the op list in thread-local scratch.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "forgeline/mlp.hpp"
#include "forgeline/parallel.hpp"

namespace forgeline::nn {

template <class T>
Network<T>::Network(index_t n_in) : n_in_(n_in), width_(n_in), ld_(n_in) {
  require(n_in > 0, "network needs at least one input feature");
}

template <class T>
void Network<T>::add_dense(View2D<const T> weights, View1D<const T> bias, const std::vector<T>& scale,
                           const std::vector<T>& shift, Act act, T alpha) {
  require(weights.rows == width_, "dense layer input size does not match the previous layer's width");
  dense_.push_back(std::make_unique<DenseLayer<T>>(weights, bias, scale, shift, act, alpha));
  Op op;
  op.kind = Kind::dense;
  op.dense_index = static_cast<index_t>(dense_.size()) - 1;
  ops_.push_back(std::move(op));
  width_ = weights.cols;
  ld_ = std::max(ld_, dense_.back()->out_pad);
}

template <class T>
void Network<T>::add_activation(Act act, T alpha) {
  Op op;
  op.kind = Kind::activation;
  op.act = act;
  op.alpha = alpha;
  ops_.push_back(std::move(op));
}

template <class T>
void Network<T>::add_affine(const std::vector<T>& scale, const std::vector<T>& shift) {
  require(static_cast<index_t>(scale.size()) == width_ && static_cast<index_t>(shift.size()) == width_,
          "affine scale/shift length does not match the layer width");
  Op op;
  op.kind = Kind::affine;
  op.a = scale;
  op.b = shift;
  ops_.push_back(std::move(op));
}

template <class T>
void Network<T>::add_layernorm(const std::vector<T>& gamma, const std::vector<T>& beta, double eps) {
  require(gamma.empty() || static_cast<index_t>(gamma.size()) == width_, "layernorm weight length mismatch");
  require(beta.empty() || static_cast<index_t>(beta.size()) == width_, "layernorm bias length mismatch");
  require(eps >= 0 && std::isfinite(eps), "layernorm eps must be finite and >= 0");
  Op op;
  op.kind = Kind::layernorm;
  op.a = gamma;
  op.b = beta;
  op.eps = eps;
  ops_.push_back(std::move(op));
}

template <class T>
void Network<T>::add_softmax() {
  Op op;
  op.kind = Kind::softmax;
  ops_.push_back(std::move(op));
}

template <class T>
index_t Network<T>::block_rows() const {
  // Two ping-pong buffers of block x ld_ values should stay well inside L2.
  const index_t budget = 192 * 1024 / static_cast<index_t>(sizeof(T));
  index_t rows = budget / std::max<index_t>(ld_, 1);
  rows = std::max<index_t>(kMR, std::min<index_t>(rows, 240));
  return rows / kMR * kMR;
}

namespace {

template <class T>
void layernorm_row(T* row, index_t n, const std::vector<T>& g, const std::vector<T>& b, double eps) {
  // Statistics in double: at least as accurate as torch's float32 Welford, and exact enough
  // for the float64 contract.
  double mean = 0;
  for (index_t j = 0; j < n; ++j) mean += row[j];
  mean /= static_cast<double>(n);
  double var = 0;
  for (index_t j = 0; j < n; ++j) {
    const double d = row[j] - mean;
    var += d * d;
  }
  var /= static_cast<double>(n);
  const double rstd = 1.0 / std::sqrt(var + eps);
  for (index_t j = 0; j < n; ++j) {
    double v = (row[j] - mean) * rstd;
    if (!g.empty()) v = v * g[static_cast<size_t>(j)];
    if (!b.empty()) v = v + b[static_cast<size_t>(j)];
    row[j] = static_cast<T>(v);
  }
}

template <class T>
void softmax_row(T* row, index_t n) {
  double m = row[0];
  bool nan = std::isnan(m);
  for (index_t j = 1; j < n; ++j) {
    nan = nan || std::isnan(static_cast<double>(row[j]));
    m = std::max<double>(m, row[j]);
  }
  if (nan) {
    for (index_t j = 0; j < n; ++j) row[j] = static_cast<T>(NAN);
    return;
  }
  double s = 0;
  for (index_t j = 0; j < n; ++j) s += std::exp(row[j] - m);
  for (index_t j = 0; j < n; ++j) row[j] = static_cast<T>(std::exp(row[j] - m) / s);
}

template <class In>
bool row_finite(const In* row, index_t n, index_t stride) {
  if (stride == 1) return all_finite(row, n);
  bool ok = true;
  for (index_t j = 0; j < n; ++j) ok &= static_cast<bool>(std::isfinite(row[j * stride]));
  return ok;
}

template <class T>
struct Scratch {
  std::vector<T> a, b, in;
};

template <class T>
Scratch<T>& scratch() {
  thread_local Scratch<T> s;
  return s;
}

}  // namespace

template <class T>
template <class In>
index_t Network<T>::run_block(const In* x, index_t x_row_stride, index_t x_col_stride, index_t n, T* out,
                              bool check_finite) const {
  index_t bad = -1;
  if (check_finite) {
    for (index_t r = 0; r < n && bad < 0; ++r)
      if (!row_finite(x + r * x_row_stride, n_in_, x_col_stride)) bad = r;
  }
  Scratch<T>& s = scratch<T>();
  const size_t need = static_cast<size_t>(n * ld_);
  if (s.a.size() < need) s.a.resize(need);
  if (s.b.size() < need) s.b.resize(need);

  const T* cur;
  index_t ld;
  if (std::is_same<In, T>::value && x_col_stride == 1) {
    cur = reinterpret_cast<const T*>(x);
    ld = x_row_stride;
  } else {
    const size_t need_in = static_cast<size_t>(n * n_in_);
    if (s.in.size() < need_in) s.in.resize(need_in);
    for (index_t r = 0; r < n; ++r)
      for (index_t j = 0; j < n_in_; ++j)
        s.in[static_cast<size_t>(r * n_in_ + j)] = static_cast<T>(x[r * x_row_stride + j * x_col_stride]);
    cur = s.in.data();
    ld = n_in_;
  }
  index_t width = n_in_;
  T* bufs[2] = {s.a.data(), s.b.data()};
  // In-place ops need a writable copy when the current data is still the caller's input.
  auto writable = [&]() -> T* {
    if (cur == bufs[0] || cur == bufs[1]) return const_cast<T*>(cur);
    for (index_t r = 0; r < n; ++r) std::copy(cur + r * ld, cur + r * ld + width, bufs[0] + r * ld_);
    cur = bufs[0];
    ld = ld_;
    return bufs[0];
  };
  for (const Op& op : ops_) {
    switch (op.kind) {
      case Kind::dense: {
        const DenseLayer<T>& L = *dense_[static_cast<size_t>(op.dense_index)];
        T* dst = (cur == bufs[0]) ? bufs[1] : bufs[0];
        L.forward(cur, ld, n, dst, ld_);
        cur = dst;
        ld = ld_;
        width = L.out;
        break;
      }
      case Kind::activation: {
        T* y = writable();
        apply_activation(op.act, op.alpha, y, n, width, ld);
        break;
      }
      case Kind::affine: {
        T* y = writable();
        for (index_t r = 0; r < n; ++r)
          for (index_t j = 0; j < width; ++j)
            y[r * ld + j] = y[r * ld + j] * op.a[static_cast<size_t>(j)] + op.b[static_cast<size_t>(j)];
        break;
      }
      case Kind::layernorm: {
        T* y = writable();
        for (index_t r = 0; r < n; ++r) layernorm_row(y + r * ld, width, op.a, op.b, op.eps);
        break;
      }
      case Kind::softmax: {
        T* y = writable();
        for (index_t r = 0; r < n; ++r) softmax_row(y + r * ld, width);
        break;
      }
    }
  }
  for (index_t r = 0; r < n; ++r) std::copy(cur + r * ld, cur + r * ld + width, out + r * width);
  return bad;
}

template <class T>
template <class In>
index_t Network<T>::predict(View2D<const In> x, T* out, int n_threads, bool check_finite) const {
  require(x.cols == n_in_, "input has the wrong number of columns");
  // Rows are independent and every row's arithmetic is fixed, so the block size is free
  // to change with the batch: small batches are split across the threads instead of
  // running as one block.
  index_t block = block_rows();
  const index_t threads = resolve_threads(n_threads);
  if (x.rows >= 4 * kMR && threads > 1) {
    const index_t share = (x.rows + threads - 1) / threads;
    block = std::min(block, (share + kMR - 1) / kMR * kMR);
  }
  std::vector<index_t> bad(static_cast<size_t>(num_chunks(x.rows, block)), -1);
  parallel_for(x.rows, n_threads, block, [&](index_t b, index_t e, index_t k) {
    const index_t r = run_block(x.data + b * x.row_stride, x.row_stride, x.col_stride, e - b, out + b * width_,
                                check_finite);
    bad[static_cast<size_t>(k)] = r < 0 ? -1 : b + r;
  });
  for (index_t r : bad)
    if (r >= 0) return r;
  return -1;
}

template <class T>
template <class In>
index_t Network<T>::predict_row(const In* x, index_t x_stride, T* out, bool check_finite) const {
  return run_block(x, 0, x_stride, 1, out, check_finite);
}

template class Network<float>;
template class Network<double>;
template index_t Network<float>::predict<float>(View2D<const float>, float*, int, bool) const;
template index_t Network<float>::predict<double>(View2D<const double>, float*, int, bool) const;
template index_t Network<double>::predict<float>(View2D<const float>, double*, int, bool) const;
template index_t Network<double>::predict<double>(View2D<const double>, double*, int, bool) const;
template index_t Network<float>::predict_row<float>(const float*, index_t, float*, bool) const;
template index_t Network<float>::predict_row<double>(const double*, index_t, float*, bool) const;
template index_t Network<double>::predict_row<float>(const float*, index_t, double*, bool) const;
template index_t Network<double>::predict_row<double>(const double*, index_t, double*, bool) const;

}  // namespace forgeline::nn
