// The fused linear head: feature program + linear model in one pass over row tiles.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "forgeline/parallel.hpp"
#include "forgeline/plan.hpp"

namespace forgeline::plan {

namespace {
constexpr index_t kFusedBlockRows = 2048;
constexpr index_t kPhaseColumns = 12;
}  // namespace

void LinearHead::check(const Program& p) const {
  const std::size_t g = p.src.size();
  if (n_out < 1) throw std::invalid_argument("linear head: n_out must be >= 1");
  if (w_off.size() != g) throw std::invalid_argument("linear head: one weight offset per group is required");
  if (bias.size() != static_cast<std::size_t>(n_out)) throw std::invalid_argument("linear head: bias size");
  for (std::size_t i = 0; i < g; ++i) {
    const auto e = static_cast<Emit>(p.emit[i]);
    const std::int64_t len = (e == Emit::Scalar ? 1 : static_cast<std::int64_t>(p.tab_len[i])) * n_out;
    if (w_off[i] < 0 || w_off[i] + len > static_cast<std::int64_t>(w.size()))
      throw std::invalid_argument("linear head: weights out of range for group " + std::to_string(i));
  }
}

namespace {
// Whether a table group can raise on a table index: OneHot entries of kRaise, or Lookup's
// unseen/missing policy. Groups that cannot skip the per-row check.
bool table_may_raise(const Program& p, std::size_t g) {
  if (static_cast<Emit>(p.emit[g]) == Emit::OneHot) {
    for (std::int32_t t = p.tab_off[g]; t < p.tab_off[g] + p.tab_len[g]; ++t)
      if (p.itab[static_cast<std::size_t>(t)] == kRaise) return true;
    return false;
  }
  return p.unseen_error[g] != 0;
}

[[noreturn]] void unknown_category(std::size_t g) {
  throw std::domain_error("unknown category in plan group " + std::to_string(g));
}

// margin[i] += w[idx_i * K + k] for table indices idx (0 unseen or outside, 1 missing, 2 + code).
inline void add_rows(const double* FL_RESTRICT w, const index_t* FL_RESTRICT idx, index_t n, index_t K,
                     double* FL_RESTRICT m) {
  if (K == 1) {
    for (index_t i = 0; i < n; ++i) m[i] += w[idx[i]];
    return;
  }
  for (index_t i = 0; i < n; ++i)
    for (index_t k = 0; k < K; ++k) m[i * K + k] += w[idx[i] * K + k];
}

void check_rows(const Program& p, std::size_t g, const index_t* idx, index_t n) {
  if (static_cast<Emit>(p.emit[g]) == Emit::OneHot) {
    const std::int32_t* it = p.itab.data() + p.tab_off[g];
    for (index_t i = 0; i < n; ++i)
      if (it[idx[i]] == kRaise) unknown_category(g);
    return;
  }
  // bit 0: unseen raises; bit 1: missing raises (missing was not a fitted category)
  for (index_t i = 0; i < n; ++i)
    if (idx[i] <= 1 && (p.unseen_error[g] & (idx[i] == 0 ? 1 : 2))) unknown_category(g);
}

// Column phases: the end group of each run of groups reading at most kPhaseColumns distinct
// input columns. A block's rows go through one phase after another, so only that many
// columns stream from memory at a time (~50 concurrent streams defeat the hardware
// prefetcher: reading T2's 40 float columns in 256-row tiles took 27 ms against 17 ms column
// by column; the pass gained 2 ms of 55). Each row still adds its groups in group order.
std::vector<std::size_t> column_phases(const Program& p) {
  std::vector<std::size_t> phase_end;
  std::vector<std::int32_t> seen;
  for (std::size_t g = 0; g < p.src.size(); ++g) {
    const std::int32_t c = p.src[g];
    if (std::find(seen.begin(), seen.end(), c) == seen.end()) {
      if (static_cast<index_t>(seen.size()) == kPhaseColumns) {
        phase_end.push_back(g);
        seen.clear();
      }
      seen.push_back(c);
    }
  }
  phase_end.push_back(p.src.size());
  return phase_end;
}

// What one chunk of the pass reads (run_linear's locals).
struct FusedCtx {
  const Program& p;
  const LinearHead& h;
  const Inputs& in;
  double* out;
  bool logistic;
  index_t K;
  const TileBatch& batch;
  const std::vector<char>& may_raise;
  const std::vector<std::size_t>& phase_end;
  std::vector<index_t>& first_bad;
};

// One chunk [b, e) of the pass. Compiled twice (baseline and AVX-512, chosen at run time);
// the file has FP contraction off, so both copies give the same bits.
__attribute__((always_inline)) inline void fused_chunk_body(const FusedCtx& c, index_t b, index_t e, index_t chunk) {
  const Program& p = c.p;
  const LinearHead& h = c.h;
  const Inputs& in = c.in;
  double* out = c.out;
  const bool logistic = c.logistic;
  const index_t K = c.K;
  const TileBatch& batch = c.batch;
  const std::vector<char>& may_raise = c.may_raise;
  const std::vector<std::size_t>& phase_end = c.phase_end;
  std::vector<index_t>& first_bad = c.first_bad;
  std::vector<double> buf(static_cast<std::size_t>(batch.n_batch * kGroupTile));
  double x[kGroupTile];
  index_t idx[kGroupTile];
  // the logistic link's margins (K == 1) never leave the block
  std::vector<double> block_margin(logistic ? static_cast<std::size_t>(e - b) : 0);
  double* mb = logistic ? block_margin.data() : out + b * K;
  for (index_t i = 0; i < e - b; ++i)
    for (index_t k = 0; k < K; ++k) mb[i * K + k] = h.bias[static_cast<std::size_t>(k)];
  std::size_t g_begin = 0;
  for (const std::size_t g_end : phase_end) {
    for (index_t t0 = b; t0 < e; t0 += kGroupTile) {
      const index_t n = std::min(kGroupTile, e - t0);
      double* m = mb + (t0 - b) * K;
      batch.fill(p, in, t0, n, buf.data(), g_begin, g_end);
      // Contributions are added in group order whatever was batched: a fixed order per row.
      for (std::size_t g = g_begin; g < g_end; ++g) {
        const double* w = h.w.data() + h.w_off[g];
        const auto emit = static_cast<Emit>(p.emit[g]);
        const index_t tlen = p.tab_len[g];
        if (emit != Emit::Scalar && p.op_begin[g] == p.op_end[g] && in.row_stride == 0 &&
            p.src_kind[g] == static_cast<std::int32_t>(Source::Codes)) {
          // An encoder straight on a categorical column: the code indexes the table
          // directly (no round trip through a double register).
          const std::int32_t* c = static_cast<const std::int32_t*>(in.columns[static_cast<std::size_t>(p.src[g])]) + t0;
          for (index_t i = 0; i < n; ++i) {
            const index_t v = static_cast<index_t>(c[i]) + 2;  // -2 unseen -> 0, -1 missing -> 1
            idx[i] = (v < 0 || v >= tlen) ? 0 : v;
          }
          if (may_raise[g]) check_rows(p, g, idx, n);
          add_rows(w, idx, n, K, m);
          continue;
        }
        const double* xv = batch.values(p, in, g, t0, n, buf.data(), x);
        if (emit == Emit::Scalar) {
          if (K == 1) {
            const double w0 = w[0];
            for (index_t i = 0; i < n; ++i) m[i] += w0 * xv[i];
          } else {
            for (index_t i = 0; i < n; ++i)
              for (index_t k = 0; k < K; ++k) m[i * K + k] += w[k] * xv[i];
          }
          continue;
        }
        for (index_t i = 0; i < n; ++i) {
          // Table index as run_block computes it: 0 unseen (or outside), 1 missing, 2 + code.
          index_t v = std::isnan(xv[i]) ? 1 : static_cast<index_t>(static_cast<int>(xv[i])) + 2;
          idx[i] = (v < 0 || v >= tlen) ? 0 : v;
        }
        if (may_raise[g]) check_rows(p, g, idx, n);
        add_rows(w, idx, n, K, m);
      }
    }
    g_begin = g_end;
  }
  // No per-value finiteness checks: a non-finite feature or table value always makes its
  // row's margin non-finite (w * NaN, w * inf and 0 * inf all are), so checking the margins
  // once per block finds every such row. A margin that overflows from finite features is
  // flagged too; the caller then takes the model's own path, which gives the right answer.
  if (h.finite_only) {
    for (index_t i = 0; i < e - b; ++i) {
      bool nf = false;
      for (index_t k = 0; k < K; ++k) nf |= !std::isfinite(mb[i * K + k]);
      if (nf) {
        first_bad[static_cast<std::size_t>(chunk)] = b + i;
        break;
      }
    }
  }
  if (logistic) {
    // 1 / (1 + exp(-z)), then [1 - p, p]: the model's Python link, operation for operation.
    for (index_t t0 = b; t0 < e; t0 += kGroupTile) {
      const index_t n = std::min(kGroupTile, e - t0);
      const double* m = mb + (t0 - b);
      for (index_t i = 0; i < n; ++i) x[i] = -m[i];
      numpy_exp(x, x, n);
      double* o = out + t0 * 2;
      for (index_t i = 0; i < n; ++i) {
        const double pr = 1.0 / (1.0 + x[i]);
        o[2 * i] = 1.0 - pr;
        o[2 * i + 1] = pr;
      }
    }
  }
}

using ChunkFn = void (*)(const FusedCtx&, index_t, index_t, index_t);
[[maybe_unused]] std::atomic<bool> g_fused_simd{true};  // false: the baseline copy (tests compare the two)
void fused_chunk_generic(const FusedCtx& c, index_t b, index_t e, index_t chunk) { fused_chunk_body(c, b, e, chunk); }
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void fused_chunk_avx512(const FusedCtx& c, index_t b,
                                                                                     index_t e, index_t chunk) {
  fused_chunk_body(c, b, e, chunk);
}
ChunkFn pick_chunk_fn() {
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  }();
  return avx512 && g_fused_simd.load(std::memory_order_relaxed) ? &fused_chunk_avx512 : &fused_chunk_generic;
}
#else
ChunkFn pick_chunk_fn() { return &fused_chunk_generic; }
#endif
}  // namespace

