// parallel_for over fixed-size chunks on a persistent std::thread pool.
//
// Determinism: the work is cut into chunks of `grain` items, and chunk k always covers
// [k*grain, min((k+1)*grain, n)), whatever the thread count. A kernel that writes per-chunk
// partial results and reduces them in chunk order is therefore bit-identical for any
// number of threads. Threads only decide who runs a chunk, never what a chunk is.
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>

#include "forgeline/common.hpp"

namespace forgeline {

// Threads to use when the caller passes n_threads <= 0: FORGELINE_NUM_THREADS, then
// OMP_NUM_THREADS, then std::thread::hardware_concurrency().
int default_num_threads();

// Resolve a user request (<= 0 means "all") to a concrete positive count.
inline int resolve_threads(int n_threads) {
  return n_threads > 0 ? n_threads : default_num_threads();
}

// Number of chunks for n items with the given grain.
inline index_t num_chunks(index_t n, index_t grain) {
  grain = std::max<index_t>(grain, 1);
  return n <= 0 ? 0 : (n + grain - 1) / grain;
}

namespace detail {
// Runs body(chunk_index) for chunk_index in [0, n_chunks) on up to n_threads threads
// (the calling thread included). Rethrows the first exception after every chunk has
// finished or been skipped. Calls made from inside a pool worker run inline, so nested
// parallel regions cannot deadlock.
void run_chunks(index_t n_chunks, int n_threads, const std::function<void(index_t)>& body);
}  // namespace detail

// fn(begin, end, chunk_index) is called once per chunk. Small inputs (one chunk) and
// n_threads == 1 run inline on the calling thread with no pool involvement.
template <class F>
void parallel_for(index_t n, int n_threads, index_t grain, F&& fn) {
  grain = std::max<index_t>(grain, 1);
  const index_t chunks = num_chunks(n, grain);
  if (chunks == 0) return;
  const int threads = resolve_threads(n_threads);
  auto body = [&](index_t k) {
    const index_t begin = k * grain;
    const index_t end = std::min(n, begin + grain);
    fn(begin, end, k);
  };
  if (chunks == 1 || threads == 1) {
    for (index_t k = 0; k < chunks; ++k) body(k);
    return;
  }
  detail::run_chunks(chunks, threads, body);
}

}  // namespace forgeline
