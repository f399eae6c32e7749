#include "forgeline/plan.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <cstring>
#include <stdexcept>
#include <string>

#include "forgeline/parallel.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#endif

namespace forgeline::plan {

namespace {

constexpr index_t kBlockRows = 512;
constexpr double kTwoPi = 6.283185307179586476925286766559;

// numpy's own float64 inner loops for log1p / expm1 (registered from Python). numpy
// dispatches them to SIMD implementations (e.g. SVML on AVX-512) whose results differ from
// libm's in the last bit; calling the same loops keeps outputs bit-identical to numpy's.
struct UfuncSlot {
  std::atomic<UfuncLoop> fn{nullptr};
  std::atomic<void*> data{nullptr};
};
UfuncSlot g_log1p, g_expm1, g_exp;

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
  if (ns == std::numeric_limits<std::int64_t>::min()) return std::nan("");  // NaT
  constexpr std::int64_t kDayNs = 86400LL * 1000000000LL;
  std::int64_t days = ns / kDayNs;
  std::int64_t rem = ns % kDayNs;
  if (rem < 0) {
    rem += kDayNs;
    days -= 1;
  }
  switch (part) {
    case 3: {  // Monday = 0, as pandas' dayofweek; 1970-01-01 was a Thursday
      const std::int64_t w = (days + 3) % 7;
      return static_cast<double>(w < 0 ? w + 7 : w);
    }
    case 4: return static_cast<double>(rem / 3600000000000LL);
    case 5: return static_cast<double>((rem / 60000000000LL) % 60);
    case 6: return static_cast<double>((rem / 1000000000LL) % 60);
    default: break;
  }
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (part == 0) return static_cast<double>(y);
  if (part == 1) return m;
  if (part == 2) return d;
  static const int cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  return static_cast<double>(cum[m - 1] + static_cast<int>(d) + (m > 2 && is_leap(y) ? 1 : 0));
}

inline double log1p_fb(double v) { return std::log1p(v); }
inline double expm1_fb(double v) { return std::expm1(v); }

// scipy.stats.yeojohnson's transform (what sklearn's PowerTransformer calls), branch for
// branch with its expm1/log1p formulation, over n <= kTile values; log1p/expm1 are numpy's.
template <index_t N>
void yeo_johnson_tile(double* x, index_t n, double lmbda) {
  const double eps = std::numeric_limits<double>::epsilon();
  const bool pos_log = std::fabs(lmbda) < eps, neg_log = !(std::fabs(lmbda - 2) > eps);
  double t[N] = {}, lg[N], ex[N];  // t zeroed: GCC -O2 + sanitizers cannot see the loop fills it
  for (index_t i = 0; i < n; ++i) t[i] = x[i] >= 0 ? x[i] : -x[i];  // NaN stays NaN
  apply_loop(g_log1p, t, lg, n, log1p_fb);
  for (index_t i = 0; i < n; ++i) t[i] = x[i] >= 0 ? lmbda * lg[i] : (2 - lmbda) * lg[i];
  apply_loop(g_expm1, t, ex, n, expm1_fb);
  for (index_t i = 0; i < n; ++i) {
    if (x[i] >= 0)
      x[i] = pos_log ? lg[i] : ex[i] / lmbda;
    else if (!std::isnan(x[i]))
      x[i] = neg_log ? -lg[i] : -ex[i] / (2 - lmbda);
  }
}

inline double apply_op(const Program& p, std::size_t k, double x) {
  const double a = p.op_a[k];
  switch (static_cast<Op>(p.op_code[k])) {
    case Op::Impute: return std::isnan(x) ? a : x;
    case Op::Add: return x + a;
    case Op::Sub: return x - a;
    case Op::Mul: return x * a;
    case Op::Div: return x / a;
    case Op::Log1p: return std::log1p(x);
    case Op::Clip: return std::isnan(x) ? x : std::min(std::max(x, a), p.op_b[k]);
    case Op::SearchSortedRight: {
      const double* t = p.dtab.data() + p.op_off[k];
      const index_t n = p.op_len[k];
      if (std::isnan(x)) return static_cast<double>(n);  // numpy sorts NaN after everything
      return static_cast<double>(std::upper_bound(t, t + n, x) - t);
    }
    case Op::CodeOf: {
      if (std::isnan(x)) return kMissing;
      const double* t = p.dtab.data() + p.op_off[k];
      const index_t n = p.op_len[k];
      const double* it = std::lower_bound(t, t + n, x);
      return (it != t + n && *it == x) ? static_cast<double>(it - t) : kUnseen;
    }
    case Op::Expm1: return std::expm1(x);
    case Op::Sqrt: return std::sqrt(x);
    case Op::Abs: return std::fabs(x);
    case Op::Log: return std::log(x);
    case Op::Exp: return std::exp(x);
    case Op::IsNan: return std::isnan(x) ? 1.0 : 0.0;
    case Op::ReplaceInf: return std::isinf(x) ? std::nan("") : x;
    case Op::SinCycle: return std::sin(kTwoPi * x / a);
    case Op::CosCycle: return std::cos(kTwoPi * x / a);
    case Op::IsNanFlip: return std::isnan(x) ? 0.0 : x;
    default: return x;  // block-level ops are handled by apply_op_tile
  }
}

inline int as_code(double x) {
  if (std::isnan(x)) return kMissing;
  return static_cast<int>(x);
}

}  // namespace

