// QuickScorer-style batch kernel for tree ensembles (see QsIndex in trees.hpp).
//
// Sixteen rows go through each tree together. For every split node, one AVX-512 compare of
// the sixteen feature values with the threshold gives the rows the node sends right, and a
// masked AND clears the node's left-subtree leaves in those rows' 64-bit leaf sets, which
// stay in two registers for the whole tree. The nodes are read in order with no
// data-dependent branch: no mispredictions and no dependent loads, unlike a tree walk.
//
// Trees that do not qualify (more than 64 leaves, categorical or Zero-missing nodes) are
// walked as before in the same pass, so every row still adds its trees' leaves in tree
// order: the summation order, and so the result, is the walk's, bit for bit.
// Without AVX-512 (checked at run time; no -march flags) the walking engine runs instead.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "forgeline/trees.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12's AVX-512 intrinsics seed their results with _mm*_undefined_*(), which it then flags
// as -Wmaybe-uninitialized once inlined under -fsanitize (the asan preset uses -Werror).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define FL_QS_X86 1
#define FL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512cd")))
#else
#define FL_QS_X86 0
#endif

namespace forgeline::trees {

namespace {

constexpr index_t kW = 16;  // rows per SIMD group

template <class N>
inline std::uint32_t flags_of(const N& n) { return n.feature_flags >> kFlagShift; }
template <class N>
inline std::uint32_t feature_of(const N& n) { return n.feature_flags & kFeatureMask; }

#if FL_QS_X86
// Exit-leaf sets of sixteen rows in one tree (n split nodes). xt: the group's values
// feature-major, 16 per feature, NaN as -inf, then again with NaN as +inf (QsNode::xoff).
template <class V>
FL_AVX512 inline void qs_sets(const QsNode<V>* nd, index_t n, const V* xt, __m512i& lo, __m512i& hi) {
  lo = _mm512_set1_epi64(-1);
  hi = lo;
  for (index_t j = 0; j < n; ++j) {
    const V* x = xt + nd[j].xoff;
    __mmask16 k;
    if constexpr (sizeof(V) == sizeof(float)) {
      k = _mm512_cmp_ps_mask(_mm512_loadu_ps(x), _mm512_set1_ps(nd[j].threshold), _CMP_GT_OQ);
    } else {
      const __m512d t = _mm512_set1_pd(nd[j].threshold);
      k = static_cast<__mmask16>(_mm512_cmp_pd_mask(_mm512_loadu_pd(x), t, _CMP_GT_OQ) |
                                 (static_cast<unsigned>(_mm512_cmp_pd_mask(_mm512_loadu_pd(x + 8), t, _CMP_GT_OQ)) << 8));
    }
    const __m512i m = _mm512_set1_epi64(static_cast<long long>(nd[j].mask));
    lo = _mm512_mask_and_epi64(lo, static_cast<__mmask8>(k), lo, m);
    hi = _mm512_mask_and_epi64(hi, static_cast<__mmask8>(k >> 8), hi, m);
  }
}

template <class V>
FL_AVX512 void qs_tree(const QsNode<V>* nd, index_t n, const V* xt, std::uint64_t* out) {
  __m512i lo, hi;
  qs_sets<V>(nd, n, xt, lo, hi);
  _mm512_storeu_si512(out, lo);
  _mm512_storeu_si512(out + 8, hi);
}

// Lowest set bit's index per 64-bit lane (every set is non-empty: the last leaf stays).
FL_AVX512 inline __m512i lowest_bit(__m512i s) {
  const __m512i lsb = _mm512_and_si512(s, _mm512_sub_epi64(_mm512_setzero_si512(), s));
  return _mm512_sub_epi64(_mm512_set1_epi64(63), _mm512_lzcnt_epi64(lsb));
}

// Consecutive qualifying trees [qa, qb), one output: each of the n (<= 16) rows adds its
// exit leaf's value (`vals`: 64 leaf values per tree, by bit) to its accumulator, tree after
// tree, one add per row and tree as the scalar loop does. The accumulators stay in registers
// over the run (through memory, each tree would wait on the previous tree's masked store).
template <class V, class Acc>
FL_AVX512 void qs_run_add(const QsNode<V>* nodes, const std::int64_t* begin, index_t qa, index_t qb,
                          const V* xt, const Acc* vals, Acc* acc, index_t n) {
  const auto rows = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : ((1u << n) - 1u));
  if constexpr (sizeof(Acc) == sizeof(double)) {
    const auto mlo = static_cast<__mmask8>(rows), mhi = static_cast<__mmask8>(rows >> 8);
    __m512d a = _mm512_maskz_loadu_pd(mlo, acc), b = _mm512_maskz_loadu_pd(mhi, acc + 8);
    for (index_t qt = qa; qt < qb; ++qt) {
      __m512i lo, hi;
      qs_sets<V>(nodes + begin[qt], begin[qt + 1] - begin[qt], xt, lo, hi);
      const Acc* v = vals + qt * 64;
      a = _mm512_add_pd(a, _mm512_mask_i64gather_pd(_mm512_setzero_pd(), 0xFF, lowest_bit(lo), v, 8));
      b = _mm512_add_pd(b, _mm512_mask_i64gather_pd(_mm512_setzero_pd(), 0xFF, lowest_bit(hi), v, 8));
    }
    _mm512_mask_storeu_pd(acc, mlo, a);
    _mm512_mask_storeu_pd(acc + 8, mhi, b);
  } else {
    __m512 a = _mm512_maskz_loadu_ps(rows, acc);
    for (index_t qt = qa; qt < qb; ++qt) {
      __m512i lo, hi;
      qs_sets<V>(nodes + begin[qt], begin[qt + 1] - begin[qt], xt, lo, hi);
      const Acc* v = vals + qt * 64;
      const __m256 glo = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), 0xFF, lowest_bit(lo), v, 4);
      const __m256 ghi = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), 0xFF, lowest_bit(hi), v, 4);
      a = _mm512_add_ps(a, _mm512_insertf32x8(_mm512_insertf32x8(_mm512_setzero_ps(), glo, 0), ghi, 1));
    }
    _mm512_mask_storeu_ps(acc, rows, a);
  }
}
#endif

}  // namespace

