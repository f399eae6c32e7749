// CSR output of a feature program (see transforms_sparse.hpp).
#include "forgeline/transforms_sparse.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "forgeline/parallel.hpp"

namespace forgeline::transforms {

namespace {
// Rows per parallel chunk, and rows per dense scratch tile inside a chunk: the tile
// (kTileRows x n_slots doubles) stays in L2 while it is scanned for nonzeros.
constexpr index_t kChunkRows = 2048;
constexpr index_t kTileRows = 64;
}  // namespace

template <class I>
index_t run_csr(const plan::Program& p, const plan::Inputs& in, index_t bound, double* data,
                I* indices, I* indptr, int n_threads) {
  const index_t n = in.n_rows;
  const index_t ns = p.n_slots;
  const index_t chunks = num_chunks(n, kChunkRows);
  std::vector<index_t> chunk_nnz(static_cast<std::size_t>(chunks), 0);
  indptr[0] = 0;
  parallel_for(n, n_threads, kChunkRows, [&](index_t b, index_t e, index_t k) {
    std::vector<double> tile(static_cast<std::size_t>(kTileRows * std::max<index_t>(ns, 1)));
    double* FL_RESTRICT dv = data + b * bound;
    I* FL_RESTRICT di = indices + b * bound;
    index_t pos = 0;
    for (index_t t0 = b; t0 < e; t0 += kTileRows) {
      const index_t t1 = std::min(e, t0 + kTileRows);
      plan::run_block(p, in, t0, t1, plan::Output{tile.data(), ns, 1});
      for (index_t r = t0; r < t1; ++r) {
        const double* row = tile.data() + (r - t0) * ns;
        const index_t start = pos;
        for (index_t s = 0; s < ns; ++s) {
          const double v = row[s];
          if (v != 0.0) {  // NaN != 0: kept, as scipy keeps it
            if (FL_UNLIKELY(pos - start >= bound))
              throw std::logic_error("run_csr: more nonzeros in a row than the bound");
            dv[pos] = v;
            di[pos] = static_cast<I>(s);
            ++pos;
          }
        }
        indptr[r + 1] = static_cast<I>(pos - start);  // a count for now; summed below
      }
    }
    chunk_nnz[static_cast<std::size_t>(k)] = pos;
  });
  // Compact the chunks to the front in chunk order (each moves down or stays: no clobbering).
  index_t at = 0;
  for (index_t k = 0; k < chunks; ++k) {
    const index_t src = k * kChunkRows * bound;
    const index_t len = chunk_nnz[static_cast<std::size_t>(k)];
    if (src != at && len > 0) {
      std::memmove(data + at, data + src, sizeof(double) * static_cast<std::size_t>(len));
      std::memmove(indices + at, indices + src, sizeof(I) * static_cast<std::size_t>(len));
    }
    at += len;
  }
  for (index_t r = 0; r < n; ++r) indptr[r + 1] = static_cast<I>(indptr[r + 1] + indptr[r]);
  return at;
}

template index_t run_csr<std::int32_t>(const plan::Program&, const plan::Inputs&, index_t, double*,
                                       std::int32_t*, std::int32_t*, int);
template index_t run_csr<std::int64_t>(const plan::Program&, const plan::Inputs&, index_t, double*,
                                       std::int64_t*, std::int64_t*, int);

}  // namespace forgeline::transforms