// Udf groups read only registers written by earlier groups, so a program can never read a
// register before it is filled or form a cycle.
void Program::check_udfs() const {
  const std::size_t g = src.size();
  if (udf_fn.size() != g || reg_off.size() != g || reg_len.size() != g || emit.size() != g ||
      slot.size() != g)
    throw std::invalid_argument("plan: group array size mismatch: udf");
  if (n_regs < 0 || n_regs > (index_t{1} << 24)) throw std::invalid_argument("plan: bad register count");
  for (const auto a : udf_addr)
    if (a == 0) throw std::invalid_argument("plan: null udf address");
  std::vector<char> written(static_cast<std::size_t>(n_regs), 0);
  for (std::size_t i = 0; i < g; ++i) {
    const bool prod = src_kind[i] == static_cast<std::int32_t>(Source::Product);
    if (prod && (udf_fn[i] != -1 || reg_len[i] != 2))
      throw std::invalid_argument("plan: a product group reads exactly two registers");
    if (src_kind[i] == static_cast<std::int32_t>(Source::Udf) || prod) {
      if (!prod && (udf_fn[i] < 0 || static_cast<std::size_t>(udf_fn[i]) >= udf_addr.size()))
        throw std::invalid_argument("plan: udf index out of range");
      if (reg_off[i] < 0 || reg_len[i] < 1 || static_cast<index_t>(reg_off[i]) + reg_len[i] > n_regs)
        throw std::invalid_argument("plan: udf registers out of range");
      for (std::int32_t r = reg_off[i]; r < reg_off[i] + reg_len[i]; ++r)
        if (!written[static_cast<std::size_t>(r)])
          throw std::invalid_argument("plan: udf reads a register no earlier group writes");
    }
    if (emit[i] == static_cast<std::int32_t>(Emit::Register)) {
      if (slot[i] < 0 || slot[i] >= n_regs) throw std::invalid_argument("plan: register out of range");
      written[static_cast<std::size_t>(slot[i])] = 1;
    }
  }
}

