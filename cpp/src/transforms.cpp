// Fit statistics and the fused transform program (see transforms.hpp).
#include "forgeline/transforms.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>

#include "forgeline/parallel.hpp"

namespace forgeline::transforms {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// numpy's own float64 inner loops for log1p / expm1 (registered from Python). numpy
// dispatches them to SIMD implementations (e.g. SVML on AVX-512) whose results differ from
// libm's in the last bit; calling the same loops keeps outputs bit-identical to numpy's.
struct UfuncSlot {
  std::atomic<UfuncLoop> fn{nullptr};
  std::atomic<void*> data{nullptr};
};
UfuncSlot g_log1p, g_expm1;

// Applies numpy's loop (or the libm fallback) to m contiguous values, out-of-place.
template <class Fallback>
void apply_loop(const UfuncSlot& slot, const double* in, double* out, index_t m, Fallback fb) {
  UfuncLoop fn = slot.fn.load(std::memory_order_acquire);
  if (fn != nullptr) {
    char* args[2] = {reinterpret_cast<char*>(const_cast<double*>(in)), reinterpret_cast<char*>(out)};
    const std::int64_t dims[1] = {m};
    const std::int64_t steps[2] = {sizeof(double), sizeof(double)};
    fn(args, dims, steps, slot.data.load(std::memory_order_acquire));
    return;
  }
  for (index_t i = 0; i < m; ++i) out[i] = fb(in[i]);
}
constexpr double kTwoPi = 6.283185307179586476925286766559;
}  // namespace

namespace {

// numpy's pairwise summation (umath loops_utils: blocks of 8 partial sums up to 128 values,
// halving above that), over f(0..n-1). np.sum of a contiguous float64 column is exactly this.
template <class F>
double pairwise_sum(index_t begin, index_t n, const F& f) {
  if (n < 8) {
    double r = 0.0;
    for (index_t i = 0; i < n; ++i) r += f(begin + i);
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = f(begin + j);
    index_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += f(begin + i + j);
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += f(begin + i);
    return res;
  }
  index_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(begin, n2, f) + pairwise_sum(begin + n2, n - n2, f);
}

template <class F>
double column_sum(index_t n, bool pairwise, const F& f) {
  if (pairwise) return pairwise_sum(0, n, f);
  double s = 0.0;
  for (index_t i = 0; i < n; ++i) s += f(i);
  return s;
}

}  // namespace

void column_moments(const std::vector<View1D<const double>>& cols, Moments* out, int n_threads,
                    bool pairwise) {
  const index_t p = static_cast<index_t>(cols.size());
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    for (index_t c = b; c < e; ++c) {
      const auto& x = cols[static_cast<size_t>(c)];
      Moments m;
      double mn = std::numeric_limits<double>::infinity(), mx = -mn, amx = 0;
      for (index_t i = 0; i < x.size; ++i) {
        const double v = x[i];
        if (std::isnan(v)) {
          m.n_nan += 1;
          continue;
        }
        m.count += 1;
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        amx = std::max(amx, std::fabs(v));
        if (std::isinf(v)) (v > 0 ? m.n_posinf : m.n_neginf) += 1;
      }
      // NaN counts as 0 in every sum, as np.nansum does (it zero-fills, then sums).
      auto val = [&](index_t i) { const double v = x[i]; return std::isnan(v) ? 0.0 : v; };
      m.sum = column_sum(x.size, pairwise, val);
      if (m.count > 0) {
        // sklearn's corrected two-pass variance: T = sum / n, then sum((x-T)^2) - (sum(x-T))^2/n.
        const double t = m.sum / m.count;
        auto dev = [&](index_t i) { const double v = x[i]; return std::isnan(v) ? 0.0 : v - t; };
        auto dev2 = [&](index_t i) {
          const double v = x[i];
          return std::isnan(v) ? 0.0 : (v - t) * (v - t);
        };
        const double corr = column_sum(x.size, pairwise, dev);
        const double ss = column_sum(x.size, pairwise, dev2);
        m.m2 = ss - corr * corr / m.count;
        m.min = mn;
        m.max = mx;
        m.absmax = amx;
      } else {
        m.min = m.max = m.absmax = kNaN;
      }
      out[c] = m;
    }
  });
}