bool cpu_has_avx512() {
#if FL_QS_X86
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd");
  }();
  return ok;
#else
  return false;
#endif
}

void Ensemble::build_qs() {
  qs_ = QsIndex{};
  const index_t T = n_trees(), nf = n_features_;
  qs_.tree_qs.assign(static_cast<size_t>(T), -1);
  qs_.begin.assign(1, 0);
  std::vector<std::int32_t> leaves;
  struct Split { std::int32_t node, lo, hi; };
  std::vector<Split> splits;
  std::vector<std::int32_t> stack;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (index_t t = 0; t < T; ++t) {
    // <= 64 leaves implies depth <= 63, so the depth check also bounds the walk below.
    if (tree_special_[static_cast<size_t>(t)] || depth_[static_cast<size_t>(t)] > 63) continue;
    leaves.clear();
    splits.clear();
    bool ok = true;
    // In-order walk without recursion: a split is pushed again as ~(its index in splits),
    // popped once its left subtree is done, to close that subtree's leaf range.
    stack.assign(1, roots_[static_cast<size_t>(t)]);
    while (!stack.empty() && ok) {
      const std::int32_t i = stack.back();
      stack.pop_back();
      if (i < 0) {
        Split& s = splits[static_cast<size_t>(~i)];
        s.hi = static_cast<std::int32_t>(leaves.size());
        stack.push_back(nodes_[static_cast<size_t>(s.node)].child + 1);
        continue;
      }
      const PackedNode& n = nodes_[static_cast<size_t>(i)];
      if (flags_of(n) & kLeaf) {
        leaves.push_back(i);
        ok = leaves.size() <= 64;
        continue;
      }
      // NaN is read as +inf where it goes right: exact only below +inf thresholds.
      ok = n.threshold < kInf && fnodes_[static_cast<size_t>(i)].threshold < static_cast<float>(kInf);
      splits.push_back({i, static_cast<std::int32_t>(leaves.size()), 0});
      stack.push_back(~static_cast<std::int32_t>(splits.size() - 1));
      stack.push_back(n.child);
    }
    if (!ok) continue;
    const auto qt = qs_.n_trees++;
    qs_.tree_qs[static_cast<size_t>(t)] = static_cast<std::int32_t>(qt);
    for (size_t b = 0; b < 64; ++b) {
      const std::int32_t slot = leaf_slot_[static_cast<size_t>(leaves[std::min(b, leaves.size() - 1)])];
      qs_.leaf_slot.push_back(slot);
      const auto v = static_cast<size_t>(slot) * static_cast<size_t>(leaf_dim_);  // first output's value
      qs_.leaf_val_d.push_back(leaf_values_[v]);
      qs_.leaf_val_f.push_back(leaf_values_f32_[v]);
    }
    for (const Split& s : splits) {
      // hi - lo <= 63: the right subtree holds at least one leaf.
      const std::uint64_t left = ((std::uint64_t{1} << (s.hi - s.lo)) - 1) << s.lo;
      const auto node = static_cast<size_t>(s.node);
      const auto nan_right = !(flags_of(nodes_[node]) & kNanLeft);
      const auto xoff = static_cast<std::uint32_t>((feature_of(nodes_[node]) + (nan_right ? nf : 0)) * kW);
      qs_.nodes_f.push_back({fnodes_[node].threshold, xoff, ~left});
      qs_.nodes_d.push_back({nodes_[node].threshold, xoff, ~left});
    }
    qs_.begin.push_back(static_cast<std::int64_t>(qs_.nodes_f.size()));
  }
  // xoff is 32-bit: the kernel is off for models beyond it (about 134M features).
  if (2 * nf * kW >= (index_t{1} << 32)) qs_ = QsIndex{};
  if (qs_.n_trees == 0) return;

  // Per-feature lists for the one-row path, from the per-tree lists.
  struct Entry { std::uint32_t feature; std::uint32_t tree; index_t j; };
  std::vector<Entry> entries;
  entries.reserve(qs_.nodes_d.size());
  for (index_t qt = 0; qt < qs_.n_trees; ++qt)
    for (auto j = qs_.begin[static_cast<size_t>(qt)]; j < qs_.begin[static_cast<size_t>(qt) + 1]; ++j)
      entries.push_back({static_cast<std::uint32_t>((qs_.nodes_d[static_cast<size_t>(j)].xoff / kW) % nf),
                         static_cast<std::uint32_t>(qt), j});
  std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    if (a.feature != b.feature) return a.feature < b.feature;
    // down_f32 is monotone, so this order is ascending for the float thresholds too.
    const double ta = qs_.nodes_d[static_cast<size_t>(a.j)].threshold, tb = qs_.nodes_d[static_cast<size_t>(b.j)].threshold;
    return ta != tb ? ta < tb : a.j < b.j;
  });
  qs_.fbegin.assign(static_cast<size_t>(nf) + 1, 0);
  qs_.nbegin.assign(static_cast<size_t>(nf) + 1, 0);
  for (const Entry& en : entries) {
    const auto& d = qs_.nodes_d[static_cast<size_t>(en.j)];
    qs_.fthr_f.push_back(qs_.nodes_f[static_cast<size_t>(en.j)].threshold);
    qs_.fthr_d.push_back(d.threshold);
    qs_.ftree.push_back(en.tree);
    qs_.fmask.push_back(d.mask);
    ++qs_.fbegin[en.feature + 1];
    if (d.xoff >= nf * kW) ++qs_.nbegin[en.feature + 1];  // NaN goes right
  }
  for (const Entry& en : entries) {
    const auto& d = qs_.nodes_d[static_cast<size_t>(en.j)];
    if (d.xoff >= nf * kW) { qs_.ntree.push_back(en.tree); qs_.nmask.push_back(d.mask); }
  }
  for (index_t f = 0; f < nf; ++f) {
    qs_.fbegin[static_cast<size_t>(f) + 1] += qs_.fbegin[static_cast<size_t>(f)];
    qs_.nbegin[static_cast<size_t>(f) + 1] += qs_.nbegin[static_cast<size_t>(f)];
  }

  if (nf > 64) return;
  qs_.cbegin.assign(1, 0);
  for (index_t qt = 0; qt < qs_.n_trees; ++qt) {
    const auto b = qs_.begin[static_cast<size_t>(qt)], e = qs_.begin[static_cast<size_t>(qt) + 1];
    for (auto c = b; c < e; c += kW) {
      std::uint16_t nan = 0;
      for (index_t l = 0; l < kW; ++l) {
        if (c + l < e) {
          const auto& d = qs_.nodes_f[static_cast<size_t>(c + l)];
          qs_.cfeat.push_back(static_cast<std::uint8_t>((d.xoff / kW) % nf));
          qs_.cthr.push_back(d.threshold);
          qs_.cmask.push_back(d.mask);
          if (d.xoff >= nf * kW) nan = static_cast<std::uint16_t>(nan | (1u << l));
        } else {  // x > +inf never holds and the NaN bit is clear: the lane never fires
          qs_.cfeat.push_back(0);
          qs_.cthr.push_back(std::numeric_limits<float>::infinity());
          qs_.cmask.push_back(~std::uint64_t{0});
        }
      }
      qs_.cnan.push_back(nan);
    }
    qs_.cbegin.push_back(static_cast<std::int64_t>(qs_.cnan.size()));
  }
}

