// The one header shared by every binding file. Only cpp/bindings/ may include pybind11.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "forgeline/common.hpp"

namespace py = pybind11;

namespace forgeline::bind {

// Views over numpy arrays. The caller holds the py::array alive for as long as the view is
// used; bindings take views before releasing the GIL and keep the arrays in scope.
template <class T>
View1D<const T> view1d(const py::array_t<T>& a) {
  if (a.ndim() != 1) throw std::invalid_argument("expected a 1-D array");
  return {a.data(), static_cast<index_t>(a.shape(0)),
          static_cast<index_t>(a.strides(0) / static_cast<py::ssize_t>(sizeof(T)))};
}

template <class T>
View2D<const T> view2d(const py::array_t<T>& a) {
  if (a.ndim() != 2) throw std::invalid_argument("expected a 2-D array");
  return {a.data(), static_cast<index_t>(a.shape(0)), static_cast<index_t>(a.shape(1)),
          static_cast<index_t>(a.strides(0) / static_cast<py::ssize_t>(sizeof(T))),
          static_cast<index_t>(a.strides(1) / static_cast<py::ssize_t>(sizeof(T)))};
}

// One function per area; module.cpp calls each. Each lives in bind_<area>.cpp.
void bind_runtime(py::module_& m);
void bind_plan(py::module_& m);
void bind_trees(py::module_& m);
void bind_transforms(py::module_& m);
void bind_linear(py::module_& m);
void bind_drift(py::module_& m);

}  // namespace forgeline::bind