void Program::check() const {
  const std::size_t g = src.size();
  auto same = [&](std::size_t n, const char* what) {
    if (n != g) throw std::invalid_argument(std::string("plan: group array size mismatch: ") + what);
  };
  same(src_kind.size(), "src_kind"); same(op_begin.size(), "op_begin"); same(op_end.size(), "op_end");
  same(emit.size(), "emit"); same(slot.size(), "slot"); same(tab_off.size(), "tab_off");
  same(tab_len.size(), "tab_len"); same(unseen_error.size(), "unseen_error");
  const std::size_t nops = op_code.size();
  if (op_off.size() != nops || op_len.size() != nops || op_a.size() != nops || op_b.size() != nops)
    throw std::invalid_argument("plan: op array size mismatch");
  if (n_slots < 0) throw std::invalid_argument("plan: negative slot count");
  check_udfs();
  for (std::size_t k = 0; k < nops; ++k) {
    if (op_code[k] < 1 || op_code[k] > kMaxOp) throw std::invalid_argument("plan: unknown op code");
    if (op_off[k] < 0 || op_len[k] < 0 ||
        static_cast<std::size_t>(op_off[k]) + static_cast<std::size_t>(op_len[k]) > dtab.size())
      throw std::invalid_argument("plan: op table out of range");
  }
  for (std::size_t i = 0; i < g; ++i) {
    if (src[i] < 0) throw std::invalid_argument("plan: negative source column");
    if (src_kind[i] < 0 || src_kind[i] > 5) throw std::invalid_argument("plan: bad source kind");
    if (op_begin[i] < 0 || op_end[i] < op_begin[i] || static_cast<std::size_t>(op_end[i]) > nops)
      throw std::invalid_argument("plan: op range out of bounds");
    // A date part reads the raw int64 register, so it must be exactly a datetime group's first op.
    const bool dt = src_kind[i] == static_cast<std::int32_t>(Source::Datetime);
    if (dt && (op_end[i] == op_begin[i] || op_code[static_cast<std::size_t>(op_begin[i])] !=
                                               static_cast<std::int32_t>(Op::DatePart)))
      throw std::invalid_argument("plan: a datetime group must start with a date-part op");
    for (auto k = static_cast<std::size_t>(op_begin[i]) + (dt ? 1 : 0); k < static_cast<std::size_t>(op_end[i]); ++k)
      if (op_code[k] == static_cast<std::int32_t>(Op::DatePart))
        throw std::invalid_argument("plan: a date-part op must start a datetime group");
    if (tab_off[i] < 0 || tab_len[i] < 0) throw std::invalid_argument("plan: bad table range");
    const auto end = static_cast<std::size_t>(tab_off[i]) + static_cast<std::size_t>(tab_len[i]);
    switch (static_cast<Emit>(emit[i])) {
      case Emit::Scalar:
        if (slot[i] < 0 || slot[i] >= n_slots) throw std::invalid_argument("plan: slot out of range");
        break;
      case Emit::OneHot:
        if (end > itab.size()) throw std::invalid_argument("plan: one-hot table out of range");
        for (std::size_t t = static_cast<std::size_t>(tab_off[i]); t < end; ++t)
          if (itab[t] < kRaise || itab[t] >= n_slots) throw std::invalid_argument("plan: one-hot slot out of range");
        if (tab_len[i] < 2) throw std::invalid_argument("plan: one-hot table too short");
        break;
      case Emit::Lookup:
        if (dt) throw std::invalid_argument("plan: a datetime group cannot emit a look-up");
        if (slot[i] < 0 || slot[i] >= n_slots) throw std::invalid_argument("plan: slot out of range");
        if (end > dtab.size() || tab_len[i] < 2) throw std::invalid_argument("plan: lookup table out of range");
        break;
      case Emit::Register:  // register indices were checked by check_udfs()
        break;
      default:
        throw std::invalid_argument("plan: bad emit kind");
    }
  }
}

