#include "forgeline/trees.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "forgeline/parallel.hpp"

namespace forgeline::trees {

namespace {

// LightGBM's kZeroThreshold is declared `const double kZeroThreshold = 1e-35f;`: the float
// literal widened to double, which is not the same number as 1e-35.
constexpr double kZeroThreshold = static_cast<double>(1e-35f);
// Rows per block: the prepared block (rows x features doubles) and the accumulators stay in
// L1/L2 while every tree streams over it.
constexpr index_t kBlockRows = 256;
// Rows traversed together in the branch-free inner loop (independent loads in flight).
constexpr index_t kLanes = 8;
constexpr index_t kGrain = 512;
// Trees walked together for one row (latency path): more independent loads in flight.
constexpr index_t kRowLanes = 8;

template <class N>
inline std::uint32_t flags_of(const N& n) { return n.feature_flags >> kFlagShift; }
template <class N>
inline std::uint32_t feature_of(const N& n) { return n.feature_flags & kFeatureMask; }

// Largest float <= t (NaN stays NaN): for float x, x <= t  <=>  x <= down_f32(t).
inline float down_f32(double t) {
  if (std::isnan(t)) return std::numeric_limits<float>::quiet_NaN();
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

constexpr std::uint32_t kSpecial = kCategorical | kZeroMissing;

}  // namespace

Ensemble::Ensemble(const EnsembleSpec& s)
    : input_mode_(s.input_mode),
      cat_rule_(s.cat_rule),
      acc_f32_(s.accumulate_f32),
      n_features_(s.n_features),
      n_outputs_(s.n_outputs),
      leaf_dim_(s.leaf_dim),
      divisor_(s.divisor),
      link_(s.link),
      link_param_(s.link_param),
      divide_raw_(s.divide_raw) {
  require(s.link >= 0 && s.link <= 6, "unknown link");
  require(s.input_mode >= 0 && s.input_mode <= 2, "bad input mode");
  require(s.cat_rule >= 0 && s.cat_rule <= 2, "bad categorical rule");
  require(n_features_ >= 0 && n_features_ <= static_cast<index_t>(kFeatureMask), "bad n_features");
  require(n_outputs_ >= 1 && n_outputs_ <= (1 << 20), "bad n_outputs");
  require(leaf_dim_ == 1 || leaf_dim_ == n_outputs_, "leaf_dim must be 1 or n_outputs");
  require(std::isfinite(divisor_) && divisor_ >= 0.0, "bad divisor");
  const index_t T = s.tree_output.size;
  require(s.tree_offsets.size == T + 1, "tree_offsets must have n_trees + 1 entries");
  require(s.tree_weight.size == 0 || s.tree_weight.size == T, "tree_weight size");
  const index_t N = s.feature.size;
  require(N < (index_t{1} << 30), "too many nodes");
  require(s.threshold.size == N && s.left.size == N && s.right.size == N && s.flags.size == N &&
              s.cat_offset.size == N && s.cat_nwords.size == N,
          "node arrays must all have the same length");
  require(s.leaf_value.size == N * leaf_dim_, "leaf_value must have n_nodes * leaf_dim entries");
  require(s.base.size == n_outputs_, "base must have n_outputs entries");
  require(s.tree_offsets[0] == 0 && s.tree_offsets[T] == N, "tree_offsets must span the nodes");
  cat_bits_.resize(static_cast<size_t>(s.cat_bits.size));
  for (index_t i = 0; i < s.cat_bits.size; ++i) cat_bits_[static_cast<size_t>(i)] = s.cat_bits[i];
  for (index_t k = 0; k < n_outputs_; ++k) base_.push_back(s.base[k]);

  nodes_.reserve(static_cast<size_t>(N + T));
  std::vector<std::int32_t> order, stack_depth;
  std::vector<std::uint8_t> seen;
  for (index_t t = 0; t < T; ++t) {
    const index_t b = s.tree_offsets[t], e = s.tree_offsets[t + 1];
    require(b >= 0 && b < e && e <= N, "tree_offsets must increase within [0, n_nodes]");
    const index_t col = s.tree_output[t];
    require(leaf_dim_ != 1 ? col == 0 : (col >= 0 && col < n_outputs_), "tree_output out of range");
    const double w = s.tree_weight.size ? s.tree_weight[t] : 1.0;
    require(std::isfinite(w), "tree weight must be finite");
    out_col_.push_back(static_cast<std::int32_t>(col));
    const index_t n_local = e - b;
    seen.assign(static_cast<size_t>(n_local), 0);
    // Breadth-first re-layout so that both children of a node are adjacent. `order` holds
    // local ids in packed order; every node is reached once (else it is not a tree).
    const std::int32_t root = static_cast<std::int32_t>(nodes_.size());
    roots_.push_back(root);
    order.assign(1, 0);
    stack_depth.assign(1, 0);
    seen[0] = 1;
    int max_depth = 0;
    bool special = false;
    for (size_t q = 0; q < order.size(); ++q) {
      const index_t loc = order[q];
      const index_t g = b + loc;
      const std::int32_t f = s.feature[g];
      const std::uint32_t fl = s.flags[g];
      require((fl & ~std::uint32_t{kNanLeft | kCategorical | kZeroMissing | kDefaultLeft | kMemberLeft |
                                   kInvalidLeft}) == 0,
              "undefined node flag bits");
      PackedNode n{};
      const std::int32_t self = static_cast<std::int32_t>(nodes_.size());
      if (f < 0) {  // leaf
        n.threshold = std::numeric_limits<double>::quiet_NaN();
        n.feature_flags = kLeaf << kFlagShift;
        n.child = self - 1;
        leaf_slot_.push_back(static_cast<std::int32_t>(leaf_values_.size() / static_cast<size_t>(leaf_dim_)));
        for (index_t j = 0; j < leaf_dim_; ++j) {
          const double v = s.leaf_value[g * leaf_dim_ + j];
          require(!std::isnan(v), "leaf values must not be NaN");
          // Dart weights multiply each leaf as the source does; XGBoost works in float32.
          const double wv = acc_f32_ ? static_cast<double>(static_cast<float>(v) * static_cast<float>(w)) : v * w;
          leaf_values_.push_back(s.tree_weight.size ? wv : v);
        }
        max_depth = std::max(max_depth, stack_depth[q]);
        cat_off_.push_back(0);
        cat_nw_.push_back(0);
      } else {
        require(f < n_features_, "split feature index out of range");
        const std::int32_t l = s.left[g], r = s.right[g];
        require(l > 0 && l < n_local && r > 0 && r < n_local && l != r, "child index out of range");
        require(!seen[static_cast<size_t>(l)] && !seen[static_cast<size_t>(r)],
                "node reached twice: not a tree");
        require(order.size() + 2 <= static_cast<size_t>(n_local), "node reached twice");
        seen[static_cast<size_t>(l)] = seen[static_cast<size_t>(r)] = 1;
        double thr = s.threshold[g];
        if (fl & kCategorical) {
          const index_t off = s.cat_offset[g], nw = s.cat_nwords[g];
          require(off >= 0 && nw >= 0 && off + nw <= static_cast<index_t>(cat_bits_.size()),
                  "categorical bitset out of range");
          cat_off_.push_back(static_cast<std::int32_t>(off));
          cat_nw_.push_back(static_cast<std::int32_t>(nw));
          special = true;
        } else {
          require(!std::isnan(thr), "numeric threshold must not be NaN");
          if (s.xgb_less_than) {
            // float32 x < t  <=>  x <= largest float below t; nothing is below -inf.
            const float tf = static_cast<float>(thr);
            thr = std::isinf(tf) && tf < 0 ? std::numeric_limits<double>::quiet_NaN()
                                          : static_cast<double>(std::nextafter(tf, -std::numeric_limits<float>::infinity()));
          }
          cat_off_.push_back(0);
          cat_nw_.push_back(0);
          if (fl & kZeroMissing) special = true;
        }
        n.threshold = thr;
        n.feature_flags = static_cast<std::uint32_t>(f) | ((fl & 0x3Fu) << kFlagShift);
        // Children go at the end of the queue; they are packed in that order, adjacently.
        n.child = root + static_cast<std::int32_t>(order.size());
        order.push_back(l);
        order.push_back(r);
        stack_depth.push_back(stack_depth[q] + 1);
        stack_depth.push_back(stack_depth[q] + 1);
        leaf_slot_.push_back(-1);
      }
      nodes_.push_back(n);
    }
    require(order.size() == static_cast<size_t>(n_local), "unreachable nodes in a tree");
    depth_.push_back(max_depth);
    tree_special_.push_back(special ? 1 : 0);
  }
  leaf_values_f32_.assign(leaf_values_.begin(), leaf_values_.end());
  fnodes_.reserve(nodes_.size());
  for (const auto& n : nodes_) fnodes_.push_back({down_f32(n.threshold), n.feature_flags, n.child});
  build_qs();
  set_simd(true);
}

void Ensemble::set_simd(bool on) { simd_ = on && qs_.n_trees > 0 && cpu_has_avx512(); }

inline float Ensemble::prep_f(float v) const {
  if (input_mode_ == static_cast<int>(InputMode::kLightGBM))
    return std::fabs(v) <= static_cast<float>(kZeroThreshold) ? 0.0f : v;
  return v;
}

inline double Ensemble::prep(double v) const {
  if (input_mode_ == static_cast<int>(InputMode::kFloat32)) return static_cast<double>(static_cast<float>(v));
  if (input_mode_ == static_cast<int>(InputMode::kLightGBM)) return std::fabs(v) <= kZeroThreshold ? 0.0 : v;
  return v;
}

bool Ensemble::go_left_special(std::uint32_t fl, size_t i, double x, double thr) const {
  if (std::isnan(x)) return fl & kNanLeft;
  if (fl & kCategorical) {
    bool negative = cat_rule_ == static_cast<int>(CatRule::kTruncate) ? x <= -1.0 : x < 0.0;
    if (cat_rule_ == static_cast<int>(CatRule::kIntegral)) negative = negative || x != std::trunc(x);
    const double nbits = 32.0 * cat_nw_[i];
    if (negative || !(x < nbits)) return fl & kInvalidLeft;
    const auto c = static_cast<std::uint32_t>(std::max(x, 0.0));  // truncation, as C casts do
    const bool member = (cat_bits_[static_cast<size_t>(cat_off_[i]) + (c >> 5)] >> (c & 31u)) & 1u;
    return member == static_cast<bool>(fl & kMemberLeft);
  }
  // kZeroMissing: inputs in LightGBM's zero window were already mapped to 0.0 by prep().
  if (x == 0.0) return fl & kDefaultLeft;
  return x <= thr;
}

template <class Acc>
inline void Ensemble::finish_row(const Acc* acc, double* out, bool divide) const {
  for (index_t k = 0; k < n_outputs_; ++k) {
    double v = static_cast<double>(acc[k]);
    if (divide && divisor_ > 0.0) v /= divisor_;
    out[k] = v;
  }
}

template <bool Special, index_t L, class Node, class V>
inline void Ensemble::walk_lanes(const Node* nodes, std::int32_t* idx, const V* x, index_t lane_stride,
                                 int depth) const {
  // Branch-free lanes: leaves loop onto themselves, so stepping every lane until all of
  // them sit on a leaf needs no per-lane "is leaf" branch. Lane l reads x + l * lane_stride.
  for (int d = 0; d < depth; ++d) {
    std::uint32_t active = 0;
    for (index_t l = 0; l < L; ++l) {
      const Node& n = nodes[idx[l]];
      const V v = x[l * lane_stride + feature_of(n)];
      bool left;
      if (Special && FL_UNLIKELY(flags_of(n) & kSpecial)) {
        left = go_left_special(flags_of(n), static_cast<size_t>(idx[l]), v, n.threshold);
      } else {
        left = (v <= n.threshold) | ((v != v) & static_cast<bool>(flags_of(n) & kNanLeft));
      }
      idx[l] = n.child + 1 - static_cast<std::int32_t>(left);
      active |= ~n.feature_flags;
    }
    if (!(active & (kLeaf << kFlagShift))) break;
  }
}

template <class T, class Acc, class V>
void Ensemble::predict_block(View2D<const T> x, index_t r0, index_t r1, const double* base_margin,
                             double* out, index_t t0, index_t t1, V* xb, bool divide) const {
  const index_t nr = r1 - r0, nf = n_features_, K = n_outputs_;
  if constexpr (sizeof(V) == sizeof(float)) {
    for (index_t r = 0; r < nr; ++r)
      for (index_t f = 0; f < nf; ++f) xb[r * nf + f] = prep_f(static_cast<float>(x(r0 + r, f)));
  } else {
    for (index_t r = 0; r < nr; ++r)
      for (index_t f = 0; f < nf; ++f) xb[r * nf + f] = prep(static_cast<double>(x(r0 + r, f)));
  }
  using Node = NodeT<V>;
  const Node* nodes = node_array(static_cast<V*>(nullptr));
  Acc acc[kBlockRows * 8];
  std::vector<Acc> acc_big;
  Acc* a = acc;
  if (nr * K > kBlockRows * 8) {
    acc_big.resize(static_cast<size_t>(nr * K));
    a = acc_big.data();
  }
  for (index_t r = 0; r < nr; ++r)
    for (index_t k = 0; k < K; ++k)
      a[r * K + k] = static_cast<Acc>(base_margin ? base_margin[(r0 + r) * K + k] : base_[static_cast<size_t>(k)]);
  if (simd_ && t0 == 0 && t1 == n_trees()) {
    accumulate_qs<Acc, V>(xb, nr, a);
    for (index_t r = 0; r < nr; ++r) finish_row(a + r * K, out + (r0 + r) * K, divide);
    return;
  }
  const Acc* leaves = nullptr;
  if constexpr (sizeof(Acc) == sizeof(float)) leaves = leaf_values_f32_.data(); else leaves = leaf_values_.data();
  for (index_t t = t0; t < t1; ++t) {
    const std::int32_t root = roots_[static_cast<size_t>(t)];
    const int depth = depth_[static_cast<size_t>(t)];
    const bool special = tree_special_[static_cast<size_t>(t)];
    const index_t col = out_col_[static_cast<size_t>(t)];
    index_t r = 0;
    std::int32_t idx[kLanes];
    // Branch-free lanes: leaves loop onto themselves, so `depth` steps reach every leaf.
    for (; r + kLanes <= nr; r += kLanes) {
      for (index_t l = 0; l < kLanes; ++l) idx[l] = root;
      const V* xr = xb + r * nf;
      if (special) walk_lanes<true, kLanes>(nodes, idx, xr, nf, depth);
      else walk_lanes<false, kLanes>(nodes, idx, xr, nf, depth);
      for (index_t l = 0; l < kLanes; ++l) {
        const Acc* lv = leaves + static_cast<index_t>(leaf_slot_[static_cast<size_t>(idx[l])]) * leaf_dim_;
        Acc* ar = a + (r + l) * K;
        if (leaf_dim_ == 1) ar[col] += lv[0]; else for (index_t k = 0; k < K; ++k) ar[k] += lv[k];
      }
    }
    for (; r < nr; ++r) {
      const V* xr = xb + r * nf;
      std::int32_t i = root;
      while (!(flags_of(nodes[i]) & kLeaf)) {
        const Node& n = nodes[i];
        const V v = xr[feature_of(n)];
        bool left;
        if (flags_of(n) & kSpecial) left = go_left_special(flags_of(n), static_cast<size_t>(i), v, n.threshold);
        else left = (v <= n.threshold) | ((v != v) & static_cast<bool>(flags_of(n) & kNanLeft));
        i = n.child + 1 - static_cast<std::int32_t>(left);
      }
      const Acc* lv = leaves + static_cast<index_t>(leaf_slot_[static_cast<size_t>(i)]) * leaf_dim_;
      Acc* ar = a + r * K;
      if (leaf_dim_ == 1) ar[col] += lv[0]; else for (index_t k = 0; k < K; ++k) ar[k] += lv[k];
    }
  }
  for (index_t r = 0; r < nr; ++r) finish_row(a + r * K, out + (r0 + r) * K, divide);
}

template <class V>
void Ensemble::walk_group(index_t t, const V* xb, index_t n, std::int32_t* leaf) const {
  using Node = NodeT<V>;
  const Node* nodes = node_array(static_cast<V*>(nullptr));
  const std::int32_t root = roots_[static_cast<size_t>(t)];
  const int depth = depth_[static_cast<size_t>(t)];
  const bool special = tree_special_[static_cast<size_t>(t)];
  const index_t nf = n_features_;
  index_t r = 0;
  for (; r + kLanes <= n; r += kLanes) {
    std::int32_t* idx = leaf + r;
    for (index_t l = 0; l < kLanes; ++l) idx[l] = root;
    if (special) walk_lanes<true, kLanes>(nodes, idx, xb + r * nf, nf, depth);
    else walk_lanes<false, kLanes>(nodes, idx, xb + r * nf, nf, depth);
  }
  for (; r < n; ++r) {
    const V* xr = xb + r * nf;
    std::int32_t i = root;
    while (!(flags_of(nodes[i]) & kLeaf)) {
      const Node& nd = nodes[i];
      const V v = xr[feature_of(nd)];
      bool left;
      if (flags_of(nd) & kSpecial) left = go_left_special(flags_of(nd), static_cast<size_t>(i), v, nd.threshold);
      else left = (v <= nd.threshold) | ((v != v) & static_cast<bool>(flags_of(nd) & kNanLeft));
      i = nd.child + 1 - static_cast<std::int32_t>(left);
    }
    leaf[r] = i;
  }
}

template void Ensemble::walk_group<float>(index_t, const float*, index_t, std::int32_t*) const;
template void Ensemble::walk_group<double>(index_t, const double*, index_t, std::int32_t*) const;

template <class T>
void Ensemble::predict(View2D<const T> x, const double* base_margin, double* out, index_t t0,
                       index_t t1, int n_threads, bool divide) const {
  require(x.cols == n_features_, "wrong number of feature columns");
  require(t0 >= 0 && t0 <= t1 && t1 <= n_trees(), "tree range out of bounds");
  // float32 nodes are exact whenever the compared values are float32 numbers: always for
  // kFloat32 mode, and for LightGBM mode when the input itself is float32.
  const bool f32 = (input_mode_ == static_cast<int>(InputMode::kFloat32) ||
                   (input_mode_ == static_cast<int>(InputMode::kLightGBM) && sizeof(T) == sizeof(float)));
  // With the SIMD kernel on, a float64 block whose values all are float32 numbers (float32
  // data in a float64 frame or feature block) takes the float32 nodes too: twice the lanes.
  const bool probe = !f32 && simd_ && sizeof(T) == sizeof(double);
  parallel_for(x.rows, n_threads, kGrain, [&](index_t b, index_t e, index_t) {
    const size_t nb = static_cast<size_t>(kBlockRows * std::max<index_t>(n_features_, 1));
    std::vector<double> xb(f32 ? 0 : nb);
    std::vector<float> xf(f32 || probe ? nb : 0);
    for (index_t r = b; r < e; r += kBlockRows) {
      const index_t re = std::min(e, r + kBlockRows);
      bool block_f32 = f32;
      if (probe) {
        block_f32 = true;
        for (index_t i = r; i < re && block_f32; ++i)
          for (index_t f = 0; f < n_features_; ++f) {
            const double v = static_cast<double>(x(i, f));
            if (!(static_cast<double>(static_cast<float>(v)) == v || v != v)) { block_f32 = false; break; }
          }
      }
      if (block_f32) {
        if (acc_f32_) predict_block<T, float, float>(x, r, re, base_margin, out, t0, t1, xf.data(), divide);
        else predict_block<T, double, float>(x, r, re, base_margin, out, t0, t1, xf.data(), divide);
      } else {
        if (acc_f32_) predict_block<T, float, double>(x, r, re, base_margin, out, t0, t1, xb.data(), divide);
        else predict_block<T, double, double>(x, r, re, base_margin, out, t0, t1, xb.data(), divide);
      }
    }
  });
}

template <class Node, class V, class Acc>
void Ensemble::walk_row(const V* xs, Acc* acc) const {
  // Latency path: walk kRowLanes trees at a time without branches (one row's trees are
  // independent), then add their leaves in tree order.
  const index_t K = n_outputs_;
  const Node* nodes = node_array(static_cast<V*>(nullptr));
  const Acc* leaves;
  if constexpr (sizeof(Acc) == sizeof(float)) leaves = leaf_values_f32_.data(); else leaves = leaf_values_.data();
  for (index_t k = 0; k < K; ++k) acc[k] = static_cast<Acc>(base_[static_cast<size_t>(k)]);
  auto add = [&](size_t t, std::int32_t i) {
    const Acc* lv = leaves + static_cast<index_t>(leaf_slot_[static_cast<size_t>(i)]) * leaf_dim_;
    if (leaf_dim_ == 1) acc[out_col_[t]] += lv[0]; else for (index_t k = 0; k < K; ++k) acc[k] += lv[k];
  };
  const size_t n_trees = roots_.size();
  size_t t = 0;
  std::int32_t idx[kRowLanes];
  for (; t + kRowLanes <= n_trees; t += kRowLanes) {
    int depth = 0;
    bool special = false;
    for (index_t l = 0; l < kRowLanes; ++l) {
      idx[l] = roots_[t + static_cast<size_t>(l)];
      depth = std::max(depth, depth_[t + static_cast<size_t>(l)]);
      special = special || tree_special_[t + static_cast<size_t>(l)];
    }
    if (special) walk_lanes<true, kRowLanes>(nodes, idx, xs, 0, depth);
    else walk_lanes<false, kRowLanes>(nodes, idx, xs, 0, depth);
    for (index_t l = 0; l < kRowLanes; ++l) add(t + static_cast<size_t>(l), idx[l]);
  }
  for (; t < n_trees; ++t) {
    std::int32_t i = roots_[t];
    while (!(flags_of(nodes[i]) & kLeaf)) {
      const Node& n = nodes[i];
      const V v = xs[feature_of(n)];
      bool left;
      if (flags_of(n) & kSpecial) left = go_left_special(flags_of(n), static_cast<size_t>(i), v, n.threshold);
      else left = (v <= n.threshold) | ((v != v) & static_cast<bool>(flags_of(n) & kNanLeft));
      i = n.child + 1 - static_cast<std::int32_t>(left);
    }
    add(t, i);
  }
}

template <class T>
void Ensemble::predict_row(const T* x, index_t stride, double* out, bool divide) const {
  const index_t K = n_outputs_, nf = n_features_;
  // float32 nodes (12 bytes, a smaller cache footprint) are exact whenever the compared
  // values are float32 numbers, as in predict(): also for a float64 row whose values all
  // are (the common case of float32 data scored through a float64 feature block).
  bool f32 = (input_mode_ == static_cast<int>(InputMode::kFloat32) ||
              (input_mode_ == static_cast<int>(InputMode::kLightGBM) && sizeof(T) == sizeof(float)));
  if (!f32 && sizeof(T) == sizeof(double)) {
    f32 = true;
    for (index_t f = 0; f < nf && f32; ++f) {
      const double v = static_cast<double>(x[f * stride]);
      f32 = static_cast<double>(static_cast<float>(v)) == v || v != v;
    }
  }
  constexpr index_t kSmall = 256;
  double xs_small[kSmall];
  float xf_small[kSmall];
  std::vector<double> xs_big;
  std::vector<float> xf_big;
  double* xs = xs_small;
  float* xf = xf_small;
  if (nf > kSmall) {
    if (f32) { xf_big.resize(static_cast<size_t>(nf)); xf = xf_big.data(); }
    else { xs_big.resize(static_cast<size_t>(nf)); xs = xs_big.data(); }
  }
  if (f32) {
    for (index_t f = 0; f < nf; ++f) xf[f] = prep_f(static_cast<float>(x[f * stride]));
  } else {
    for (index_t f = 0; f < nf; ++f) xs[f] = prep(static_cast<double>(x[f * stride]));
  }
  auto run = [&](auto* acc) {
    using Acc = std::remove_pointer_t<decltype(acc)>;
    if (simd_) {  // QuickScorer kernels on: the scalar one-row version
      if (f32 && !qs_.cbegin.empty()) qs_row_simd<Acc>(xf, acc);
      else if (f32) qs_row<float, Acc>(xf, acc);
      else qs_row<double, Acc>(xs, acc);
    } else if (f32) {
      walk_row<PackedNodeF, float, Acc>(xf, acc);
    } else {
      walk_row<PackedNode, double, Acc>(xs, acc);
    }
    finish_row(acc, out, divide);
  };
  if (K <= 64) {
    if (acc_f32_) { float acc[64]; run(acc); } else { double acc[64]; run(acc); }
  } else {
    if (acc_f32_) { std::vector<float> acc(static_cast<size_t>(K)); run(acc.data()); }
    else { std::vector<double> acc(static_cast<size_t>(K)); run(acc.data()); }
  }
}

template void Ensemble::predict<float>(View2D<const float>, const double*, double*, index_t, index_t, int, bool) const;
template void Ensemble::predict<double>(View2D<const double>, const double*, double*, index_t, index_t, int, bool) const;
template void Ensemble::predict_row<float>(const float*, index_t, double*, bool) const;
template void Ensemble::predict_row<double>(const double*, index_t, double*, bool) const;

namespace {

void link_row(int link, double a, double* v, index_t k) {
  switch (static_cast<Link>(link)) {
    case Link::kIdentity:
      return;
    case Link::kSigmoid:
      for (index_t j = 0; j < k; ++j) v[j] = 1.0 / (1.0 + std::exp(-a * v[j]));
      return;
    case Link::kExp:
      for (index_t j = 0; j < k; ++j) v[j] = std::exp(v[j]);
      return;
    case Link::kSoftmax: {
      double m = v[0];
      for (index_t j = 1; j < k; ++j) m = std::max(m, v[j]);
      double s = 0.0;
      for (index_t j = 0; j < k; ++j) { v[j] = std::exp(v[j] - m); s += v[j]; }
      for (index_t j = 0; j < k; ++j) v[j] /= s;
      return;
    }
    case Link::kSigmoidF32:
      for (index_t j = 0; j < k; ++j) {
        const float x = std::min(-static_cast<float>(v[j]), 88.7f);
        v[j] = static_cast<double>(1.0f / (std::exp(x) + 1.0f + 1e-16f));
      }
      return;
    case Link::kExpF32:
      for (index_t j = 0; j < k; ++j) v[j] = static_cast<double>(std::exp(static_cast<float>(v[j])));
      return;
    case Link::kSoftmaxF32: {
      // XGBoost: float exps, summed in double, divided by the sum rounded to float.
      float m = static_cast<float>(v[0]);
      for (index_t j = 1; j < k; ++j) m = std::max(m, static_cast<float>(v[j]));
      double s = 0.0;
      for (index_t j = 0; j < k; ++j) s += static_cast<double>(std::exp(static_cast<float>(v[j]) - m));
      const float sf = static_cast<float>(s);
      for (index_t j = 0; j < k; ++j) v[j] = static_cast<double>(std::exp(static_cast<float>(v[j]) - m) / sf);
      return;
    }
  }
  throw std::invalid_argument("unknown link");
}

}  // namespace

template <class T>
void Ensemble::predict_one(const T* x, index_t stride, double* out, bool value) const {
  predict_row<T>(x, stride, out, value || divide_raw_);
  if (value && link_) link_row(link_, link_param_, out, n_outputs_);
}

template void Ensemble::predict_one<float>(const float*, index_t, double*, bool) const;
template void Ensemble::predict_one<double>(const double*, index_t, double*, bool) const;

void apply_link(int link, double param, double* values, index_t rows, index_t k, int n_threads) {
  require(link >= 0 && link <= 6, "unknown link");
  parallel_for(rows, n_threads, 4096, [&](index_t b, index_t e, index_t) {
    for (index_t r = b; r < e; ++r) link_row(link, param, values + r * k, k);
  });
}

}  // namespace forgeline::trees