namespace {

// Puts the order statistics at the sorted positions [want, want_end) of a[begin, end) in place
// (each a[i] for i in want is what a full sort would put there). Divide and conquer on the
// middle wanted position: O(n log k) for k positions instead of O(n k).
void multi_select(double* a, std::int64_t begin, std::int64_t end, const std::int64_t* want,
                  const std::int64_t* want_end) {
  while (want < want_end) {
    if (want_end - want == 1 || end - begin <= 1) {
      for (const std::int64_t* w = want; w < want_end; ++w) {
        if (*w == begin) {
          std::iter_swap(a + begin, std::min_element(a + begin, a + end));
        } else {
          std::nth_element(a + begin, a + *w, a + end);
        }
        begin = *w + 1;
      }
      return;
    }
    const std::int64_t* mid = want + (want_end - want) / 2;
    std::nth_element(a + begin, a + *mid, a + end);
    multi_select(a, *mid + 1, end, mid + 1, want_end);
    end = *mid;
    want_end = mid;
  }
}

}  // namespace

void column_quantiles(const std::vector<View1D<const double>>& cols, View2D<const std::int64_t> lo,
                      View2D<const std::int64_t> hi, View2D<const double> gamma, View2D<double> out,
                      int n_threads) {
  const index_t p = static_cast<index_t>(cols.size());
  const index_t k = lo.cols;
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    std::vector<double> buf;
    std::vector<std::int64_t> need;
    for (index_t c = b; c < e; ++c) {
      const auto& x = cols[static_cast<size_t>(c)];
      buf.clear();
      buf.reserve(static_cast<size_t>(x.size));
      for (index_t i = 0; i < x.size; ++i)
        if (!std::isnan(x[i])) buf.push_back(x[i]);
      const auto n = static_cast<std::int64_t>(buf.size());
      need.clear();
      for (index_t q = 0; q < k; ++q) {
        if (lo(c, q) >= 0) need.push_back(lo(c, q));
        if (hi(c, q) >= 0) need.push_back(hi(c, q));
      }
      std::sort(need.begin(), need.end());
      need.erase(std::unique(need.begin(), need.end()), need.end());
      for (std::int64_t idx : need) require(idx < n, "quantile index out of range");
      multi_select(buf.data(), 0, n, need.data(), need.data() + need.size());
      for (index_t q = 0; q < k; ++q) {
        const std::int64_t l = lo(c, q), h = hi(c, q);
        if (l < 0 || h < 0) {
          out(c, q) = kNaN;
          continue;
        }
        const double a = buf[static_cast<size_t>(l)], bb = buf[static_cast<size_t>(h)];
        const double t = gamma(c, q);
        const double diff = bb - a;
        // numpy's _lerp: a + diff*t, replaced by b - diff*(1-t) where t >= 0.5.
        out(c, q) = t >= 0.5 ? bb - diff * (1 - t) : a + diff * t;
      }
    }
  });
}

void column_mode(const std::vector<View1D<const double>>& cols, double* value, double* count,
                 int n_threads) {
  const index_t p = static_cast<index_t>(cols.size());
  parallel_for(p, n_threads, 1, [&](index_t b, index_t e, index_t) {
    std::vector<double> buf;
    for (index_t c = b; c < e; ++c) {
      const auto& x = cols[static_cast<size_t>(c)];
      buf.clear();
      for (index_t i = 0; i < x.size; ++i)
        if (!std::isnan(x[i])) buf.push_back(x[i]);
      std::sort(buf.begin(), buf.end());
      double best = kNaN, best_n = 0;
      size_t i = 0;
      while (i < buf.size()) {
        size_t j = i + 1;
        while (j < buf.size() && buf[j] == buf[i]) ++j;
        const double run = static_cast<double>(j - i);
        if (run > best_n) {  // strict: the first (smallest) value wins ties
          best_n = run;
          best = buf[i];
        }
        i = j;
      }
      value[c] = best;
      count[c] = best_n;
    }
  });
}