namespace {

// Rows per inner tile: the tile's output rows (tile x n_slots doubles) stay in L1/L2 while
// every group writes its columns, and each op runs as a tight loop over the tile.
constexpr index_t kTile = 64;

// searchsorted(side="right") on a short sorted table as a count of table values <= x: one
// broadcast compare per table value across the whole tile, which vectorises (the binary search
// does not). Exact: compares and small integer counts in double. NaN compares false
// everywhere; numpy puts it after every value, so it maps to len. Only built for x86 with
// AVX2 / AVX-512 and chosen at run time (no -march=native); elsewhere the binary search runs.
constexpr index_t kCountMax = 32;
using CountLe = void (*)(const double*, index_t, double*, index_t);
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define FL_COUNT_BODY                                                       \
  double c[kGroupTile];                                                     \
  for (index_t i = 0; i < n; ++i) c[i] = 0.0;                               \
  for (index_t j = 0; j < len; ++j) {                                       \
    const double tj = t[j];                                                 \
    for (index_t i = 0; i < n; ++i) c[i] += (tj <= x[i]) ? 1.0 : 0.0;       \
  }                                                                         \
  for (index_t i = 0; i < n; ++i) x[i] = std::isnan(x[i]) ? static_cast<double>(len) : c[i];
// AVX-512: the 8 counts of a vector stay in a register across the whole table.
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void count_le_avx512(
    const double* FL_RESTRICT t, index_t len, double* FL_RESTRICT x, index_t n) {
  const __m512d one = _mm512_set1_pd(1.0);
  const __m512d lenv = _mm512_set1_pd(static_cast<double>(len));
  index_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d v = _mm512_loadu_pd(x + i);
    __m512d c = _mm512_setzero_pd();
    for (index_t j = 0; j < len; ++j)
      c = _mm512_mask_add_pd(c, _mm512_cmp_pd_mask(_mm512_set1_pd(t[j]), v, _CMP_LE_OQ), c, one);
    _mm512_storeu_pd(x + i, _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q), c, lenv));
  }
  for (; i < n; ++i) {
    double c = 0.0;
    for (index_t j = 0; j < len; ++j) c += (t[j] <= x[i]) ? 1.0 : 0.0;
    x[i] = std::isnan(x[i]) ? static_cast<double>(len) : c;
  }
}
__attribute__((target("avx2"))) void count_le_avx2(const double* FL_RESTRICT t, index_t len,
                                                   double* FL_RESTRICT x, index_t n) {
  FL_COUNT_BODY
}
#undef FL_COUNT_BODY
CountLe pick_count_le() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    return count_le_avx512;
  if (__builtin_cpu_supports("avx2")) return count_le_avx2;
  return nullptr;
}
const CountLe count_le = pick_count_le();
#else
const CountLe count_le = nullptr;
#endif

// Apply op k to every value of the tile; the switch is outside the loop so each case is a
// simple (often vectorised) loop.
void apply_op_tile(const Program& p, std::size_t k, double* FL_RESTRICT x, index_t n, std::size_t g) {
  const double a = p.op_a[k];
  switch (static_cast<Op>(p.op_code[k])) {
    case Op::Impute: for (index_t i = 0; i < n; ++i) x[i] = std::isnan(x[i]) ? a : x[i]; return;
    case Op::Add: for (index_t i = 0; i < n; ++i) x[i] += a; return;
    case Op::Sub: for (index_t i = 0; i < n; ++i) x[i] -= a; return;
    case Op::Mul: for (index_t i = 0; i < n; ++i) x[i] *= a; return;
    case Op::Div: for (index_t i = 0; i < n; ++i) x[i] /= a; return;
    case Op::Log1p: apply_loop(g_log1p, x, x, n, log1p_fb); return;  // numpy's loops run in place
    case Op::Expm1: apply_loop(g_expm1, x, x, n, expm1_fb); return;
    case Op::YeoJohnson: yeo_johnson_tile<kGroupTile>(x, n, a); return;
    case Op::Clip: {
      const double b = p.op_b[k];
      for (index_t i = 0; i < n; ++i) x[i] = std::isnan(x[i]) ? x[i] : std::min(std::max(x[i], a), b);
      return;
    }
    case Op::SearchSortedRight: {
      const double* t = p.dtab.data() + p.op_off[k];
      const index_t len = p.op_len[k];
      if (len <= kCountMax && count_le != nullptr) {
        count_le(t, len, x, n);
        return;
      }
      if (len <= 64) {
        // Short tables (bin edges): upper_bound as a branch-free binary search (conditional
        // moves instead of branches, which mispredict on every level for random data).
        index_t top = 1;
        while (top * 2 <= len) top *= 2;
        for (index_t i = 0; i < n; ++i) {
          const double v = x[i];
          index_t pos = 0;
          for (index_t step = top; step > 0; step >>= 1) {
            const index_t nxt = pos + step;
            pos = (nxt <= len && t[nxt - 1] <= v) ? nxt : pos;
          }
          x[i] = std::isnan(v) ? static_cast<double>(len) : static_cast<double>(pos);
        }
        return;
      }
      for (index_t i = 0; i < n; ++i)  // numpy sorts NaN after everything
        x[i] = std::isnan(x[i]) ? static_cast<double>(len)
                                : static_cast<double>(std::upper_bound(t, t + len, x[i]) - t);
      return;
    }
    case Op::CheckFinite: {
      bool bad = false;
      for (index_t i = 0; i < n; ++i) bad |= std::isinf(x[i]);
      if (bad) throw std::domain_error("check failed in plan group " + std::to_string(g) + ": infinity");
      return;
    }
    case Op::CheckNan: {
      bool bad = false;
      for (index_t i = 0; i < n; ++i) bad |= std::isnan(x[i]);
      if (bad) throw std::domain_error("check failed in plan group " + std::to_string(g) + ": NaN");
      return;
    }
    case Op::DatePart: return;  // applied while reading the datetime register
    default: for (index_t i = 0; i < n; ++i) x[i] = apply_op(p, k, x[i]); return;
  }
}

