#include "bindings.hpp"

namespace forgeline::bind {

void bind_linear(py::module_& m) { (void)m; }

}  // namespace forgeline::bind