int kmeans_1d(View1D<const double> x, std::vector<double>& centers, int max_iter, double tol) {
  // Lloyd iterations as sklearn's _kmeans_single_lloyd runs them: assign each point to the
  // nearest center (first center on ties), move centers to the mean of their points (an empty
  // cluster keeps its center), stop when labels no longer change ("strict convergence") or
  // the squared center shift is <= tol.
  const size_t k = centers.size();
  const index_t n = x.size;
  std::vector<std::int32_t> labels(static_cast<size_t>(n), -1), old(static_cast<size_t>(n), -1);
  std::vector<double> sums(k), counts(k), next(k);
  auto assign = [&](const std::vector<double>& cs, std::vector<std::int32_t>& lab) {
    for (index_t i = 0; i < n; ++i) {
      const double v = x[i];
      std::int32_t best = 0;
      double bd = (v - cs[0]) * (v - cs[0]);
      for (size_t j = 1; j < k; ++j) {
        const double d = (v - cs[j]) * (v - cs[j]);
        if (d < bd) {
          bd = d;
          best = static_cast<std::int32_t>(j);
        }
      }
      lab[static_cast<size_t>(i)] = best;
    }
  };
  int it = 0;
  bool strict = false;
  for (; it < max_iter; ++it) {
    assign(centers, labels);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0.0);
    for (index_t i = 0; i < n; ++i) {
      sums[static_cast<size_t>(labels[static_cast<size_t>(i)])] += x[i];
      counts[static_cast<size_t>(labels[static_cast<size_t>(i)])] += 1;
    }
    double shift = 0;
    for (size_t j = 0; j < k; ++j) {
      next[j] = counts[j] > 0 ? sums[j] / counts[j] : centers[j];
      shift += (next[j] - centers[j]) * (next[j] - centers[j]);
    }
    std::swap(centers, next);
    if (labels == old) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    old = labels;
  }
  (void)strict;
  return it + 1;
}

// ---------------------------------------------------------------- program execution

void set_numpy_loops(UfuncLoop log1p, void* log1p_data, UfuncLoop expm1, void* expm1_data) {
  g_log1p.data.store(log1p_data, std::memory_order_release);
  g_log1p.fn.store(log1p, std::memory_order_release);
  g_expm1.data.store(expm1_data, std::memory_order_release);
  g_expm1.fn.store(expm1, std::memory_order_release);
}

bool numpy_loops_set() { return g_log1p.fn.load() != nullptr && g_expm1.fn.load() != nullptr; }

namespace {

constexpr index_t kBlock = 256;
constexpr index_t kBlockMax = kBlock;

// Days since 1970-01-01 -> (year, month, day), Howard Hinnant's civil-from-days algorithm.
inline void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += (m <= 2);
}

inline bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

double date_part(std::int64_t ns, int part) {
  constexpr std::int64_t kDayNs = 86400LL * 1000000000LL;
  std::int64_t days = ns / kDayNs;
  std::int64_t rem = ns % kDayNs;
  if (rem < 0) {
    rem += kDayNs;
    days -= 1;
  }
  std::int64_t y;
  unsigned m, d;
  switch (part) {
    case 3: {  // Monday = 0, as pandas' dayofweek; 1970-01-01 was a Thursday
      std::int64_t w = (days + 3) % 7;
      return static_cast<double>(w < 0 ? w + 7 : w);
    }
    case 4: return static_cast<double>(rem / 3600000000000LL);
    case 5: return static_cast<double>((rem / 60000000000LL) % 60);
    case 6: return static_cast<double>((rem / 1000000000LL) % 60);
    default: break;
  }
  civil_from_days(days, y, m, d);
  if (part == 0) return static_cast<double>(y);
  if (part == 1) return m;
  if (part == 2) return d;
  static const int cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  return static_cast<double>(cum[m - 1] + static_cast<int>(d) + (m > 2 && is_leap(y) ? 1 : 0));
}

// scipy.stats.yeojohnson's transform (what sklearn's PowerTransformer calls), branch for
// branch with its expm1/log1p formulation, over a block; log1p/expm1 are numpy's loops.
void yeo_johnson_block(double* buf, double* tmp, index_t m, double lmbda) {
  const double eps = std::numeric_limits<double>::epsilon();
  const bool pos_log = std::fabs(lmbda) < eps, neg_log = !(std::fabs(lmbda - 2) > eps);
  for (index_t i = 0; i < m; ++i) tmp[i] = buf[i] >= 0 ? buf[i] : -buf[i];  // NaN stays NaN
  double* lg = tmp + kBlockMax;
  apply_loop(g_log1p, tmp, lg, m, [](double v) { return std::log1p(v); });
  for (index_t i = 0; i < m; ++i) tmp[i] = buf[i] >= 0 ? lmbda * lg[i] : (2 - lmbda) * lg[i];
  double* ex = tmp + 2 * kBlockMax;
  apply_loop(g_expm1, tmp, ex, m, [](double v) { return std::expm1(v); });
  for (index_t i = 0; i < m; ++i) {
    const double x = buf[i];
    if (x >= 0)
      buf[i] = pos_log ? lg[i] : ex[i] / lmbda;
    else
      buf[i] = neg_log ? -lg[i] : -ex[i] / (2 - lmbda);
  }
}


}  // namespace