#if FL_QS_X86
namespace {

// Exit-leaf set of one row in one tree from its 16-lane node chunks [c0, c1). NaN: the
// lanes of a chunk whose NaN goes right fire on NaN (NaN-free rows skip that test).
template <bool HasNaN>
FL_AVX512 inline std::uint64_t qs_row_tree(const QsIndex& q, index_t c0, index_t c1, __m512 x0, __m512 x1,
                                           __m512 x2, __m512 x3) {
  __m512i lo = _mm512_set1_epi64(-1), hi = lo;
  const __m512i bit5 = _mm512_set1_epi32(32);
  for (index_t c = c0; c < c1; ++c) {
    // One row streams every chunk of every tree (hundreds of KB for T1) from L2 per call:
    // byte feature indices cut that stream by a fifth.
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q.cfeat.data() + c * kW)));
    const __m512 a = _mm512_permutex2var_ps(x0, idx, x1);  // features 0..31
    const __m512 b = _mm512_permutex2var_ps(x2, idx, x3);  // features 32..63
    const __m512 v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, bit5), a, b);
    __mmask16 right = _mm512_cmp_ps_mask(v, _mm512_loadu_ps(q.cthr.data() + c * kW), _CMP_GT_OQ);
    if constexpr (HasNaN)
      right = static_cast<__mmask16>(right | _mm512_mask_cmp_ps_mask(q.cnan[static_cast<size_t>(c)], v, v, _CMP_UNORD_Q));
    lo = _mm512_mask_and_epi64(lo, static_cast<__mmask8>(right), lo, _mm512_loadu_si512(q.cmask.data() + c * kW));
    hi = _mm512_mask_and_epi64(hi, static_cast<__mmask8>(right >> 8), hi, _mm512_loadu_si512(q.cmask.data() + c * kW + 8));
  }
  return static_cast<std::uint64_t>(_mm512_reduce_and_epi64(_mm512_and_si512(lo, hi)));
}

