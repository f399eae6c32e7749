#include "bindings.hpp"

namespace forgeline::bind {

void bind_trees(py::module_& m) { (void)m; }

}  // namespace forgeline::bind