namespace {

// Writes one program's block of values. Contig = unit column stride (the usual row-major
// output), which lets the compiler vectorise the zero-fill of one-hot blocks.
template <bool Contig>
void emit_rows(const ColumnProgram& pr, const double* buf, const View1D<const std::int32_t>* codes,
               index_t b, index_t m, double* base, index_t rs, index_t cs_rt, const double* tables,
               const std::int32_t* maps, bool zeroed) {
  const index_t cs = Contig ? 1 : cs_rt;
  switch (pr.emit) {
    case kEmitValue:
      for (index_t i = 0; i < m; ++i) base[i * rs] = buf[i];
      return;
    case kEmitOneHot:
      for (index_t i = 0; i < m; ++i) {
        double* row = base + i * rs;
        if (!zeroed)
          for (index_t t = 0; t < pr.width; ++t) row[t * cs] = 0.0;
        const double v = buf[i];
        if (v >= 0 && v < static_cast<double>(pr.width)) row[static_cast<index_t>(v) * cs] = 1.0;
      }
      return;
    case kEmitCodeOneHot: {
      const std::int32_t* mp = maps + pr.toff;
      for (index_t i = 0; i < m; ++i) {
        double* row = base + i * rs;
        if (!zeroed)
          for (index_t t = 0; t < pr.width; ++t) row[t * cs] = 0.0;
        const std::int64_t ci = static_cast<std::int64_t>((*codes)[b + i]) + 2;
        if (ci < 0 || ci >= pr.tlen) throw std::out_of_range("category code out of range");
        const std::int32_t s = mp[ci];
        if (s >= 0) row[s * cs] = 1.0;
      }
      return;
    }
    case kEmitCodeLookup: {
      const double* tb = tables + pr.toff;
      const index_t w = pr.width;
      for (index_t i = 0; i < m; ++i) {
        double* row = base + i * rs;
        const std::int64_t ci = static_cast<std::int64_t>((*codes)[b + i]) + 2;
        if (ci < 0 || ci * w >= pr.tlen) throw std::out_of_range("category code out of range");
        const double* src = tb + ci * w;
        for (index_t t = 0; t < w; ++t) row[t * cs] = src[t];
      }
      return;
    }
    default:
      throw std::invalid_argument("unknown emit kind " + std::to_string(pr.emit));
  }
}

}  // namespace