template <bool HasNaN>
FL_AVX512 void qs_row_trees(const QsIndex& q, const float* xr, std::uint64_t* bv) {
  const __m512 x0 = _mm512_load_ps(xr), x1 = _mm512_load_ps(xr + 16), x2 = _mm512_load_ps(xr + 32),
               x3 = _mm512_load_ps(xr + 48);
  for (index_t qt = 0; qt < q.n_trees; ++qt)
    bv[qt] = qs_row_tree<HasNaN>(q, q.cbegin[static_cast<size_t>(qt)], q.cbegin[static_cast<size_t>(qt) + 1],
                                 x0, x1, x2, x3);
}

FL_AVX512 void qs_row_all(const QsIndex& q, const float* xs, index_t nf, std::uint64_t* bv) {
  alignas(64) float xr[64] = {};
  std::memcpy(xr, xs, static_cast<size_t>(nf) * sizeof(float));
  const __m512 x0 = _mm512_load_ps(xr), x1 = _mm512_load_ps(xr + 16), x2 = _mm512_load_ps(xr + 32),
               x3 = _mm512_load_ps(xr + 48);
  const bool nan = (_mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(x1, x1, _CMP_UNORD_Q) |
                    _mm512_cmp_ps_mask(x2, x2, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(x3, x3, _CMP_UNORD_Q)) != 0;
  if (nan) qs_row_trees<true>(q, xr, bv); else qs_row_trees<false>(q, xr, bv);
}

}  // namespace
#endif

