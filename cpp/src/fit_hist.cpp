// sklearn-exact histogram building (see fit_hist.hpp for the contract).
#include "forgeline/fit_hist.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "forgeline/parallel.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace forgeline::fit {
namespace {

// Features walked together. Eight independent (feature, bin) chains are enough to cover the
// store-forward + add latency of one chain; more would only grow the scratch past L1.
constexpr int kGroup = 8;
// X_binned is uint8, so a bin index is < 256 whatever n_bins says: the scratch holds 256 bins
// per feature and no input can write outside it (bins >= n_bins are simply not copied out;
// sklearn would write past its row there, which grown trees never do).
constexpr int kMaxBins = 256;

// One feature's running sums for one bin: {sum_gradients, sum_hessians} when the hessians
// vary, {sum_gradients, count} when they are constant (a count held as a double is exact:
// it is an integer < 2^32 < 2^53). 16-byte aligned so one SSE2 add updates both lanes.
struct alignas(16) Pair {
  double a;
  double b;
};

struct Scratch {
  std::vector<Pair> sums;            // kGroup * kMaxBins
  std::vector<std::uint32_t> counts;  // kGroup * kMaxBins (varying hessians only)
  Scratch() : sums(kGroup * kMaxBins), counts(kGroup * kMaxBins) {}
  void clear() {
    std::memset(static_cast<void*>(sums.data()), 0, sums.size() * sizeof(Pair));
    std::memset(counts.data(), 0, counts.size() * sizeof(std::uint32_t));
  }
};

// Adds (x, y) to p lane by lane: two IEEE double additions, exactly `p.a += x; p.b += y;`.
inline void add_pair(Pair& p, double x, double y) {
#if defined(__SSE2__)
  const __m128d s = _mm_load_pd(&p.a);
  _mm_store_pd(&p.a, _mm_add_pd(s, _mm_set_pd(y, x)));
#else
  p.a += x;
  p.b += y;
#endif
}

// The hot loop for one group of kGroup feature columns. kRoot: row i of the node is row i
// of X (sklearn's root path); otherwise row = sample_indices[i]. For every (slot, bin) the
// additions happen in increasing i, which is sklearn's order for that (feature, bin).
// Exactness of the scratch start: sklearn memsets each histogram row to zero first, so its
// sums also start at +0.0 (all-zero bits) and only ever receive the same addends in the
// same order as here.
template <bool kRoot, bool kConstHess>
void accumulate(const std::uint8_t* const* cols, const std::uint32_t* FL_RESTRICT idx,
                index_t n, const float* FL_RESTRICT g, const float* FL_RESTRICT h,
                Scratch& s) {
  Pair* FL_RESTRICT sums = s.sums.data();
  std::uint32_t* FL_RESTRICT counts = s.counts.data();
  const std::uint8_t* c[kGroup];
  for (int k = 0; k < kGroup; ++k) c[k] = cols[k];
  for (index_t i = 0; i < n; ++i) {
    const index_t row = kRoot ? i : static_cast<index_t>(idx[i]);
    // float32 -> float64 is exact; sklearn's `double += float` converts the same way.
    const double gi = static_cast<double>(g[i]);
    const double hi = kConstHess ? 1.0 : static_cast<double>(h[i]);
    for (int k = 0; k < kGroup; ++k) {
      const unsigned bin = c[k][row];
      add_pair(sums[k * kMaxBins + bin], gi, hi);
      if (!kConstHess) counts[k * kMaxBins + bin] += 1u;
    }
  }
}

}  // namespace

void hist_brute(const HistInputs& in, const std::uint32_t* sample_indices, index_t n_node,
                const std::uint32_t* features, index_t n_listed, HistBin* out, index_t n_bins,
                int n_threads) {
  require(n_bins >= 0 && n_bins <= kMaxBins, "hist_brute: n_bins must be in [0, 256]");
  // sklearn gathers the node's gradients (and hessians, unless constant) into the ordered
  // buffers whenever the node is not the whole training set; the root reads them as they
  // are (the builder copied the gradients into them when it was made).
  if (n_node != in.n_grad) {
    for (index_t i = 0; i < n_node; ++i) in.ordered_g[i] = in.gradients[sample_indices[i]];
    if (!in.hessians_constant) {
      for (index_t i = 0; i < n_node; ++i) in.ordered_h[i] = in.hessians[sample_indices[i]];
    }
  }
  const bool root = n_node == in.n_rows;
  const index_t n_groups = (n_listed + kGroup - 1) / kGroup;
  parallel_for(n_groups, n_threads, 1, [&](index_t begin, index_t end, index_t) {
    thread_local Scratch scratch;
    for (index_t grp = begin; grp < end; ++grp) {
      const index_t first = grp * kGroup;
      const index_t used = std::min<index_t>(kGroup, n_listed - first);
      index_t feat[kGroup];
      const std::uint8_t* cols[kGroup];
      for (int k = 0; k < kGroup; ++k) {
        // a short last group repeats its last feature in the spare slots: they compute a
        // copy that is never written out, which keeps the hot loop free of a slot count
        const index_t pos = first + std::min<index_t>(k, used - 1);
        feat[k] = features ? static_cast<index_t>(features[pos]) : pos;
        cols[k] = in.X + feat[k] * in.col_stride;
      }
      scratch.clear();
      const float* g = in.ordered_g;
      const float* h = in.ordered_h;
      if (root) {
        if (in.hessians_constant) accumulate<true, true>(cols, nullptr, n_node, g, h, scratch);
        else accumulate<true, false>(cols, nullptr, n_node, g, h, scratch);
      } else {
        if (in.hessians_constant) accumulate<false, true>(cols, sample_indices, n_node, g, h, scratch);
        else accumulate<false, false>(cols, sample_indices, n_node, g, h, scratch);
      }
      for (index_t k = 0; k < used; ++k) {
        HistBin* dst = out + feat[k] * n_bins;
        const Pair* src = scratch.sums.data() + k * kMaxBins;
        const std::uint32_t* cnt = scratch.counts.data() + k * kMaxBins;
        for (index_t b = 0; b < n_bins; ++b) {
          HistBin v;
          v.sum_gradients = src[b].a;
          if (in.hessians_constant) {
            v.sum_hessians = 0.0;  // sklearn's memset: +0.0
            v.count = static_cast<std::uint32_t>(src[b].b);
          } else {
            v.sum_hessians = src[b].b;
            v.count = cnt[b];
          }
          std::memcpy(static_cast<void*>(dst + b), &v, sizeof(HistBin));
        }
      }
    }
  });
}

void hist_subtract(HistBin* parent, const HistBin* sibling, const std::uint32_t* features,
                   index_t n_listed, index_t n_bins) {
  for (index_t j = 0; j < n_listed; ++j) {
    const index_t f = features ? static_cast<index_t>(features[j]) : j;
    HistBin* a = parent + f * n_bins;
    const HistBin* b = sibling + f * n_bins;
    for (index_t i = 0; i < n_bins; ++i) {
      HistBin x, y;
      std::memcpy(static_cast<void*>(&x), a + i, sizeof(HistBin));
      std::memcpy(static_cast<void*>(&y), b + i, sizeof(HistBin));
      x.sum_gradients -= y.sum_gradients;
      x.sum_hessians -= y.sum_hessians;
      x.count -= y.count;  // unsigned: wraps modulo 2^32 like sklearn's C
      std::memcpy(static_cast<void*>(a + i), &x, sizeof(HistBin));
    }
  }
}

}  // namespace forgeline::fit
