#include "bindings.hpp"

namespace forgeline::bind {

void bind_drift(py::module_& m) { (void)m; }

}  // namespace forgeline::bind
