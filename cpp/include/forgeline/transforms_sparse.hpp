// CSR output of a feature program (forgeline.transforms' sparse one-hot / ColumnTransformer
// output). Pure C++: never include pybind11 here.
#pragma once
#include <cstdint>

#include "forgeline/common.hpp"
#include "forgeline/plan.hpp"

namespace forgeline::transforms {

// Runs `p` over all rows and stores the nonzero entries of each output row as CSR, in
// increasing column order: exactly what scipy gives for `csr_matrix(dense)` (explicit
// zeros, including -0.0, dropped; NaN kept).
//
// `bound` is an upper bound on nonzeros per row (a program group writes at most one slot
// per row, so min(groups, slots)). `data`/`indices` hold n_rows*bound entries; rows are
// written chunk by chunk at chunk_begin*bound and then compacted to the front in chunk
// order, so the result does not depend on the thread count. `indptr` has n_rows+1 entries.
// Returns nnz. Throws std::logic_error when a row has more than `bound` nonzeros.
template <class I>
index_t run_csr(const plan::Program& p, const plan::Inputs& in, index_t bound, double* data,
                I* indices, I* indptr, int n_threads);

}  // namespace forgeline::transforms