// A Udf group's register for one tile: its argument registers are contiguous, so they are
// already the column-major (k x n) block the compiled function reads.
void run_udf_tile(const Program& p, std::size_t g, const double* regs, double* x, index_t n) {
  const auto fn = reinterpret_cast<UdfBlock>(p.udf_addr[static_cast<std::size_t>(p.udf_fn[g])]);
  const double* args = regs + static_cast<index_t>(p.reg_off[g]) * n;
  if (fn(args, n, p.reg_len[g], x) != 1)
    throw std::domain_error("udf failed in plan group " + std::to_string(g) + ": it raised an exception");
}

}  // namespace

void run_block(const Program& p, const Inputs& in, index_t row_begin, index_t row_end, Output out) {
  const index_t ns = p.n_slots;
  const index_t rs = out.row_stride, cs = out.col_stride;
  const std::size_t groups = p.src.size();
  double x[kTile];
  // udf registers of the current tile: register r holds its n values at regs[r * n]
  std::vector<double> regs(static_cast<std::size_t>(p.n_regs * kTile));
  const TileBatch batch(p, row_end - row_begin >= 32);
  std::vector<double> buf(static_cast<std::size_t>(batch.n_batch * kTile));
  for (index_t t0 = row_begin; t0 < row_end; t0 += kTile) {
    const index_t n = std::min(kTile, row_end - t0);
    batch.fill(p, in, t0, n, buf.data());
    double* tile_out = out.base + (t0 - row_begin) * rs;
    // Zero the tile's rows just before the groups write them: the tile stays in cache, so
    // the output goes to memory once (zeroing the whole block first costs a second pass).
    if (cs == 1 && rs == ns) {
      std::memset(tile_out, 0, sizeof(double) * static_cast<std::size_t>(n * ns));
    } else {
      for (index_t i = 0; i < n; ++i)
        for (index_t s = 0; s < ns; ++s) tile_out[i * rs + s * cs] = 0.0;
    }
    for (std::size_t g = 0; g < groups; ++g) {
      const auto kind = static_cast<Source>(p.src_kind[g]);
      const double* xv = x;
      if (kind == Source::Udf || kind == Source::Product) {
        if (kind == Source::Udf) {
          run_udf_tile(p, g, regs.data(), x, n);
        } else {
          const double* ra = regs.data() + static_cast<index_t>(p.reg_off[g]) * n;
          const double* rb = ra + n;
          for (index_t i = 0; i < n; ++i) x[i] = ra[i] * rb[i];
        }
        for (std::size_t k = static_cast<std::size_t>(p.op_begin[g]); k < static_cast<std::size_t>(p.op_end[g]); ++k)
          apply_op_tile(p, k, x, n, g);
      } else {
        // A column group: the one reader the fused head shares (read, then the group's ops).
        xv = batch.values(p, in, g, t0, n, buf.data(), x);
      }
      const auto emit = static_cast<Emit>(p.emit[g]);
      if (emit == Emit::Register) {
        std::memcpy(regs.data() + p.slot[g] * n, xv, sizeof(double) * static_cast<std::size_t>(n));
        continue;
      }
      if (emit == Emit::Scalar) {
        double* o = tile_out + p.slot[g] * cs;
        for (index_t i = 0; i < n; ++i) o[i * rs] = xv[i];
        continue;
      }
      const index_t tab = p.tab_off[g];
      const index_t tlen = p.tab_len[g];
      for (index_t i = 0; i < n; ++i) {
        // Table index: 0 = unseen (also any code outside the table), 1 = missing, 2.. = codes.
        const int code = as_code(xv[i]);
        index_t idx = static_cast<index_t>(code) + 2;
        if (idx < 0 || idx >= tlen) idx = 0;
        double* orow = tile_out + i * rs;
        if (emit == Emit::OneHot) {
          const std::int32_t s = p.itab[static_cast<std::size_t>(tab + idx)];
          if (s >= 0) {
            orow[s * cs] = 1.0;
          } else if (s == kRaise) {
            throw std::domain_error("unknown category in plan group " + std::to_string(g));
          }
        } else {
          // bit 0: unseen raises; bit 1: missing raises (missing was not a fitted category)
          if (idx <= 1 && (p.unseen_error[g] & (idx == 0 ? 1 : 2)))
            throw std::domain_error("unknown category in plan group " + std::to_string(g));
          orow[p.slot[g] * cs] = p.dtab[static_cast<std::size_t>(tab + idx)];
        }
      }
    }
  }
}