void set_fused_simd(bool on) { g_fused_simd.store(on, std::memory_order_relaxed); }

index_t run_linear(const Program& p, const LinearHead& h, const Inputs& in, double* out, int n_threads,
                   bool logistic) {
  const index_t K = h.n_out;
  if (logistic && K != 1) throw std::invalid_argument("linear head: the logistic link needs one output");
  const std::size_t groups = p.src.size();
  const TileBatch batch(p, in.n_rows >= 32);
  std::vector<char> may_raise(groups, 0);
  for (std::size_t g = 0; g < groups; ++g)
    if (static_cast<Emit>(p.emit[g]) != Emit::Scalar) may_raise[g] = table_may_raise(p, g);
  const std::vector<std::size_t> phase_end = column_phases(p);
  const index_t chunks = num_chunks(in.n_rows, kFusedBlockRows);
  std::vector<index_t> first_bad(static_cast<std::size_t>(chunks), -1);
  const FusedCtx c{p, h, in, out, logistic, K, batch, may_raise, phase_end, first_bad};
  const ChunkFn run_chunk = pick_chunk_fn();
  parallel_for(in.n_rows, n_threads, kFusedBlockRows,
               [&](index_t b, index_t e, index_t chunk) { run_chunk(c, b, e, chunk); });
  for (index_t r : first_bad)
    if (r >= 0) return r;
  return -1;
}

}  // namespace forgeline::plan
