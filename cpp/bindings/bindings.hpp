// The one header shared by every binding file. Only cpp/bindings/ may include pybind11.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::plan {
struct Program;
struct Inputs;
}  // namespace forgeline::plan

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

// The plan's input columns, each converted to the dtype of its kind (int32 codes, float64,
// float32, int64 ns) and checked against the program; `keep` holds the converted arrays alive
// while the GIL is released. Defined in bind_plan.cpp; every plan-running binding uses it.
plan::Inputs plan_inputs(const plan::Program& p, const py::list& columns, const py::handle& kinds,
                         index_t n_rows, std::vector<py::array>& keep);

// The row-major form for run_rows: X is (n_rows, n_inputs) float64, categorical codes as
// doubles (NaN missing), checked against the program (register groups read no column;
// datetime columns are refused). X must outlive the returned Inputs. Defined in bind_plan.cpp.
plan::Inputs row_major_inputs(const plan::Program& p,
                              const py::array_t<double, py::array::c_style | py::array::forcecast>& X);

// One function per area; module.cpp calls each. Each lives in bind_<area>.cpp.
void bind_runtime(py::module_& m);
void bind_plan(py::module_& m);
void bind_trees(py::module_& m);
void bind_transforms(py::module_& m);
void bind_linear(py::module_& m);
void bind_drift(py::module_& m);
void bind_tune(py::module_& m);
void bind_hist(py::module_& m);

}  // namespace forgeline::bind
