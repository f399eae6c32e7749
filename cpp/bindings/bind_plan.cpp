#include <cstdint>
#include <memory>
#include <optional>

#include "bindings.hpp"
#include "forgeline/plan.hpp"

namespace forgeline::bind {

void bind_plan_fused(py::module_& m);  // bind_plan_fused.cpp

namespace {

template <class T>
std::vector<T> to_vec(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

using I32 = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

// The udf part of a program; a program without udfs passes empty arrays.
void set_udfs(plan::Program& p, const I32& udf_fn, const I32& reg_off, const I32& reg_len,
              const std::vector<std::uintptr_t>& udf_addr, index_t n_regs) {
  const std::size_t g = p.src.size();
  if (udf_fn.size() == 0 && reg_off.size() == 0 && reg_len.size() == 0) {
    p.udf_fn.assign(g, -1);
    p.reg_off.assign(g, 0);
    p.reg_len.assign(g, 0);
  } else {
    p.udf_fn = to_vec(udf_fn); p.reg_off = to_vec(reg_off); p.reg_len = to_vec(reg_len);
  }
  p.udf_addr = udf_addr;
  p.n_regs = n_regs;
}

}  // namespace

// See bindings.hpp.
plan::Inputs row_major_inputs(const plan::Program& p, const F64& X) {
  if (X.ndim() != 2) throw std::invalid_argument("plan: run_rows needs a 2-D array");
  const index_t n = X.shape(0), k = X.shape(1);
  plan::Inputs in;
  in.n_rows = n;
  in.row_stride = k;
  for (index_t j = 0; j < k; ++j) in.columns.push_back(X.data() + j);
  for (std::size_t g = 0; g < p.src.size(); ++g) {
    if (p.src_kind[g] == static_cast<std::int32_t>(plan::Source::Udf) ||
        p.src_kind[g] == static_cast<std::int32_t>(plan::Source::Product))
      continue;  // register groups read no column
    if (p.src[g] >= k) throw std::invalid_argument("plan: group reads a column that was not passed");
    if (p.src_kind[g] == static_cast<std::int32_t>(plan::Source::Datetime))
      throw std::invalid_argument("plan: run_rows cannot read datetime columns");
  }
  return in;
}

plan::Inputs plan_inputs(const plan::Program& p, const py::list& columns, const py::handle& kinds_arg,
                         index_t n_rows, std::vector<py::array>& keep) {
  const I32 kinds = I32::ensure(kinds_arg);
  if (!kinds || kinds.ndim() != 1) throw std::invalid_argument("plan: kinds must be a 1-D int32 array");
  plan::Inputs in;
  in.n_rows = n_rows;
  const auto* k = kinds.data();
  if (static_cast<std::size_t>(kinds.size()) != columns.size())
    throw std::invalid_argument("plan: one kind per input column is required");
  for (std::size_t i = 0; i < columns.size(); ++i) {
    py::array a;
    switch (static_cast<plan::Source>(k[i])) {
      case plan::Source::Float64: a = F64::ensure(columns[i]); break;
      case plan::Source::Float32:
        a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(columns[i]);
        break;
      case plan::Source::Datetime:
        a = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(columns[i]);
        break;
      default: a = I32::ensure(columns[i]); break;
    }
    if (!a || a.ndim() != 1 || a.shape(0) != n_rows)
      throw std::invalid_argument("plan: input column " + std::to_string(i) + " must be 1-D with n_rows values");
    in.columns.push_back(a.data());
    keep.push_back(std::move(a));
  }
  for (std::size_t g = 0; g < p.src.size(); ++g) {
    if (p.src_kind[g] == static_cast<std::int32_t>(plan::Source::Udf) ||
        p.src_kind[g] == static_cast<std::int32_t>(plan::Source::Product))
      continue;  // register groups read no column
    if (static_cast<std::size_t>(p.src[g]) >= in.columns.size())
      throw std::invalid_argument("plan: group reads a column that was not passed");
    if (p.src_kind[g] != k[p.src[g]]) throw std::invalid_argument("plan: column kind differs from the program's");
  }
  return in;
}

void bind_plan(py::module_& m) {
  using plan::Program;
  py::class_<Program, std::shared_ptr<Program>>(m, "FeatureProgram")
      .def(py::init([](index_t n_slots, const I32& src, const I32& src_kind, const I32& op_begin,
                       const I32& op_end, const I32& emit, const I32& slot, const I32& tab_off,
                       const I32& tab_len, const I32& unseen_error, const I32& op_code,
                       const I32& op_off, const I32& op_len, const F64& op_a, const F64& op_b,
                       const F64& dtab, const I32& itab, const I32& udf_fn, const I32& reg_off,
                       const I32& reg_len, const std::vector<std::uintptr_t>& udf_addr,
                       index_t n_regs) {
             auto p = std::make_shared<Program>();
             p->n_slots = n_slots;
             p->src = to_vec(src); p->src_kind = to_vec(src_kind);
             p->op_begin = to_vec(op_begin); p->op_end = to_vec(op_end);
             p->emit = to_vec(emit); p->slot = to_vec(slot);
             p->tab_off = to_vec(tab_off); p->tab_len = to_vec(tab_len);
             p->unseen_error = to_vec(unseen_error);
             p->op_code = to_vec(op_code); p->op_off = to_vec(op_off); p->op_len = to_vec(op_len);
             p->op_a = to_vec(op_a); p->op_b = to_vec(op_b);
             p->dtab = to_vec(dtab); p->itab = to_vec(itab);
             set_udfs(*p, udf_fn, reg_off, reg_len, udf_addr, n_regs);
             p->check();
             return p;
           }),
           py::arg("n_slots"), py::arg("src"), py::arg("src_kind"), py::arg("op_begin"),
           py::arg("op_end"), py::arg("emit"), py::arg("slot"), py::arg("tab_off"),
           py::arg("tab_len"), py::arg("unseen_error"), py::arg("op_code"), py::arg("op_off"),
           py::arg("op_len"), py::arg("op_a"), py::arg("op_b"), py::arg("dtab"), py::arg("itab"),
           py::arg("udf_fn") = I32(), py::arg("reg_off") = I32(), py::arg("reg_len") = I32(),
           py::arg("udf_addr") = std::vector<std::uintptr_t>(), py::arg("n_regs") = 0)
      .def_property_readonly("n_slots", [](const Program& p) { return p.n_slots; })
      .def(
          "run",
          [](const Program& p, const py::list& columns, const I32& kinds, index_t n_rows,
             int n_threads, std::optional<py::array_t<double>> out_arg) {
            std::vector<py::array> keep;  // holds the buffers alive while the GIL is released
            plan::Inputs in = plan_inputs(p, columns, kinds, n_rows, keep);
            py::array_t<double> out;
            if (out_arg) {
              // Caller-provided output (any strides, e.g. column-major): checked, never copied.
              out = *out_arg;
              if (out.ndim() != 2 || out.shape(0) != n_rows || out.shape(1) != p.n_slots)
                throw std::invalid_argument("plan: out must have shape (n_rows, n_slots)");
              if (!out.writeable()) throw std::invalid_argument("plan: out must be writeable");
              if (out.strides(0) < 0 || out.strides(1) < 0 || out.strides(0) % 8 || out.strides(1) % 8)
                throw std::invalid_argument("plan: out strides must be positive multiples of 8");
            } else {
              out = py::array_t<double>({n_rows, static_cast<index_t>(p.n_slots)});
            }
            plan::Output o{out.mutable_data(), static_cast<index_t>(out.strides(0) / 8),
                           static_cast<index_t>(out.strides(1) / 8)};
            {
              // Safe: the kernel reads only buffers held by `keep` and writes only `out`.
              py::gil_scoped_release release;
              plan::run(p, in, o, n_threads);
            }
            return out;
          },
          py::arg("columns"), py::arg("kinds"), py::arg("n_rows"), py::arg("n_threads") = 0,
          py::arg("out") = py::none())
      .def(
          "run_rows",
          [](const Program& p, const F64& X, int n_threads) {
            const plan::Inputs in = row_major_inputs(p, X);
            const index_t n = in.n_rows;
            py::array_t<double> out({n, static_cast<index_t>(p.n_slots)});
            plan::Output o{out.mutable_data(), static_cast<index_t>(p.n_slots), 1};
            if (n * p.n_slots < 65536) {
              plan::run(p, in, o, 1);  // tiny input: the GIL round trip costs more than it saves
            } else {
              // Safe: reads only X (held by the caller) and writes only `out`.
              py::gil_scoped_release release;
              plan::run(p, in, o, n_threads);
            }
            return out;
          },
          py::arg("X"), py::arg("n_threads") = 0);
  m.def(
      "_set_numpy_loops",
      [](std::uintptr_t log1p, std::uintptr_t log1p_data, std::uintptr_t expm1,
         std::uintptr_t expm1_data) {
        plan::set_numpy_loops(reinterpret_cast<plan::UfuncLoop>(log1p),
                              reinterpret_cast<void*>(log1p_data),
                              reinterpret_cast<plan::UfuncLoop>(expm1),
                              reinterpret_cast<void*>(expm1_data));
      },
      py::arg("log1p"), py::arg("log1p_data"), py::arg("expm1"), py::arg("expm1_data"),
      "Register numpy's float64 log1p/expm1 inner loops (addresses; 0 = use libm).");
  m.def("_numpy_loops_set", &plan::numpy_loops_set);
  m.def(
      "_set_numpy_exp_loop",
      [](std::uintptr_t fn, std::uintptr_t data) {
        plan::set_numpy_exp_loop(reinterpret_cast<plan::UfuncLoop>(fn), reinterpret_cast<void*>(data));
      },
      py::arg("exp"), py::arg("exp_data"), "Register numpy's float64 exp inner loop (address; 0 = use libm).");
  m.def(
      "_numpy_exp",
      [](const py::array_t<double, py::array::c_style | py::array::forcecast>& x) {
        py::array_t<double> out(x.size());
        plan::numpy_exp(x.data(), out.mutable_data(), static_cast<index_t>(x.size()));
        return out;
      },
      py::arg("x"), "exp through the registered loop (the registration's self-check).");
  bind_plan_fused(m);
}

}  // namespace forgeline::bind