void run(const Program& p, const Inputs& in, Output out, int n_threads) {
  parallel_for(in.n_rows, n_threads, kBlockRows, [&](index_t b, index_t e, index_t) {
    run_block(p, in, b, e, Output{out.base + b * out.row_stride, out.row_stride, out.col_stride});
  });
}

void set_numpy_loops(UfuncLoop log1p, void* log1p_data, UfuncLoop expm1, void* expm1_data) {
  g_log1p.data.store(log1p_data, std::memory_order_release);
  g_log1p.fn.store(log1p, std::memory_order_release);
  g_expm1.data.store(expm1_data, std::memory_order_release);
  g_expm1.fn.store(expm1, std::memory_order_release);
}

bool numpy_loops_set() { return g_log1p.fn.load() != nullptr && g_expm1.fn.load() != nullptr; }

void set_numpy_exp_loop(UfuncLoop exp, void* exp_data) {
  g_exp.data.store(exp_data, std::memory_order_release);
  g_exp.fn.store(exp, std::memory_order_release);
}

void numpy_exp(const double* in, double* out, index_t n) {
  apply_loop(g_exp, in, out, n, [](double v) { return std::exp(v); });
}

// The register of one group over one tile, as run_block computes it (kept separate from
// run_block so the fused linear head and the CSR builder can reuse it), applying the group's
// ops up to (not including) op k_stop.
namespace {
void group_values_until(const Program& p, const Inputs& in, std::size_t g, index_t t0, index_t n, double* x,
                        std::size_t k_stop) {
  if (n > kGroupTile) throw std::invalid_argument("plan: group_values tile too large");
  if (p.src_kind[g] == static_cast<std::int32_t>(Source::Udf) ||
      p.src_kind[g] == static_cast<std::int32_t>(Source::Product))
    throw std::invalid_argument("plan: group_values cannot read a register group");
  const void* col = in.columns[static_cast<std::size_t>(p.src[g])];
  auto k0 = static_cast<std::size_t>(p.op_begin[g]);
  if (in.row_stride > 0) {
    const double* d = static_cast<const double*>(col);
    for (index_t i = 0; i < n; ++i) x[i] = d[(t0 + i) * in.row_stride];
  } else switch (static_cast<Source>(p.src_kind[g])) {
    case Source::Float64: {
      const double* d = static_cast<const double*>(col) + t0;
      if (k0 < k_stop && p.op_code[k0] == static_cast<std::int32_t>(Op::Impute)) {
        const double a = p.op_a[k0++];  // the read and a leading impute in one pass
        for (index_t i = 0; i < n; ++i) x[i] = std::isnan(d[i]) ? a : d[i];
      } else {
        std::memcpy(x, d, sizeof(double) * static_cast<std::size_t>(n));
      }
      break;
    }
    case Source::Float32: {
      const float* f = static_cast<const float*>(col) + t0;
      for (index_t i = 0; i < n; ++i) x[i] = static_cast<double>(f[i]);
      break;
    }
    case Source::Datetime: {
      const std::int64_t* d = static_cast<const std::int64_t*>(col) + t0;
      const int part = static_cast<int>(p.op_a[static_cast<std::size_t>(p.op_begin[g])]);
      for (index_t i = 0; i < n; ++i) x[i] = date_part(d[i], part);
      break;
    }
    default: {
      const std::int32_t* c = static_cast<const std::int32_t*>(col) + t0;
      for (index_t i = 0; i < n; ++i) x[i] = c[i] == kMissing ? std::nan("") : static_cast<double>(c[i]);
      break;
    }
  }
  for (std::size_t k = k0; k < k_stop; ++k) apply_op_tile(p, k, x, n, g);
}
}  // namespace