namespace {

// One row's per-tree leaf sets: on the stack for up to 1024 kernel trees (no allocation on
// the single-row path), on the heap beyond.
struct RowLeafSets {
  static constexpr index_t kSmall = 1024;
  std::uint64_t small[kSmall];
  std::vector<std::uint64_t> big;
  std::uint64_t* data;
  explicit RowLeafSets(index_t n) : data(small) {
    if (n > kSmall) {
      big.resize(static_cast<size_t>(n));
      data = big.data();
    }
  }
  RowLeafSets(const RowLeafSets&) = delete;
  RowLeafSets& operator=(const RowLeafSets&) = delete;
};

}  // namespace

template <class V, class Acc>
void Ensemble::qs_row_sum(const V* xs, const std::uint64_t* bv, Acc* acc) const {
  const index_t T = n_trees(), K = n_outputs_;
  const Acc* values;
  if constexpr (sizeof(Acc) == sizeof(float)) values = leaf_values_f32_.data(); else values = leaf_values_.data();
  for (index_t k = 0; k < K; ++k) acc[k] = static_cast<Acc>(base_[static_cast<size_t>(k)]);
  auto leaf = [&](index_t t) {
    const std::int32_t qt = qs_.tree_qs[static_cast<size_t>(t)];
    std::int32_t slot;
    if (qt >= 0) {
      slot = qs_.leaf_slot[static_cast<size_t>(qt) * 64 + static_cast<size_t>(__builtin_ctzll(bv[qt]))];
    } else {
      walk_group<V>(t, xs, 1, &slot);
      slot = leaf_slot_[static_cast<size_t>(slot)];
    }
    return values + static_cast<index_t>(slot) * leaf_dim_;
  };
  if (K == 1 && leaf_dim_ == 1) {
    // One output: the running sum stays in a register (through acc[] every tree's add would
    // wait on a store-to-load round trip). Same order, so the same sum.
    Acc s = acc[0];
    for (index_t t = 0; t < T; ++t) s += *leaf(t);
    acc[0] = s;
    return;
  }
  for (index_t t = 0; t < T; ++t) {
    const Acc* lv = leaf(t);
    if (leaf_dim_ == 1) acc[out_col_[static_cast<size_t>(t)]] += lv[0];
    else for (index_t k = 0; k < K; ++k) acc[k] += lv[k];
  }
}

template <class Acc>
void Ensemble::qs_row_simd(const float* xs, Acc* acc) const {
#if FL_QS_X86
  RowLeafSets sets(qs_.n_trees);
  std::uint64_t* bv = sets.data;
  qs_row_all(qs_, xs, n_features_, bv);
  qs_row_sum<float, Acc>(xs, bv, acc);
#else
  qs_row<float, Acc>(xs, acc);
#endif
}

template void Ensemble::qs_row_simd<float>(const float*, float*) const;
template void Ensemble::qs_row_simd<double>(const float*, double*) const;

template <class V, class Acc>
void Ensemble::qs_row(const V* xs, Acc* acc) const {
  // Scalar QuickScorer for one row: only the nodes that send the row right are touched
  // (about half), read in order; a walk instead chains a dependent load per level.
  const index_t nf = n_features_;
  RowLeafSets sets(qs_.n_trees);
  std::uint64_t* bv = sets.data;
  std::fill(bv, bv + qs_.n_trees, ~std::uint64_t{0});
  const V* thr;
  if constexpr (sizeof(V) == sizeof(float)) thr = qs_.fthr_f.data(); else thr = qs_.fthr_d.data();
  const std::uint32_t* tree = qs_.ftree.data();
  const std::uint64_t* mask = qs_.fmask.data();
  for (index_t f = 0; f < nf; ++f) {
    const V v = xs[f];
    if (v != v) {
      for (auto j = qs_.nbegin[static_cast<size_t>(f)]; j < qs_.nbegin[static_cast<size_t>(f) + 1]; ++j)
        bv[qs_.ntree[static_cast<size_t>(j)]] &= qs_.nmask[static_cast<size_t>(j)];
      continue;
    }
    const auto e = qs_.fbegin[static_cast<size_t>(f) + 1];
    for (auto j = qs_.fbegin[static_cast<size_t>(f)]; j < e && thr[j] < v; ++j) bv[tree[j]] &= mask[j];
  }
  qs_row_sum<V, Acc>(xs, bv, acc);
}

