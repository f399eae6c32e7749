#include "bindings.hpp"

namespace forgeline::bind {

void bind_transforms(py::module_& m) { (void)m; }

}  // namespace forgeline::bind
