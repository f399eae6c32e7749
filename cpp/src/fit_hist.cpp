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
// store-forward + add latency of one chain; more would only spread the hot bins over more
// cache.
constexpr int kGroup = 8;
// Samples ahead whose X bytes a non-root node prefetches.
constexpr index_t kPrefetch = 24;
constexpr index_t kRecord = static_cast<index_t>(sizeof(HistBin));
constexpr index_t kCountOffset = 16;  // offsetof(HistBin, count) in the packed record

// Adds (x, y) to the two adjacent doubles at p (unaligned: records are 20 bytes apart): two
// IEEE double additions, exactly `p[0] += x; p[1] += y;`.
inline void add_pair(char* p, double x, double y) {
#if defined(__SSE2__)
  const __m128d s = _mm_loadu_pd(reinterpret_cast<const double*>(p));
  _mm_storeu_pd(reinterpret_cast<double*>(p), _mm_add_pd(s, _mm_set_pd(y, x)));
#else
  double v[2];
  std::memcpy(v, p, sizeof v);
  v[0] += x;
  v[1] += y;
  std::memcpy(p, v, sizeof v);
#endif
}

inline void add_one(char* p, double x) {
  double v;
  std::memcpy(&v, p, sizeof v);
  v += x;
  std::memcpy(p, &v, sizeof v);
}

inline void count_one(char* p) {
  std::uint32_t c;
  std::memcpy(&c, p + kCountOffset, sizeof c);
  ++c;
  std::memcpy(p + kCountOffset, &c, sizeof c);
}

// The hot loop for one group of kGroup feature columns, adding straight into the output
// records (rows[k] is slot k's histogram row, zeroed by the caller as sklearn's memset does,
// so every sum starts at +0.0 like sklearn's). kRoot: row i of the node is row i of X
// (sklearn's root path); otherwise row = sample_indices[i]. For every (slot, bin) the
// additions happen in increasing i, which is sklearn's order for that (feature, bin).
// A bin value >= n_bins (never produced by sklearn's binning; sklearn would write past the
// row) is clamped to the last bin so no input can write outside the output.
template <bool kRoot, bool kConstHess, bool kCount = true>
void accumulate(const std::uint8_t* const* cols, char* const* rows, unsigned last_bin,
                const std::uint32_t* FL_RESTRICT idx, index_t n, const float* FL_RESTRICT g,
                const float* FL_RESTRICT h) {
  const std::uint8_t* c[kGroup];
  char* r[kGroup];
  for (int k = 0; k < kGroup; ++k) {
    c[k] = cols[k];
    r[k] = rows[k];
  }
  for (index_t i = 0; i < n; ++i) {
    const index_t row = kRoot ? i : static_cast<index_t>(idx[i]);
    if (!kRoot && i + kPrefetch < n) {
      // a node's rows are scattered over X (27 MB on the tuner's folds), so each column
      // read misses cache; the indices are known ahead, the hardware prefetcher cannot
      // guess them. A prefetch changes no result.
      const index_t ahead = static_cast<index_t>(idx[i + kPrefetch]);
      for (int k = 0; k < kGroup; ++k) __builtin_prefetch(c[k] + ahead);
    }
    // float32 -> float64 is exact; sklearn's `double += float` converts the same way.
    const double gi = static_cast<double>(g[i]);
    for (int k = 0; k < kGroup; ++k) {
      const unsigned bin = std::min<unsigned>(c[k][row], last_bin);
      char* p = r[k] + static_cast<index_t>(bin) * kRecord;
      if (kConstHess) add_one(p, gi);
      else add_pair(p, gi, static_cast<double>(h[i]));
      if (kCount) count_one(p);
    }
  }
}

// Features per group on the row-major path: one cache line of a row. Consecutive updates go
// to different features, so no addition waits for the previous one, and the group's hot
// bins stay in L1.
constexpr index_t kRowGroup = 64;

// A non-root node from the row-major copy: for each sample in node order, the group's
// features in turn. Each (feature, bin) still receives its addends in increasing i.
template <bool kConstHess>
void accumulate_rows(const std::uint8_t* XR, index_t stride, const index_t* off, char* const* rows,
                     index_t used, unsigned last_bin, const std::uint32_t* FL_RESTRICT idx,
                     index_t n, const float* FL_RESTRICT g, const float* FL_RESTRICT h) {
  for (index_t i = 0; i < n; ++i) {
    const std::uint8_t* x = XR + static_cast<index_t>(idx[i]) * stride;
    if (i + kPrefetch < n) {  // scattered rows: see accumulate(); no effect on results
      const std::uint8_t* ahead = XR + static_cast<index_t>(idx[i + kPrefetch]) * stride;
      __builtin_prefetch(ahead + off[0]);
      __builtin_prefetch(ahead + off[used - 1]);
    }
    const double gi = static_cast<double>(g[i]);
    const double hi = kConstHess ? 0.0 : static_cast<double>(h[i]);
    for (index_t k = 0; k < used; ++k) {
      const unsigned bin = std::min<unsigned>(x[off[k]], last_bin);
      char* p = rows[k] + static_cast<index_t>(bin) * kRecord;
      if (kConstHess) add_one(p, gi);
      else add_pair(p, gi, hi);
      count_one(p);
    }
  }
}

}  // namespace

