#include "forgeline/plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "forgeline/parallel.hpp"

namespace forgeline::plan {

namespace {

constexpr index_t kBlockRows = 512;

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
  }
  return x;  // unreachable: check() rejects unknown op codes
}

inline int as_code(double x) {
  if (std::isnan(x)) return kMissing;
  return static_cast<int>(x);
}

}  // namespace

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
  for (std::size_t k = 0; k < nops; ++k) {
    if (op_code[k] < 1 || op_code[k] > 16) throw std::invalid_argument("plan: unknown op code");
    if (op_off[k] < 0 || op_len[k] < 0 ||
        static_cast<std::size_t>(op_off[k]) + static_cast<std::size_t>(op_len[k]) > dtab.size())
      throw std::invalid_argument("plan: op table out of range");
  }
  for (std::size_t i = 0; i < g; ++i) {
    if (src[i] < 0) throw std::invalid_argument("plan: negative source column");
    if (src_kind[i] < 0 || src_kind[i] > 2) throw std::invalid_argument("plan: bad source kind");
    if (op_begin[i] < 0 || op_end[i] < op_begin[i] || static_cast<std::size_t>(op_end[i]) > nops)
      throw std::invalid_argument("plan: op range out of bounds");
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
        if (slot[i] < 0 || slot[i] >= n_slots) throw std::invalid_argument("plan: slot out of range");
        if (end > dtab.size() || tab_len[i] < 2) throw std::invalid_argument("plan: lookup table out of range");
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

// Apply op k to every value of the tile; the switch is outside the loop so each case is a
// simple (often vectorised) loop.
void apply_op_tile(const Program& p, std::size_t k, double* FL_RESTRICT x, index_t n) {
  const double a = p.op_a[k];
  switch (static_cast<Op>(p.op_code[k])) {
    case Op::Impute: for (index_t i = 0; i < n; ++i) x[i] = std::isnan(x[i]) ? a : x[i]; return;
    case Op::Add: for (index_t i = 0; i < n; ++i) x[i] += a; return;
    case Op::Sub: for (index_t i = 0; i < n; ++i) x[i] -= a; return;
    case Op::Mul: for (index_t i = 0; i < n; ++i) x[i] *= a; return;
    case Op::Div: for (index_t i = 0; i < n; ++i) x[i] /= a; return;
    default: for (index_t i = 0; i < n; ++i) x[i] = apply_op(p, k, x[i]); return;
  }
}

}  // namespace

void run_block(const Program& p, const Inputs& in, index_t row_begin, index_t row_end, double* out) {
  const index_t ns = p.n_slots;
  std::memset(out, 0, sizeof(double) * static_cast<std::size_t>((row_end - row_begin) * ns));
  const std::size_t groups = p.src.size();
  double x[kTile];
  for (index_t t0 = row_begin; t0 < row_end; t0 += kTile) {
    const index_t n = std::min(kTile, row_end - t0);
    double* tile_out = out + (t0 - row_begin) * ns;
    for (std::size_t g = 0; g < groups; ++g) {
      const void* col = in.columns[static_cast<std::size_t>(p.src[g])];
      if (in.row_stride > 0) {
        const double* d = static_cast<const double*>(col);
        for (index_t i = 0; i < n; ++i) x[i] = d[(t0 + i) * in.row_stride];
      } else switch (static_cast<Source>(p.src_kind[g])) {
        case Source::Float64: std::memcpy(x, static_cast<const double*>(col) + t0, sizeof(double) * n); break;
        case Source::Float32: {
          const float* f = static_cast<const float*>(col) + t0;
          for (index_t i = 0; i < n; ++i) x[i] = static_cast<double>(f[i]);
          break;
        }
        default: {
          // categorical codes: missing becomes NaN so imputers see it as missing
          const std::int32_t* c = static_cast<const std::int32_t*>(col) + t0;
          for (index_t i = 0; i < n; ++i) x[i] = c[i] == kMissing ? std::nan("") : static_cast<double>(c[i]);
          break;
        }
      }
      for (std::size_t k = static_cast<std::size_t>(p.op_begin[g]); k < static_cast<std::size_t>(p.op_end[g]); ++k)
        apply_op_tile(p, k, x, n);
      const auto emit = static_cast<Emit>(p.emit[g]);
      if (emit == Emit::Scalar) {
        double* o = tile_out + p.slot[g];
        for (index_t i = 0; i < n; ++i) o[i * ns] = x[i];
        continue;
      }
      const index_t tab = p.tab_off[g];
      const index_t tlen = p.tab_len[g];
      for (index_t i = 0; i < n; ++i) {
        // Table index: 0 = unseen (also any code outside the table), 1 = missing, 2.. = codes.
        const int code = as_code(x[i]);
        index_t idx = static_cast<index_t>(code) + 2;
        if (idx < 0 || idx >= tlen) idx = 0;
        double* orow = tile_out + i * ns;
        if (emit == Emit::OneHot) {
          const std::int32_t s = p.itab[static_cast<std::size_t>(tab + idx)];
          if (s >= 0) {
            orow[s] = 1.0;
          } else if (s == kRaise) {
            throw std::domain_error("unknown category in plan group " + std::to_string(g));
          }
        } else {
          // bit 0: unseen raises; bit 1: missing raises (missing was not a fitted category)
          if (idx <= 1 && (p.unseen_error[g] & (idx == 0 ? 1 : 2)))
            throw std::domain_error("unknown category in plan group " + std::to_string(g));
          orow[p.slot[g]] = p.dtab[static_cast<std::size_t>(tab + idx)];
        }
      }
    }
  }
}

void run(const Program& p, const Inputs& in, double* out, int n_threads) {
  const index_t ns = p.n_slots;
  parallel_for(in.n_rows, n_threads, kBlockRows, [&](index_t b, index_t e, index_t) {
    run_block(p, in, b, e, out + b * ns);
  });
}

}  // namespace forgeline::plan