void run_program(const ProgramInputs& in, const std::vector<ColumnProgram>& progs,
                 const std::vector<OpSpec>& ops, const double* tables, const std::int32_t* maps,
                 View2D<double> out, std::int32_t* flags, int n_threads) {
  const index_t n = out.rows;
  std::unique_ptr<std::atomic<std::int32_t>[]> fl(new std::atomic<std::int32_t>[progs.size()]);
  for (size_t p = 0; p < progs.size(); ++p) fl[p].store(0);
  parallel_for(n, n_threads, kBlock, [&](index_t b, index_t e, index_t) {
    double buf[kBlock];
    double tmp[3 * kBlockMax];
    const index_t m = e - b;
    // A dense row-major output block is one contiguous range: zero it front to back first.
    // Touching fresh pages sequentially is several times faster than the scattered first
    // touches of column-wise emits, and one-hot emitters then only write their 1s.
    const bool zeroed = out.col_stride == 1 && out.row_stride == out.cols;
    if (zeroed) std::fill(&out(b, 0), &out(b, 0) + m * out.cols, 0.0);
    for (size_t p = 0; p < progs.size(); ++p) {
      const ColumnProgram& pr = progs[p];
      if (pr.source == kSrcFloat) {
        const auto& x = in.floats[static_cast<size_t>(pr.src)];
        for (index_t i = 0; i < m; ++i) buf[i] = x[b + i];
      } else if (pr.source == kSrcDatetime) {
        // converted by the first (kDatePart) op; keep raw ns bits until then
      }
      const auto* codes = pr.source == kSrcCode ? &in.codes[static_cast<size_t>(pr.src)] : nullptr;
      for (std::int64_t o = pr.op_begin; o < pr.op_end; ++o) {
        const OpSpec& op = ops[static_cast<size_t>(o)];
        const double a = op.a, bb = op.b;
        switch (op.code) {
          case kImpute:
            for (index_t i = 0; i < m; ++i) buf[i] = std::isnan(buf[i]) ? a : buf[i];
            break;
          case kLog1p:
            apply_loop(g_log1p, buf, tmp, m, [](double v) { return std::log1p(v); });
            std::copy(tmp, tmp + m, buf);
            break;
          case kSub:
            for (index_t i = 0; i < m; ++i) buf[i] -= a;
            break;
          case kDiv:
            for (index_t i = 0; i < m; ++i) buf[i] /= a;
            break;
          case kMul:
            for (index_t i = 0; i < m; ++i) buf[i] *= a;
            break;
          case kAdd:
            for (index_t i = 0; i < m; ++i) buf[i] += a;
            break;
          case kClip:
            for (index_t i = 0; i < m; ++i)
              if (!std::isnan(buf[i])) buf[i] = std::min(std::max(buf[i], a), bb);
            break;
          case kIsNan:
            for (index_t i = 0; i < m; ++i) buf[i] = std::isnan(buf[i]) ? 1.0 : 0.0;
            break;
          case kYeoJohnson:
            yeo_johnson_block(buf, tmp, m, a);
            break;
          case kCheckFinite: {
            bool bad = false;
            for (index_t i = 0; i < m; ++i) bad |= std::isinf(buf[i]);
            if (bad) fl[p].store(kCheckFinite, std::memory_order_relaxed);
            break;
          }
          case kCheckNan: {
            bool bad = false;
            for (index_t i = 0; i < m; ++i) bad |= std::isnan(buf[i]);
            if (bad) fl[p].store(kCheckNan, std::memory_order_relaxed);
            break;
          }
          case kBin: {
            const double* t0 = tables + op.toff;
            const double* t1 = t0 + op.tlen;
            for (index_t i = 0; i < m; ++i) {
              const double v = buf[i];
              // numpy's searchsorted sorts NaN last: NaN lands after every edge
              buf[i] = std::isnan(v) ? static_cast<double>(op.tlen)
                                     : static_cast<double>(std::upper_bound(t0, t1, v) - t0);
            }
            break;
          }
          case kSinCycle:
            for (index_t i = 0; i < m; ++i) buf[i] = std::sin(kTwoPi * buf[i] / a);
            break;
          case kCosCycle:
            for (index_t i = 0; i < m; ++i) buf[i] = std::cos(kTwoPi * buf[i] / a);
            break;
          case kDatePart: {
            const auto& x = in.datetimes[static_cast<size_t>(pr.src)];
            const int part = static_cast<int>(a);
            for (index_t i = 0; i < m; ++i) {
              const std::int64_t v = x[b + i];
              buf[i] = v == std::numeric_limits<std::int64_t>::min() ? kNaN : date_part(v, part);
            }
            break;
          }
          case kIsNanFlip:
            for (index_t i = 0; i < m; ++i) buf[i] = std::isnan(buf[i]) ? 0.0 : buf[i];
            break;
          default:
            throw std::invalid_argument("unknown transform op " + std::to_string(op.code));
        }
      }
      double* base = &out(b, pr.dst);
      const index_t rs = out.row_stride, cs = out.col_stride;
      if (cs == 1) {
        emit_rows<true>(pr, buf, codes, b, m, base, rs, 1, tables, maps, zeroed);
      } else {
        emit_rows<false>(pr, buf, codes, b, m, base, rs, cs, tables, maps, false);
      }
    }
  });
  for (size_t p = 0; p < progs.size(); ++p) flags[p] = fl[p].load();
}

void run_udf(const std::vector<View1D<const double>>& cols, UdfBlock fn, double* out, index_t n,
             int n_threads) {
  const index_t k = static_cast<index_t>(cols.size());
  parallel_for(n, n_threads, kBlock, [&](index_t b, index_t e, index_t) {
    const index_t m = e - b;
    std::vector<double> block(static_cast<size_t>(m * std::max<index_t>(k, 1)));
    for (index_t c = 0; c < k; ++c)
      for (index_t i = 0; i < m; ++i) block[static_cast<size_t>(c * m + i)] = cols[static_cast<size_t>(c)][b + i];
    fn(block.data(), m, k, out + b);
  });
}

}  // namespace forgeline::transforms
