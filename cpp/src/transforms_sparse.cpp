// CSR output of a feature program (see transforms_sparse.hpp).
#include "forgeline/transforms_sparse.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "forgeline/parallel.hpp"

namespace forgeline::transforms {

namespace {
// Rows per parallel chunk, and rows per tile inside a chunk (the executor's tile).
constexpr index_t kChunkRows = 1024;
constexpr index_t kTileRows = 128;
static_assert(kTileRows <= plan::kGroupTile, "group_values reads at most kGroupTile rows");

// The direct path appends each group's entries to the rows in group order, which gives
// sorted column indices only when every group's slots lie strictly after the previous
// groups' slots (what ColumnTransformer programs look like). Udf programs go through the
// dense tile too: their groups read registers that group_values does not fill.
bool direct_ok(const plan::Program& p) {
  index_t prev = -1;
  for (std::size_t g = 0; g < p.src.size(); ++g) {
    const auto emit = static_cast<plan::Emit>(p.emit[g]);
    if (emit == plan::Emit::Register || p.src_kind[g] == static_cast<std::int32_t>(plan::Source::Udf))
      return false;
    index_t lo = p.slot[g], hi = p.slot[g];
    if (emit == plan::Emit::OneHot) {
      lo = p.n_slots;
      hi = -1;
      for (std::int32_t t = p.tab_off[g]; t < p.tab_off[g] + p.tab_len[g]; ++t) {
        const index_t s = p.itab[static_cast<std::size_t>(t)];
        if (s >= 0) {
          lo = std::min(lo, s);
          hi = std::max(hi, s);
        }
      }
      if (hi < 0) continue;  // never emits anything
    }
    if (lo <= prev) return false;
    prev = hi;
  }
  return true;
}

// The executor's table index of a code register: 0 unseen (or out of the table), 1 missing,
// 2 + code otherwise.
inline index_t table_index(double x, index_t tlen) {
  if (std::isnan(x)) return 1;
  const index_t idx = static_cast<index_t>(static_cast<int>(x)) + 2;
  return (idx < 0 || idx >= tlen) ? 0 : idx;
}

[[noreturn]] void unknown_category(std::size_t g) {
  throw std::domain_error("unknown category in plan group " + std::to_string(g));
}

// Rows [t0, t0 + n) of the program as (value, column) entries per row, row i's at
// sd/si[i * stride, i * stride + cnt[i]), in increasing column order (direct_ok). Entries
// are written unconditionally into this cache-resident staging tile and kept by advancing
// cnt only when nonzero: no branch per value. NaN != 0, so it is kept, and -0.0 == 0, so
// it is dropped, as scipy does.
template <class I>
void tile_entries(const plan::Program& p, const plan::TileBatch& batch, const plan::Inputs& in, index_t t0,
                  index_t n, index_t stride, double* buf, double* FL_RESTRICT sd, I* FL_RESTRICT si,
                  index_t* FL_RESTRICT cnt) {
  double xt[kTileRows];
  for (index_t i = 0; i < n; ++i) cnt[i] = 0;
  batch.fill(p, in, t0, n, buf);
  for (std::size_t g = 0; g < p.src.size(); ++g) {
    const double* FL_RESTRICT x = batch.values(p, in, g, t0, n, buf, xt);
    const auto emit = static_cast<plan::Emit>(p.emit[g]);
    if (emit == plan::Emit::Scalar) {
      const I s = static_cast<I>(p.slot[g]);
      for (index_t i = 0; i < n; ++i) {
        const index_t o = i * stride + cnt[i];
        sd[o] = x[i];
        si[o] = s;
        cnt[i] += (x[i] != 0.0);
      }
      continue;
    }
    const index_t tlen = p.tab_len[g];
    if (emit == plan::Emit::OneHot) {
      const std::int32_t* map = p.itab.data() + p.tab_off[g];
      for (index_t i = 0; i < n; ++i) {
        const std::int32_t s = map[table_index(x[i], tlen)];
        if (FL_UNLIKELY(s == plan::kRaise)) unknown_category(g);
        const index_t o = i * stride + cnt[i];
        sd[o] = 1.0;
        si[o] = static_cast<I>(s);
        cnt[i] += (s >= 0);
      }
      continue;
    }
    const double* vals = p.dtab.data() + p.tab_off[g];  // Lookup
    const I s = static_cast<I>(p.slot[g]);
    const std::int32_t err = p.unseen_error[g];
    for (index_t i = 0; i < n; ++i) {
      const index_t idx = table_index(x[i], tlen);
      // bit 0: unseen raises; bit 1: missing raises (missing was not a fitted category)
      if (FL_UNLIKELY(idx <= 1 && (err & (idx == 0 ? 1 : 2)))) unknown_category(g);
      const double v = vals[idx];
      const index_t o = i * stride + cnt[i];
      sd[o] = v;
      si[o] = s;
      cnt[i] += (v != 0.0);
    }
  }
}

// The fallback: a dense tile of all slots from the executor, scanned for nonzeros.
template <class I>
void tile_entries_dense(const plan::Program& p, const plan::Inputs& in, index_t t0, index_t n,
                        index_t stride, double* tile, double* FL_RESTRICT sd, I* FL_RESTRICT si,
                        index_t* FL_RESTRICT cnt) {
  const index_t ns = p.n_slots;
  plan::run_block(p, in, t0, t0 + n, plan::Output{tile, ns, 1});
  for (index_t i = 0; i < n; ++i) {
    const double* row = tile + i * ns;
    index_t c = 0;
    for (index_t s = 0; s < ns; ++s) {
      if (row[s] != 0.0) {  // NaN != 0: kept, as scipy keeps it
        if (FL_UNLIKELY(c >= stride)) throw std::logic_error("run_csr: more nonzeros in a row than the bound");
        sd[i * stride + c] = row[s];
        si[i * stride + c] = static_cast<I>(s);
        ++c;
      }
    }
    cnt[i] = c;
  }
}
}  // namespace

template <class I>
index_t run_csr(const plan::Program& p, const plan::Inputs& in, index_t bound, double* data,
                I* indices, I* indptr, int n_threads) {
  const index_t n = in.n_rows;
  const bool direct = direct_ok(p);
  // Staging width per row: the direct path writes (then maybe drops) one entry per group.
  const index_t stride = std::max<index_t>(direct ? static_cast<index_t>(p.src.size()) : bound, 1);
  const index_t chunks = num_chunks(n, kChunkRows);
  const plan::TileBatch batch(p);
  // Chunk k's entries start at start[k], which chunk k - 1 publishes as soon as it knows its
  // own count. Chunks are claimed in increasing order, so a chunk that finds its start known
  // writes straight into the result; one that does not (another thread still runs the
  // previous chunk) stages its entries and copies them once the start is published. Either
  // way every entry is written once, in parallel, and the result does not depend on the
  // thread count. A failing chunk sets `abort` so that no later chunk waits forever.
  std::unique_ptr<std::atomic<index_t>[]> start(new std::atomic<index_t>[static_cast<std::size_t>(chunks) + 1]);
  for (index_t k = 0; k <= chunks; ++k) start[static_cast<std::size_t>(k)].store(k == 0 ? 0 : -1);
  std::atomic<bool> abort{false};
  indptr[0] = 0;
  parallel_for(n, n_threads, kChunkRows, [&](index_t b, index_t e, index_t k) {
    try {
      thread_local std::vector<double> sd, tile, buf, cd;
      thread_local std::vector<I> si, ci;
      sd.resize(static_cast<std::size_t>(kTileRows * stride));
      si.resize(sd.size());
      buf.resize(direct ? static_cast<std::size_t>(batch.n_batch * kTileRows) : 0);
      if (!direct) tile.resize(static_cast<std::size_t>(kTileRows * std::max<index_t>(p.n_slots, 1)));
      index_t cnt[kTileRows];
      index_t at = start[static_cast<std::size_t>(k)].load(std::memory_order_acquire);
      const bool staged = at < 0;
      if (staged) {
        cd.resize(static_cast<std::size_t>((e - b) * bound));
        ci.resize(cd.size());
      }
      double* FL_RESTRICT dv = staged ? cd.data() : data + at;
      I* FL_RESTRICT di = staged ? ci.data() : indices + at;
      index_t pos = 0;
      for (index_t t0 = b; t0 < e; t0 += kTileRows) {
        const index_t m = std::min(e - t0, kTileRows);
        if (direct)
          tile_entries<I>(p, batch, in, t0, m, stride, buf.data(), sd.data(), si.data(), cnt);
        else
          tile_entries_dense<I>(p, in, t0, m, stride, tile.data(), sd.data(), si.data(), cnt);
        for (index_t i = 0; i < m; ++i) {
          const index_t c = cnt[i];
          if (FL_UNLIKELY(c > bound)) throw std::logic_error("run_csr: more nonzeros in a row than the bound");
          std::memcpy(dv + pos, sd.data() + i * stride, sizeof(double) * static_cast<std::size_t>(c));
          std::memcpy(di + pos, si.data() + i * stride, sizeof(I) * static_cast<std::size_t>(c));
          pos += c;
          indptr[t0 + i + 1] = static_cast<I>(c);  // a count for now; made absolute below
        }
      }
      if (staged) {
        while ((at = start[static_cast<std::size_t>(k)].load(std::memory_order_acquire)) < 0) {
          if (abort.load(std::memory_order_acquire)) return;  // an earlier chunk failed
          std::this_thread::yield();
        }
      }
      start[static_cast<std::size_t>(k + 1)].store(at + pos, std::memory_order_release);
      if (staged) {
        std::memcpy(data + at, cd.data(), sizeof(double) * static_cast<std::size_t>(pos));
        std::memcpy(indices + at, ci.data(), sizeof(I) * static_cast<std::size_t>(pos));
      }
      index_t run = at;
      for (index_t r = b; r < e; ++r) {
        run += indptr[r + 1];
        indptr[r + 1] = static_cast<I>(run);
      }
      // The buffers are kept per thread across calls, but not when they are big (very wide
      // programs): a pool thread must not hold on to them.
      if (cd.capacity() * sizeof(double) > (std::size_t{8} << 20)) {
        std::vector<double>().swap(cd);
        std::vector<I>().swap(ci);
      }
      if (sd.capacity() * sizeof(double) + tile.capacity() * sizeof(double) > (std::size_t{8} << 20)) {
        std::vector<double>().swap(sd);
        std::vector<I>().swap(si);
        std::vector<double>().swap(tile);
      }
    } catch (...) {
      abort.store(true, std::memory_order_release);
      throw;
    }
  });
  return chunks == 0 ? 0 : start[static_cast<std::size_t>(chunks)].load();
}

template index_t run_csr<std::int32_t>(const plan::Program&, const plan::Inputs&, index_t, double*,
                                       std::int32_t*, std::int32_t*, int);
template index_t run_csr<std::int64_t>(const plan::Program&, const plan::Inputs&, index_t, double*,
                                       std::int64_t*, std::int64_t*, int);

}  // namespace forgeline::transforms