void hist_brute(const HistInputs& in, const std::uint32_t* sample_indices, index_t n_node,
                const std::uint32_t* features, index_t n_listed, HistBin* out, index_t n_bins,
                int n_threads, index_t rows_below) {
  require(n_bins >= 0 && n_bins <= 256, "hist_brute: n_bins must be in [0, 256]");
  // sklearn gathers the node's gradients (and hessians, unless constant) into the ordered
  // buffers whenever the node is not the whole training set; the root reads them as they
  // are (the builder copied the gradients into them when it was made).
  if (n_node != in.n_grad) {
    for (index_t i = 0; i < n_node; ++i) in.ordered_g[i] = in.gradients[sample_indices[i]];
    if (!in.hessians_constant) {
      for (index_t i = 0; i < n_node; ++i) in.ordered_h[i] = in.hessians[sample_indices[i]];
    }
  }
  if (n_bins == 0) return;
  const bool root = n_node == in.n_rows;
  const unsigned last_bin = static_cast<unsigned>(n_bins - 1);
  // Sparse nodes read rows; dense ones (a sizeable share of X) read columns, where
  // neighbouring samples share cache lines anyway and the eight-column loop is faster.
  // n_node * rows_below < n_rows, written so that no product can overflow
  const bool sparse = rows_below > 0 && n_node < (in.n_rows + rows_below - 1) / rows_below;
  if (!root && in.XR != nullptr && sparse) {
    const index_t n_rgroups = (n_listed + kRowGroup - 1) / kRowGroup;
    parallel_for(n_rgroups, n_threads, 1, [&](index_t begin, index_t end, index_t) {
      for (index_t grp = begin; grp < end; ++grp) {
        const index_t first = grp * kRowGroup;
        const index_t used = std::min<index_t>(kRowGroup, n_listed - first);
        index_t off[kRowGroup];
        char* rows[kRowGroup];
        for (index_t k = 0; k < used; ++k) {
          off[k] = features ? static_cast<index_t>(features[first + k]) : first + k;
          rows[k] = reinterpret_cast<char*>(out + off[k] * n_bins);
          std::memset(rows[k], 0, static_cast<std::size_t>(n_bins * kRecord));
        }
        if (in.hessians_constant)
          accumulate_rows<true>(in.XR, in.n_features, off, rows, used, last_bin, sample_indices, n_node,
                                in.ordered_g, in.ordered_h);
        else
          accumulate_rows<false>(in.XR, in.n_features, off, rows, used, last_bin, sample_indices, n_node,
                                 in.ordered_g, in.ordered_h);
      }
    });
    return;
  }
  const index_t n_groups = (n_listed + kGroup - 1) / kGroup;
  parallel_for(n_groups, n_threads, 1, [&](index_t begin, index_t end, index_t) {
    // spare slots of a short last group add into this row, which nobody reads: the hot loop
    // then needs no slot count
    thread_local std::vector<HistBin> spare(256);
    for (index_t grp = begin; grp < end; ++grp) {
      const index_t first = grp * kGroup;
      const index_t used = std::min<index_t>(kGroup, n_listed - first);
      const std::uint8_t* cols[kGroup];
      char* rows[kGroup];
      for (int k = 0; k < kGroup; ++k) {
        const index_t pos = first + std::min<index_t>(k, used - 1);
        const index_t f = features ? static_cast<index_t>(features[pos]) : pos;
        cols[k] = in.X + f * in.col_stride;
        rows[k] = k < used ? reinterpret_cast<char*>(out + f * n_bins)
                           : reinterpret_cast<char*>(spare.data());
        std::memset(rows[k], 0, static_cast<std::size_t>(n_bins * kRecord));
      }
      const float* g = in.ordered_g;
      const float* h = in.ordered_h;
      if (root && in.root_counts != nullptr) {
        // the root's counts are the columns' bin counts, the same for every tree: the caller
        // counted them once per matrix, so the hot loop stores only the sums
        if (in.hessians_constant) accumulate<true, true, false>(cols, rows, last_bin, nullptr, n_node, g, h);
        else accumulate<true, false, false>(cols, rows, last_bin, nullptr, n_node, g, h);
        for (index_t k = 0; k < used; ++k) {
          const index_t f = features ? static_cast<index_t>(features[first + k]) : first + k;
          const std::uint32_t* cnt = in.root_counts + f * 256;
          for (index_t b = 0; b < n_bins; ++b) {
            std::uint32_t c = cnt[b];
            if (b == n_bins - 1)  // bins past the last are clamped into it in the loop too
              for (index_t extra = n_bins; extra < 256; ++extra) c += cnt[extra];
            std::memcpy(rows[k] + b * kRecord + kCountOffset, &c, sizeof c);
          }
        }
      } else if (root) {
        if (in.hessians_constant) accumulate<true, true>(cols, rows, last_bin, nullptr, n_node, g, h);
        else accumulate<true, false>(cols, rows, last_bin, nullptr, n_node, g, h);
      } else {
        if (in.hessians_constant) accumulate<false, true>(cols, rows, last_bin, sample_indices, n_node, g, h);
        else accumulate<false, false>(cols, rows, last_bin, sample_indices, n_node, g, h);
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
