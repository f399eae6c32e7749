#include <memory>

#include "bindings.hpp"
#include "forgeline/plan.hpp"

namespace forgeline::bind {

namespace {

template <class T>
std::vector<T> to_vec(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

using I32 = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

}  // namespace

void bind_plan(py::module_& m) {
  using plan::Program;
  py::class_<Program, std::shared_ptr<Program>>(m, "FeatureProgram")
      .def(py::init([](index_t n_slots, const I32& src, const I32& src_kind, const I32& op_begin,
                       const I32& op_end, const I32& emit, const I32& slot, const I32& tab_off,
                       const I32& tab_len, const I32& unseen_error, const I32& op_code,
                       const I32& op_off, const I32& op_len, const F64& op_a, const F64& op_b,
                       const F64& dtab, const I32& itab) {
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
             p->check();
             return p;
           }),
           py::arg("n_slots"), py::arg("src"), py::arg("src_kind"), py::arg("op_begin"),
           py::arg("op_end"), py::arg("emit"), py::arg("slot"), py::arg("tab_off"),
           py::arg("tab_len"), py::arg("unseen_error"), py::arg("op_code"), py::arg("op_off"),
           py::arg("op_len"), py::arg("op_a"), py::arg("op_b"), py::arg("dtab"), py::arg("itab"))
      .def_property_readonly("n_slots", [](const Program& p) { return p.n_slots; })
      .def(
          "run",
          [](const Program& p, const py::list& columns, const I32& kinds, index_t n_rows,
             int n_threads) {
            plan::Inputs in;
            in.n_rows = n_rows;
            const auto* k = kinds.data();
            if (static_cast<std::size_t>(kinds.size()) != columns.size())
              throw std::invalid_argument("plan: one kind per input column is required");
            std::vector<py::array> keep;  // holds the buffers alive while the GIL is released
            for (std::size_t i = 0; i < columns.size(); ++i) {
              py::array a;
              switch (static_cast<plan::Source>(k[i])) {
                case plan::Source::Float64: a = F64::ensure(columns[i]); break;
                case plan::Source::Float32:
                  a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(columns[i]);
                  break;
                default: a = I32::ensure(columns[i]); break;
              }
              if (!a || a.ndim() != 1 || a.shape(0) != n_rows)
                throw std::invalid_argument("plan: input column " + std::to_string(i) +
                                            " must be 1-D with n_rows values");
              in.columns.push_back(a.data());
              keep.push_back(std::move(a));
            }
            for (std::size_t g = 0; g < p.src.size(); ++g) {
              if (static_cast<std::size_t>(p.src[g]) >= in.columns.size())
                throw std::invalid_argument("plan: group reads a column that was not passed");
              if (p.src_kind[g] != k[p.src[g]])
                throw std::invalid_argument("plan: column kind differs from the program's");
            }
            py::array_t<double> out({n_rows, static_cast<index_t>(p.n_slots)});
            double* o = out.mutable_data();
            {
              // Safe: the kernel reads only buffers held by `keep` and writes only `out`.
              py::gil_scoped_release release;
              plan::run(p, in, o, n_threads);
            }
            return out;
          },
          py::arg("columns"), py::arg("kinds"), py::arg("n_rows"), py::arg("n_threads") = 0)
      .def(
          "run_rows",
          [](const Program& p, const F64& X, int n_threads) {
            // Row-major input (n_rows, n_inputs); categorical codes as doubles, NaN missing.
            if (X.ndim() != 2) throw std::invalid_argument("plan: run_rows needs a 2-D array");
            const index_t n = X.shape(0), k = X.shape(1);
            plan::Inputs in;
            in.n_rows = n;
            in.row_stride = k;
            for (index_t j = 0; j < k; ++j) in.columns.push_back(X.data() + j);
            for (std::size_t g = 0; g < p.src.size(); ++g)
              if (p.src[g] >= k) throw std::invalid_argument("plan: group reads a column that was not passed");
            py::array_t<double> out({n, static_cast<index_t>(p.n_slots)});
            double* o = out.mutable_data();
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
}

}  // namespace forgeline::bind
