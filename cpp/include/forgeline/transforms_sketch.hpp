// Deterministic, mergeable quantile sketch behind forgeline.transforms.QuantileSketch: a
// KLL-style compactor hierarchy without randomness. Pure C++: never include pybind11 here.
//
// levels[h] holds values of weight 2^h. Level 0 is an unsorted buffer; levels >= 1 are
// sorted. A compaction sorts a block of an even number s >= 2k of values of one level and
// moves every other one (starting at parity[h], which then flips) up a level with double
// weight. Any query's rank moves by at most 2^h per compaction at level h, and each such
// compaction consumes s*2^h >= 2k*2^h of the input weight, so the total rank error is at
// most (number of compacting levels) * n / (2k) (the bound QuantileSketch documents). The
// total weight stays exactly n. Results depend only on the sequence of adds and merges.
#pragma once
#include <cstdint>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::transforms {

struct Compactor {
  std::vector<std::vector<double>> levels;
  std::vector<std::uint8_t> parity;
};

// Adds the non-NaN values of x, then compacts. Level 0 is compacted in blocks of 2k values,
// so each value is sorted once inside a cache-sized block (no sort of the whole input).
void compactor_add(Compactor& s, View1D<const double> x, index_t k);

// Merges b into a (level by level), then compacts.
void compactor_merge(Compactor& a, const Compactor& b, index_t k);

// Compacts every level holding more than 2k values (level 0: whole 2k blocks).
void compactor_compress(Compactor& s, index_t k);

// For each q in [0, 1]: the smallest stored value whose cumulative weight (values sorted
// ascending) exceeds q*(n-1), n the total weight; NaN when the sketch is empty.
void compactor_quantiles(const Compactor& s, const double* q, index_t nq, double* out);

}  // namespace forgeline::transforms