void group_values(const Program& p, const Inputs& in, std::size_t g, index_t t0, index_t n, double* x) {
  group_values_until(p, in, g, t0, n, x, static_cast<std::size_t>(p.op_end[g]));
}

TileBatch::TileBatch(const Program& p, bool batch) : row(p.src.size(), -1) {
  if (!batch) return;
  for (std::size_t g = 0; g < p.src.size(); ++g) {
    const auto kind = static_cast<Source>(p.src_kind[g]);
    if (kind == Source::Udf || kind == Source::Product || p.op_end[g] == p.op_begin[g] ||
        p.op_code[static_cast<std::size_t>(p.op_end[g] - 1)] != static_cast<std::int32_t>(Op::Log1p) ||
        p.emit[g] == static_cast<std::int32_t>(Emit::Register))
      continue;
    bool raises = false;
    for (auto k = static_cast<std::size_t>(p.op_begin[g]); k + 1 < static_cast<std::size_t>(p.op_end[g]); ++k)
      raises |= p.op_code[k] == static_cast<std::int32_t>(Op::CheckFinite) ||
                p.op_code[k] == static_cast<std::int32_t>(Op::CheckNan);
    if (!raises) row[g] = static_cast<std::int32_t>(n_batch++);
  }
}

void TileBatch::fill(const Program& p, const Inputs& in, index_t t0, index_t n, double* buf, std::size_t g_begin,
                     std::size_t g_end) const {
  if (n_batch == 0) return;
  g_end = std::min(g_end, row.size());
  index_t r0 = -1, r1 = -1;
  for (std::size_t g = g_begin; g < g_end; ++g)
    if (row[g] >= 0) {
      group_values_until(p, in, g, t0, n, buf + static_cast<index_t>(row[g]) * n,
                         static_cast<std::size_t>(p.op_end[g] - 1));
      if (r0 < 0) r0 = row[g];
      r1 = row[g] + 1;
    }
  if (r0 >= 0) apply_loop(g_log1p, buf + r0 * n, buf + r0 * n, (r1 - r0) * n, log1p_fb);  // in place
}

}  // namespace forgeline::plan
