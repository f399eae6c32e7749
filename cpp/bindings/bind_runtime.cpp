#include <cmath>
#include <vector>

#include "bindings.hpp"
#include "forgeline/parallel.hpp"

namespace forgeline::bind {

namespace {

// Sum of x repeated `repeats` times, with per-chunk partial sums reduced in chunk order, so
// the result is bit-identical for every thread count. Used by the GIL and determinism tests.
double chunked_sum(View1D<const double> x, int repeats, int n_threads, index_t grain) {
  const index_t chunks = num_chunks(x.size, grain);
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallel_for(x.size, n_threads, grain, [&](index_t b, index_t e, index_t k) {
    double s = 0.0;
    for (int r = 0; r < repeats; ++r)
      for (index_t i = b; i < e; ++i) s += std::sqrt(std::fabs(x[i]) + r);
    partial[static_cast<size_t>(k)] = s;
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void bind_runtime(py::module_& m) {
  m.def("default_num_threads", &default_num_threads,
        "Threads used when n_threads is None (FORGELINE_NUM_THREADS, OMP_NUM_THREADS, cores).");
  m.def(
      "_chunked_sum",
      [](const py::array_t<double, py::array::forcecast>& x, int repeats, int n_threads,
         index_t grain) {
        auto v = view1d(x);
        // Safe to drop the GIL: the kernel touches only x's buffer, which `x` keeps alive.
        py::gil_scoped_release release;
        return chunked_sum(v, repeats, n_threads, grain);
      },
      py::arg("x"), py::arg("repeats") = 1, py::arg("n_threads") = 0, py::arg("grain") = 4096);
  m.def(
      "_fail_in_chunk",
      [](index_t n, int n_threads, index_t bad) {
        py::gil_scoped_release release;
        parallel_for(n, n_threads, 16, [&](index_t b, index_t e, index_t) {
          if (bad >= b && bad < e) throw std::invalid_argument("chunk failure at " + std::to_string(bad));
        });
      },
      py::arg("n"), py::arg("n_threads"), py::arg("bad"));
}

}  // namespace forgeline::bind
