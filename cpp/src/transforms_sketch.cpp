// The compactor sketch (see transforms_sketch.hpp).
#include "forgeline/transforms_sketch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

namespace forgeline::transforms {

namespace {

// LSD radix sort of n non-NaN doubles through order-preserving 64-bit keys (flip all bits
// of negatives, the sign bit of the rest); digits where every key agrees are skipped. On a
// cache-sized level-0 block this is several times faster than a comparison sort. 11-bit
// digits: six scatter passes instead of eight bytes', with the counts (48 KiB) still cached.
void radix_sort(double* a, std::size_t n, std::vector<std::uint64_t>& buf) {
  constexpr std::uint64_t kSign = std::uint64_t{1} << 63;
  constexpr int kBits = 11, kDigits = 6;
  constexpr std::size_t kR = std::size_t{1} << kBits;
  buf.resize(2 * n);
  std::uint64_t* src = buf.data();
  std::uint64_t* dst = buf.data() + n;
  static thread_local std::vector<std::uint32_t> hist_v(kDigits * kR);
  std::fill(hist_v.begin(), hist_v.end(), 0u);
  std::uint32_t* hist = hist_v.data();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t u;
    std::memcpy(&u, a + i, sizeof u);
    u = (u & kSign) ? ~u : (u | kSign);
    src[i] = u;
    for (int d = 0; d < kDigits; ++d) ++hist[d * kR + ((u >> (kBits * d)) & (kR - 1))];
  }
  for (int d = 0; d < kDigits; ++d) {
    std::uint32_t* h = hist + d * kR;
    bool trivial = false;
    std::uint32_t sum = 0;
    for (std::size_t b = 0; b < kR; ++b) {
      trivial = trivial || h[b] == n;
      const std::uint32_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    if (trivial) continue;
    for (std::size_t i = 0; i < n; ++i) dst[h[(src[i] >> (kBits * d)) & (kR - 1)]++] = src[i];
    std::swap(src, dst);
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t u = src[i];
    u = (u & kSign) ? (u & ~kSign) : ~u;
    std::memcpy(a + i, &u, sizeof u);
  }
}

void ensure_level(Compactor& s, std::size_t h) {
  if (s.levels.size() <= h) {
    s.levels.resize(h + 1);
    s.parity.resize(h + 1, 0);
  }
}

// Merge sorted `add` into sorted level h+1.
void push_up(Compactor& s, std::size_t h, const std::vector<double>& add) {
  ensure_level(s, h + 1);
  auto& up = s.levels[h + 1];
  std::vector<double> merged(up.size() + add.size());  // (no per-element push_back)
  std::merge(up.begin(), up.end(), add.begin(), add.end(), merged.begin());
  up.swap(merged);
}

// Every other value of the sorted block [b, b+len) (len even), from the level's parity.
void take_half(Compactor& s, std::size_t h, const double* b, std::size_t len,
               std::vector<double>& out) {
  const std::size_t off = s.parity[h];
  s.parity[h] = static_cast<std::uint8_t>(1 - off);
  out.clear();
  for (std::size_t i = off; i < len; i += 2) out.push_back(b[i]);
}

void compress_upper(Compactor& s, std::size_t from, std::size_t cap) {
  std::vector<double> half;
  for (std::size_t h = from; h < s.levels.size(); ++h) {
    if (s.levels[h].size() <= cap) continue;
    ensure_level(s, h + 1);  // before taking a reference: growing `levels` moves them
    auto& lv = s.levels[h];  // sorted
    const std::size_t body = lv.size() - lv.size() % 2;  // an odd largest value stays here
    take_half(s, h, lv.data(), body, half);
    lv.erase(lv.begin(), lv.begin() + static_cast<std::ptrdiff_t>(body));
    push_up(s, h, half);
  }
}

}  // namespace

void compactor_compress(Compactor& s, index_t k) {
  require(k >= 1, "sketch: k must be positive");
  const std::size_t cap = 2 * static_cast<std::size_t>(k);
  ensure_level(s, 0);
  // Level 0 leaves `levels` while it is compacted: pushing up may grow (and move) `levels`.
  std::vector<double> l0;
  l0.swap(s.levels[0]);
  std::vector<double> half;
  std::vector<std::uint64_t> keys;
  std::size_t start = 0;
  for (; l0.size() - start >= cap; start += cap) {
    double* b = l0.data() + start;
    radix_sort(b, cap, keys);
    take_half(s, 0, b, cap, half);
    push_up(s, 0, half);
    compress_upper(s, 1, cap);  // keeps level 1 small, so each push_up stays cheap
  }
  if (start > 0) l0.erase(l0.begin(), l0.begin() + static_cast<std::ptrdiff_t>(start));
  s.levels[0].swap(l0);
  compress_upper(s, 1, cap);
}

void compactor_add(Compactor& s, View1D<const double> x, index_t k) {
  ensure_level(s, 0);
  auto& l0 = s.levels[0];
  l0.reserve(l0.size() + static_cast<std::size_t>(x.size));
  for (index_t i = 0; i < x.size; ++i)
    if (!std::isnan(x[i])) l0.push_back(x[i]);
  compactor_compress(s, k);
}

void compactor_merge(Compactor& a, const Compactor& b, index_t k) {
  ensure_level(a, b.levels.empty() ? 0 : b.levels.size() - 1);
  for (std::size_t h = 0; h < b.levels.size(); ++h) {
    const auto& theirs = b.levels[h];
    auto& mine = a.levels[h];
    if (h == 0) {
      mine.insert(mine.end(), theirs.begin(), theirs.end());
    } else {
      std::vector<double> merged;
      merged.reserve(mine.size() + theirs.size());
      std::merge(mine.begin(), mine.end(), theirs.begin(), theirs.end(), std::back_inserter(merged));
      mine.swap(merged);
    }
  }
  compactor_compress(a, k);
}

void compactor_quantiles(const Compactor& s, const double* q, index_t nq, double* out) {
  std::vector<std::pair<double, double>> vw;
  double n = 0;
  for (std::size_t h = 0; h < s.levels.size(); ++h) {
    const double w = std::ldexp(1.0, static_cast<int>(h));
    for (double v : s.levels[h]) vw.emplace_back(v, w);
    n += w * static_cast<double>(s.levels[h].size());
  }
  // Equal values are interchangeable for the answer, so the order among them is irrelevant.
  std::sort(vw.begin(), vw.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<double> cum(vw.size());
  double c = 0;
  for (std::size_t i = 0; i < vw.size(); ++i) cum[i] = (c += vw[i].second);
  for (index_t j = 0; j < nq; ++j) {
    if (vw.empty()) {
      out[j] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    const double target = q[j] * (n - 1);
    auto it = std::upper_bound(cum.begin(), cum.end(), target);
    std::size_t idx = static_cast<std::size_t>(it - cum.begin());
    if (idx >= vw.size()) idx = vw.size() - 1;
    out[j] = vw[idx].first;
  }
}

}  // namespace forgeline::transforms
