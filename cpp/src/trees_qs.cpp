// QuickScorer-style batch kernel for tree ensembles (see QsIndex in trees.hpp).
//
// Sixteen rows go through the ensemble together: per feature, one AVX-512 compare of the
// sixteen values against each threshold in ascending order gives the rows the node sends
// right, and a masked AND clears that node's left-subtree leaves in those rows' bitvectors.
// The scan of a feature stops at the first threshold no row exceeds. Node data is read in
// order and there are no data-dependent branches per node, unlike a tree walk.
//
// Trees that do not qualify (more than 64 leaves, categorical or Zero-missing nodes) are
// walked as before, in the same per-row pass, so every row still adds its trees' leaves in
// tree order: the summation order, and so the result, is the walk's, bit for bit.
// Without AVX-512 (checked at run time; no -march flags) the walking engine runs instead.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "forgeline/trees.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FL_QS_X86 1
#define FL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
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

struct Entry {
  std::uint32_t feature;
  std::int32_t node;
  std::uint32_t tree;
  std::uint64_t mask;
};

#if FL_QS_X86
FL_AVX512 inline void and_rows(std::uint64_t* p, std::uint64_t mask, __mmask16 k) {
  const __m512i m = _mm512_set1_epi64(static_cast<long long>(mask));
  __m512i a = _mm512_loadu_si512(p);
  __m512i b = _mm512_loadu_si512(p + 8);
  a = _mm512_mask_and_epi64(a, static_cast<__mmask8>(k), a, m);
  b = _mm512_mask_and_epi64(b, static_cast<__mmask8>(k >> 8), b, m);
  _mm512_storeu_si512(p, a);
  _mm512_storeu_si512(p + 8, b);
}

// Exit-leaf bitvectors (q.n_trees x 16) of sixteen rows; xt holds them feature-major.
template <class V>
FL_AVX512 void qs_group(const QsIndex& q, index_t nf, const V* xt, std::uint64_t* bv) {
  const __m512i ones = _mm512_set1_epi64(-1);
  for (index_t t = 0; t < q.n_trees; ++t) {
    _mm512_storeu_si512(bv + t * kW, ones);
    _mm512_storeu_si512(bv + t * kW + 8, ones);
  }
  for (index_t f = 0; f < nf; ++f) {
    const auto b = q.begin[static_cast<size_t>(f)], e = q.begin[static_cast<size_t>(f) + 1];
    __mmask16 nan;
    if constexpr (sizeof(V) == sizeof(float)) {
      const __m512 x = _mm512_loadu_ps(xt + f * kW);
      nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
      const QsNode<float>* nd = q.nodes_f.data();
      for (auto j = b; j < e; ++j) {
        // NaN lanes compare false (ordered compare): they are handled by the NaN list.
        const __mmask16 k = _mm512_cmp_ps_mask(x, _mm512_set1_ps(nd[j].threshold), _CMP_GT_OQ);
        if (!k) break;  // thresholds ascend: no row exceeds the later ones either
        and_rows(bv + static_cast<index_t>(nd[j].tree) * kW, nd[j].mask, k);
      }
    } else {
      const __m512d x0 = _mm512_loadu_pd(xt + f * kW);
      const __m512d x1 = _mm512_loadu_pd(xt + f * kW + 8);
      nan = static_cast<__mmask16>(_mm512_cmp_pd_mask(x0, x0, _CMP_UNORD_Q) |
                                   (static_cast<unsigned>(_mm512_cmp_pd_mask(x1, x1, _CMP_UNORD_Q)) << 8));
      const QsNode<double>* nd = q.nodes_d.data();
      for (auto j = b; j < e; ++j) {
        const __m512d t = _mm512_set1_pd(nd[j].threshold);
        const __mmask16 k = static_cast<__mmask16>(
            _mm512_cmp_pd_mask(x0, t, _CMP_GT_OQ) |
            (static_cast<unsigned>(_mm512_cmp_pd_mask(x1, t, _CMP_GT_OQ)) << 8));
        if (!k) break;
        and_rows(bv + static_cast<index_t>(nd[j].tree) * kW, nd[j].mask, k);
      }
    }
    if (nan) {
      const auto nb = q.nan_begin[static_cast<size_t>(f)], ne = q.nan_begin[static_cast<size_t>(f) + 1];
      for (auto j = nb; j < ne; ++j)
        and_rows(bv + static_cast<index_t>(q.nan_tree[static_cast<size_t>(j)]) * kW,
                 q.nan_mask[static_cast<size_t>(j)], nan);
    }
  }
}
#endif

}  // namespace

