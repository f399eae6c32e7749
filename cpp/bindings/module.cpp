#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "forgeline native kernels (internal; use the forgeline Python API)";
  using namespace forgeline::bind;
  bind_runtime(m);
  bind_plan(m);
  bind_trees(m);
  bind_transforms(m);
  bind_linear(m);
  bind_drift(m);
  bind_tune(m);
  bind_hist(m);
}
