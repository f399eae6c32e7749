// Tree-ensemble inference: one compact node layout for LightGBM, XGBoost and scikit-learn.
//
// Every source library's split semantics reduce to "double x <= double threshold" once the
// input is prepared per ensemble (see InputMode) and thresholds are normalised at build time:
//   * LightGBM compares in float64 with `<=`; values with |x| <= kZeroThreshold are read as
//     0.0 (LightGBM drops them from the sparse row it predicts on).
//   * XGBoost compares float32 x `<` float32 t. For float32 x that is x <= prev_float(t), which
//     the builder stores as the double threshold (t == -inf becomes NaN: never left).
//   * scikit-learn trees round x to float32 and compare with the float64 threshold `<=`.
// NaN goes to a per-node direction. LightGBM "Zero" missing-type nodes and categorical
// splits take a slower path flagged per node.
#pragma once
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::trees {

// How raw input values are turned into the doubles the nodes compare against.
enum class InputMode : int {
  kLightGBM = 0,  // double, |x| <= kZeroThreshold -> 0.0
  kFloat32 = 1,   // rounded to float32 (XGBoost, sklearn trees)
  kFloat64 = 2,   // as double (HistGradientBoosting)
};

// Node flags of the source (unpacked) representation.
enum NodeFlag : std::uint32_t {
  kNanLeft = 1u << 0,      // NaN goes left
  kCategorical = 1u << 1,  // categorical bitset split
  kZeroMissing = 1u << 2,  // LightGBM missing type Zero: x == 0 goes to default direction
  kDefaultLeft = 1u << 3,  // default direction for kZeroMissing
  kMemberLeft = 1u << 4,   // categorical: member of the bitset goes left (else right)
  kInvalidLeft = 1u << 5,  // categorical: negative / out-of-bitset category goes left
  kLeaf = 1u << 6,         // packed only
};

// Which values count as a negative (invalid) category.
enum class CatRule : int {
  kTruncate = 0,  // LightGBM: static_cast<int>(x) < 0, i.e. x <= -1
  kNegative = 1,  // XGBoost: x < 0
  kIntegral = 2,  // only non-negative integral values are categories (sklearn's encoder)
};

// How links turn raw margins into predictions.
enum class Link : int {
  kIdentity = 0,
  kSigmoid = 1,       // 1 / (1 + exp(-a x)) in double (LightGBM binary, ova, xentropy; sklearn)
  kSoftmax = 2,       // double softmax with max subtraction (LightGBM multiclass, sklearn)
  kExp = 3,           // exp in double
  kSigmoidF32 = 4,    // XGBoost's float32 sigmoid
  kSoftmaxF32 = 5,    // XGBoost's float32 softmax
  kExpF32 = 6,        // expf
};

// Source arrays describing an ensemble; see python/forgeline/models/trees.py for meaning.
struct EnsembleSpec {
  int input_mode = 0;
  int cat_rule = 0;
  bool accumulate_f32 = false;
  bool xgb_less_than = false;  // thresholds are XGBoost float32 `<` thresholds
  index_t n_features = 0;
  index_t n_outputs = 1;
  index_t leaf_dim = 1;        // 1: each tree adds to tree_output; n_outputs: vector leaves
  double divisor = 0.0;        // if > 0, raw margins are divided by it at the end
  View1D<const std::int64_t> tree_offsets;  // T + 1
  View1D<const std::int32_t> tree_output;   // T
  View1D<const double> tree_weight;         // T, or empty (weights of 1)
  View1D<const std::int32_t> feature;       // N
  View1D<const double> threshold;           // N
  View1D<const std::int32_t> left;          // N, tree-local
  View1D<const std::int32_t> right;         // N, tree-local
  View1D<const std::uint32_t> flags;        // N
  View1D<const std::int32_t> cat_offset;    // N
  View1D<const std::int32_t> cat_nwords;    // N
  View1D<const std::uint32_t> cat_bits;     // any
  View1D<const double> leaf_value;          // N * leaf_dim
  View1D<const double> base;                // n_outputs
  int link = 0;                // Link applied by predict_one(value=true)
  double link_param = 1.0;
  bool divide_raw = true;      // whether raw margins are divided by `divisor` too
};

inline constexpr std::uint32_t kFeatureMask = 0xFFFFFFu;  // feature bits of feature_flags
inline constexpr int kFlagShift = 24;                      // NodeFlag bits start here

// Packed node: right child = child + 1. Leaves point to themselves (threshold NaN, child =
// self - 1), so a fixed number of steps per tree needs no "is leaf" branch.
template <class V>
struct NodeT {
  V threshold;
  std::uint32_t feature_flags;  // feature in the low 24 bits, NodeFlag bits << 24
  std::int32_t child;
};
using PackedNode = NodeT<double>;
// float32 copy of the nodes: thresholds rounded down to the largest float <= t, so for
// float32-valued inputs `x <= t_f` is exactly `x <= t`. 12 bytes a node, half the block size.
using PackedNodeF = NodeT<float>;

// QuickScorer index (trees_qs.cpp). A tree qualifies when it has at most 64 leaves, no
// categorical or Zero-missing node and no NaN or +inf threshold. Its leaves are numbered left
// to right, and each split node carries the bitmask that clears its left subtree's leaves.
// A row's exit leaf is the lowest bit left after AND-ing the masks of all the nodes that
// send it right (QuickScorer): x > threshold, with NaN read as -inf at nodes whose NaN goes
// left and as +inf where it goes right (exact: no threshold is NaN or +inf). AND commutes,
// so the order of the nodes does not matter; the trees are still summed in tree order.
template <class V>
struct QsNode {
  V threshold;
  std::uint32_t xoff;  // feature * 16, plus n_features * 16 when NaN goes right
  std::uint64_t mask;
};
struct QsIndex {
  index_t n_trees = 0;                       // qualifying trees
  std::vector<std::int32_t> tree_qs;         // per tree: qualifying index or -1
  std::vector<std::int64_t> begin;           // n_trees + 1, into nodes_f / nodes_d
  std::vector<QsNode<float>> nodes_f;        // thresholds of the float32 node copy
  std::vector<QsNode<double>> nodes_d;
  std::vector<std::int32_t> leaf_slot;       // qualifying tree * 64 + leaf bit -> leaf slot
  std::vector<double> leaf_val_d;            // ... -> first leaf value (double / float)
  std::vector<float> leaf_val_f;
  // One row at a time (latency path, scalar): the same nodes listed per feature by
  // ascending threshold, scanned while threshold < x, plus per feature the nodes whose NaN
  // goes right.
  std::vector<std::int64_t> fbegin, nbegin;  // n_features + 1 each
  std::vector<float> fthr_f;
  std::vector<double> fthr_d;
  std::vector<std::uint32_t> ftree, ntree;
  std::vector<std::uint64_t> fmask, nmask;
  // One row, AVX-512, n_features <= 64: each tree's nodes in chunks of 16 lanes (padding
  // lanes never fire); the row sits in four registers and a permute fetches the lanes' values.
  std::vector<std::int64_t> cbegin;          // n_trees + 1, in chunks
  std::vector<std::uint8_t> cfeat;           // 16 per chunk (< 64; bytes keep the stream small)
  std::vector<float> cthr;                   // 16 per chunk (float32 node copy)
  std::vector<std::uint64_t> cmask;          // 16 per chunk
  std::vector<std::uint16_t> cnan;           // per chunk: lanes whose NaN goes right
};

class Ensemble {
 public:
  explicit Ensemble(const EnsembleSpec& spec);

  index_t n_features() const { return n_features_; }
  index_t n_outputs() const { return n_outputs_; }
  index_t n_trees() const { return static_cast<index_t>(roots_.size()); }
  index_t n_nodes() const { return static_cast<index_t>(nodes_.size()); }

  // Raw margins into out (rows x n_outputs, C-contiguous). base_margin: optional per-row
  // starting values (rows x n_outputs) replacing `base`. Trees [t0, t1).
  template <class T>
  void predict(View2D<const T> x, const double* base_margin, double* out, index_t t0,
               index_t t1, int n_threads, bool divide = true) const;

  // Whether batches use the AVX-512 QuickScorer kernel (default: when the CPU has it and
  // some tree qualifies). Switching it off is for tests and benchmarks; results are equal.
  bool simd() const { return simd_; }
  void set_simd(bool on);
  index_t n_qs_trees() const { return qs_.n_trees; }

  // One row without the thread pool (latency path).
  template <class T>
  void predict_row(const T* x, index_t stride, double* out, bool divide = true) const;
  // One row, raw margins or linked values with the ensemble's own link settings.
  template <class T>
  void predict_one(const T* x, index_t stride, double* out, bool value) const;

 private:
  template <class T, class Acc, class V>
  void predict_block(View2D<const T> x, index_t r0, index_t r1, const double* base_margin,
                     double* out, index_t t0, index_t t1, V* scratch, bool divide) const;
  template <class Acc>
  void finish_row(const Acc* acc, double* out, bool divide) const;
  bool go_left_special(std::uint32_t fl, size_t i, double x, double thr) const;
  template <bool Special, index_t L, class Node, class V>
  void walk_lanes(const Node* nodes, std::int32_t* idx, const V* x, index_t lane_stride, int depth) const;
  template <class Node, class V, class Acc>
  void walk_row(const V* xs, Acc* acc) const;
  // Trees [t0, t1) over nr prepared rows (row-major, n_features apart) into acc (nr x K).
  template <class Acc, class V>
  void accumulate_qs(const V* xb, index_t nr, Acc* acc) const;
  // Leaf nodes of tree t for n <= 16 prepared rows.
  template <class V>
  void walk_group(index_t t, const V* xb, index_t n, std::int32_t* leaf) const;
  template <class V, class Acc>
  void qs_row(const V* xs, Acc* acc) const;
  template <class Acc>
  void qs_row_simd(const float* xs, Acc* acc) const;
  // One row's sum from its per-tree exit-leaf sets bv (walking the trees the kernel does
  // not take), in tree order: shared by both one-row QuickScorer paths.
  template <class V, class Acc>
  void qs_row_sum(const V* xs, const std::uint64_t* bv, Acc* acc) const;
  void build_qs();
  double prep(double v) const;
  float prep_f(float v) const;
  const NodeT<double>* node_array(double*) const { return nodes_.data(); }
  const NodeT<float>* node_array(float*) const { return fnodes_.data(); }

  int input_mode_;
  int cat_rule_;
  bool acc_f32_;
  index_t n_features_, n_outputs_, leaf_dim_;
  double divisor_;
  int link_;
  double link_param_;
  bool divide_raw_;
  std::vector<PackedNode> nodes_;
  std::vector<PackedNodeF> fnodes_;
  std::vector<std::int32_t> leaf_slot_;  // node -> index into leaf_values_ / leaf_dim
  std::vector<double> leaf_values_;      // weighted leaf values, leaf_dim per leaf
  std::vector<float> leaf_values_f32_;
  std::vector<std::int32_t> roots_;
  std::vector<std::int32_t> depth_;
  std::vector<std::int32_t> out_col_;
  std::vector<std::uint8_t> tree_special_;
  std::vector<std::uint32_t> cat_bits_;
  std::vector<std::int32_t> cat_off_, cat_nw_;  // per packed node (special nodes only)
  std::vector<double> base_;
  QsIndex qs_;
  bool simd_ = false;
};

// True when the CPU runs the AVX-512 kernels (avx512f/bw/vl/dq), checked at run time.
bool cpu_has_avx512();

// Applies a link in place over rows x k values (k = n_outputs), or rows x 1.
void apply_link(int link, double param, double* values, index_t rows, index_t k, int n_threads);

}  // namespace forgeline::trees