bool cpu_has_avx512() {
#if FL_QS_X86
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
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
  std::vector<Entry> entries;
  std::vector<std::int32_t> leaves;
  struct Split { std::int32_t node, lo, hi; };
  std::vector<Split> splits;
  std::vector<std::int32_t> stack;
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
      if (i < 0) {  // left subtree of splits[~i] done: its leaves are [lo, hi)
        Split& s = splits[static_cast<size_t>(~i)];
        s.hi = static_cast<std::int32_t>(leaves.size());
        stack.push_back(nodes_[static_cast<size_t>(s.node)].child + 1);
        continue;
      }
      const PackedNode& n = nodes_[static_cast<size_t>(i)];
      if (flags_of(n) & kLeaf) {
        leaves.push_back(i);
        if (leaves.size() > 64) ok = false;
        continue;
      }
      if (std::isnan(n.threshold)) { ok = false; break; }
      splits.push_back({i, static_cast<std::int32_t>(leaves.size()), 0});
      stack.push_back(~static_cast<std::int32_t>(splits.size() - 1));
      stack.push_back(n.child);
    }
    if (!ok) continue;
    const auto qt = static_cast<std::uint32_t>(qs_.n_trees++);
    qs_.tree_qs[static_cast<size_t>(t)] = static_cast<std::int32_t>(qt);
    for (size_t b = 0; b < 64; ++b)
      qs_.leaf_slot.push_back(leaf_slot_[static_cast<size_t>(leaves[std::min(b, leaves.size() - 1)])]);
    for (const Split& s : splits) {
      // hi - lo <= 63: the right subtree holds at least one leaf.
      const std::uint64_t left = ((std::uint64_t{1} << (s.hi - s.lo)) - 1) << s.lo;
      entries.push_back({feature_of(nodes_[static_cast<size_t>(s.node)]), s.node, qt, ~left});
    }
  }
  if (qs_.n_trees == 0) return;
  std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    if (a.feature != b.feature) return a.feature < b.feature;
    // down_f32 is monotone, so this order is ascending for the float thresholds too.
    const double ta = nodes_[static_cast<size_t>(a.node)].threshold, tb = nodes_[static_cast<size_t>(b.node)].threshold;
    if (ta != tb) return ta < tb;
    return a.node < b.node;
  });
  qs_.begin.assign(static_cast<size_t>(nf) + 1, 0);
  qs_.nan_begin.assign(static_cast<size_t>(nf) + 1, 0);
  for (const Entry& en : entries) {
    ++qs_.begin[en.feature + 1];
    if (!(flags_of(nodes_[static_cast<size_t>(en.node)]) & kNanLeft)) ++qs_.nan_begin[en.feature + 1];
  }
  for (index_t f = 0; f < nf; ++f) {
    qs_.begin[static_cast<size_t>(f) + 1] += qs_.begin[static_cast<size_t>(f)];
    qs_.nan_begin[static_cast<size_t>(f) + 1] += qs_.nan_begin[static_cast<size_t>(f)];
  }
  qs_.nodes_f.reserve(entries.size());
  qs_.nodes_d.reserve(entries.size());
  for (const Entry& en : entries) {
    const auto node = static_cast<size_t>(en.node);
    qs_.nodes_f.push_back({fnodes_[node].threshold, en.tree, en.mask});
    qs_.nodes_d.push_back({nodes_[node].threshold, en.tree, en.mask});
    if (!(flags_of(nodes_[node]) & kNanLeft)) {  // NaN goes right: listed for NaN rows
      qs_.nan_tree.push_back(en.tree);
      qs_.nan_mask.push_back(en.mask);
    }
  }
}

template <class Acc, class V>
void Ensemble::accumulate_qs(const V* xb, index_t nr, Acc* acc) const {
#if FL_QS_X86
  const index_t nf = n_features_, K = n_outputs_, T = n_trees();
  std::vector<V> xt(static_cast<size_t>(std::max<index_t>(nf, 1) * kW));
  std::vector<std::uint64_t> bv(static_cast<size_t>(qs_.n_trees * kW));
  std::int32_t leaf[kW];
  const Acc* values;
  if constexpr (sizeof(Acc) == sizeof(float)) values = leaf_values_f32_.data(); else values = leaf_values_.data();
  const std::int32_t* qslot = qs_.leaf_slot.data();
  for (index_t r = 0; r < nr; r += kW) {
    const index_t n = std::min(kW, nr - r);
    // Feature-major copy of the group; missing lanes repeat the first row (ignored).
    for (index_t l = 0; l < kW; ++l) {
      const V* src = xb + (r + (l < n ? l : 0)) * nf;
      for (index_t f = 0; f < nf; ++f) xt[static_cast<size_t>(f * kW + l)] = src[f];
    }
    qs_group<V>(qs_, nf, xt.data(), bv.data());
    for (index_t t = 0; t < T; ++t) {
      const std::int32_t qt = qs_.tree_qs[static_cast<size_t>(t)];
      if (qt >= 0) {
        const std::uint64_t* b = bv.data() + static_cast<index_t>(qt) * kW;
        const std::int32_t* slots = qslot + static_cast<index_t>(qt) * 64;
        for (index_t l = 0; l < n; ++l) leaf[l] = slots[__builtin_ctzll(b[l])];
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