template void Ensemble::qs_row<float, float>(const float*, float*) const;
template void Ensemble::qs_row<float, double>(const float*, double*) const;
template void Ensemble::qs_row<double, float>(const double*, float*) const;
template void Ensemble::qs_row<double, double>(const double*, double*) const;

template <class Acc, class V>
void Ensemble::accumulate_qs(const V* xb, index_t nr, Acc* acc) const {
#if FL_QS_X86
  const index_t nf = n_features_, K = n_outputs_, T = n_trees();
  std::vector<V> xt(static_cast<size_t>(std::max<index_t>(nf, 1) * 2 * kW));
  alignas(64) std::uint64_t bv[kW];
  std::int32_t leaf[kW];
  const Acc* values;
  if constexpr (sizeof(Acc) == sizeof(float)) values = leaf_values_f32_.data(); else values = leaf_values_.data();
  const std::int32_t* qslot = qs_.leaf_slot.data();
  const QsNode<V>* qnodes;
  if constexpr (sizeof(V) == sizeof(float)) qnodes = qs_.nodes_f.data(); else qnodes = qs_.nodes_d.data();
  constexpr V kInf = std::numeric_limits<V>::infinity();
  // One output and scalar leaves: the rows' accumulators are contiguous, so a tree's 16
  // leaf values are gathered and added in one vector step.
  const bool one_output = K == 1 && leaf_dim_ == 1;
  const Acc* qvals;
  if constexpr (sizeof(Acc) == sizeof(float)) qvals = qs_.leaf_val_f.data(); else qvals = qs_.leaf_val_d.data();
  for (index_t r = 0; r < nr; r += kW) {
    const index_t n = std::min(kW, nr - r);
    // Feature-major copy of the group; missing lanes repeat the first row (ignored).
    for (index_t l = 0; l < kW; ++l) {
      const V* src = xb + (r + (l < n ? l : 0)) * nf;
      for (index_t f = 0; f < nf; ++f) {
        const V v = src[f];
        const bool nan = v != v;
        xt[static_cast<size_t>(f * kW + l)] = nan ? -kInf : v;
        xt[static_cast<size_t>((nf + f) * kW + l)] = nan ? kInf : v;
      }
    }
    for (index_t t = 0; t < T; ++t) {
      const std::int32_t qt = qs_.tree_qs[static_cast<size_t>(t)];
      if (qt >= 0 && one_output) {  // the run of qualifying trees from here, in order
        index_t te = t + 1;
        while (te < T && qs_.tree_qs[static_cast<size_t>(te)] >= 0) ++te;
        qs_run_add<V, Acc>(qnodes, qs_.begin.data(), qt, qt + (te - t), xt.data(), qvals, acc + r, n);
        t = te - 1;
        continue;
      }
      if (qt >= 0) {
        const auto b = qs_.begin[static_cast<size_t>(qt)], e = qs_.begin[static_cast<size_t>(qt) + 1];
        qs_tree<V>(qnodes + b, e - b, xt.data(), bv);
        const std::int32_t* slots = qslot + static_cast<index_t>(qt) * 64;
        for (index_t l = 0; l < n; ++l) leaf[l] = slots[__builtin_ctzll(bv[l])];
      } else {
        walk_group<V>(t, xb + r * nf, n, leaf);
        for (index_t l = 0; l < n; ++l) leaf[l] = leaf_slot_[static_cast<size_t>(leaf[l])];
      }
      const index_t col = out_col_[static_cast<size_t>(t)];
      for (index_t l = 0; l < n; ++l) {
        const Acc* lv = values + static_cast<index_t>(leaf[l]) * leaf_dim_;
        Acc* ar = acc + (r + l) * K;
        if (leaf_dim_ == 1) ar[col] += lv[0]; else for (index_t k = 0; k < K; ++k) ar[k] += lv[k];
      }
    }
  }
#else
  (void)xb, (void)nr, (void)acc;
  throw std::logic_error("QuickScorer kernel used without AVX-512");
#endif
}

template void Ensemble::accumulate_qs<float, float>(const float*, index_t, float*) const;
template void Ensemble::accumulate_qs<double, float>(const float*, index_t, double*) const;
template void Ensemble::accumulate_qs<float, double>(const double*, index_t, float*) const;
template void Ensemble::accumulate_qs<double, double>(const double*, index_t, double*) const;

}  // namespace forgeline::trees
