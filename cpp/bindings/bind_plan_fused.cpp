// Bindings of the fused linear head (forgeline/plan.hpp, run_linear).
#include <cstdint>
#include <memory>
#include <utility>

#include "bindings.hpp"
#include "forgeline/parallel.hpp"
#include "forgeline/plan.hpp"

namespace forgeline::bind {

namespace {

using I32 = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

struct FusedLinear {
  std::shared_ptr<plan::Program> program;
  plan::LinearHead head;
};

index_t out_width(const FusedLinear& f, bool logistic) {
  if (logistic && f.head.n_out != 1) throw std::invalid_argument("linear head: the logistic link needs one output");
  return logistic ? 2 : f.head.n_out;
}


}  // namespace

template <class Off>
py::array_t<std::int32_t> codes_of(const plan::Vocabulary& v, const py::array& offsets_arr, const py::array& data_arr,
                                   const py::object& valid_obj, index_t valid_offset, index_t n) {
  auto offsets = py::array_t<Off, py::array::c_style>::ensure(offsets_arr);
  auto data = py::array_t<std::uint8_t, py::array::c_style>::ensure(data_arr);
  if (!offsets || !data || offsets.ndim() != 1 || data.ndim() != 1)
    throw std::invalid_argument("string codes: offsets and data must be 1-D arrays");
  if (n < 0 || offsets.shape(0) != n + 1) throw std::invalid_argument("string codes: need n + 1 offsets");
  const Off* o = offsets.data();
  if (o[0] < 0 || o[n] < o[0] || static_cast<py::ssize_t>(o[n]) > data.shape(0))
    throw std::invalid_argument("string codes: offsets outside the data buffer");
  py::array_t<std::uint8_t, py::array::c_style> valid;
  if (!valid_obj.is_none()) {
    valid = py::array_t<std::uint8_t, py::array::c_style>::ensure(valid_obj);
    if (!valid || valid.ndim() != 1 || valid_offset < 0 || (valid_offset + n + 7) / 8 > valid.shape(0))
      throw std::invalid_argument("string codes: validity bitmap too short");
  }
  py::array_t<std::int32_t> out(n);
  const std::uint8_t* vb = valid_obj.is_none() ? nullptr : valid.data();
  {
    // Safe: reads the held arrays and the immutable vocabulary, writes only `out`.
    py::gil_scoped_release release;
    plan::string_codes<Off>(v, o, reinterpret_cast<const char*>(data.data()), static_cast<std::size_t>(data.shape(0)), vb, valid_offset, n,
                            out.mutable_data());
  }
  return out;
}

// Codes of several string columns at once, one column per parallel chunk: every argument is
// a list with one entry per column (as StringVocabulary.codes takes them).
py::list codes_many(const py::list& vocabs, const py::list& offsets, const py::list& datas, const py::list& valids,
                    const std::vector<index_t>& valid_offsets, const std::vector<index_t>& ns, int n_threads) {
  const std::size_t c = vocabs.size();
  if (offsets.size() != c || datas.size() != c || valids.size() != c || valid_offsets.size() != c || ns.size() != c)
    throw std::invalid_argument("string codes: one entry per column in every list");
  struct Job {
    const plan::Vocabulary* v;
    py::array off, data, valid;
    bool wide = false, has_valid = false;
    index_t voff, n;
    py::array_t<std::int32_t> out;
  };
  std::vector<Job> jobs(c);
  for (std::size_t j = 0; j < c; ++j) {
    Job& b = jobs[j];
    b.v = &vocabs[j].cast<const plan::Vocabulary&>();
    b.off = offsets[j].cast<py::array>();
    b.wide = b.off.dtype().is(py::dtype::of<std::int64_t>());
    if (!b.wide && !b.off.dtype().is(py::dtype::of<std::int32_t>()))
      throw std::invalid_argument("string codes: offsets must be int32 or int64");
    b.off = b.wide ? py::array(py::array_t<std::int64_t, py::array::c_style>::ensure(b.off))
                   : py::array(py::array_t<std::int32_t, py::array::c_style>::ensure(b.off));
    b.data = py::array_t<std::uint8_t, py::array::c_style>::ensure(datas[j]);
    b.voff = valid_offsets[j];
    b.n = ns[j];
    if (!b.off || !b.data || b.off.ndim() != 1 || b.data.ndim() != 1 || b.n < 0 || b.off.shape(0) != b.n + 1)
      throw std::invalid_argument("string codes: need 1-D data and n + 1 offsets");
    const std::int64_t first = b.wide ? static_cast<const std::int64_t*>(b.off.data())[0]
                                      : static_cast<const std::int32_t*>(b.off.data())[0];
    const std::int64_t last = b.wide ? static_cast<const std::int64_t*>(b.off.data())[b.n]
                                     : static_cast<const std::int32_t*>(b.off.data())[b.n];
    if (first < 0 || last < first || last > b.data.shape(0))
      throw std::invalid_argument("string codes: offsets outside the data buffer");
    if (!valids[j].is_none()) {
      b.valid = py::array_t<std::uint8_t, py::array::c_style>::ensure(valids[j]);
      b.has_valid = true;
      if (!b.valid || b.valid.ndim() != 1 || b.voff < 0 || (b.voff + b.n + 7) / 8 > b.valid.shape(0))
        throw std::invalid_argument("string codes: validity bitmap too short");
    }
    b.out = py::array_t<std::int32_t>(b.n);
  }
  {
    // Safe: reads arrays held by `jobs` and immutable vocabularies; each chunk writes its own output.
    py::gil_scoped_release release;
    parallel_for(static_cast<index_t>(c), n_threads, 1, [&](index_t b0, index_t e0, index_t) {
      for (index_t j = b0; j < e0; ++j) {
        Job& b = jobs[static_cast<std::size_t>(j)];
        const auto* vb = b.has_valid ? static_cast<const std::uint8_t*>(b.valid.data()) : nullptr;
        const char* d = static_cast<const char*>(b.data.data());
        const auto dl = static_cast<std::size_t>(b.data.shape(0));
        std::int32_t* o = static_cast<std::int32_t*>(b.out.mutable_data());
        if (b.wide)
          plan::string_codes<std::int64_t>(*b.v, static_cast<const std::int64_t*>(b.off.data()), d, dl, vb, b.voff, b.n, o);
        else
          plan::string_codes<std::int32_t>(*b.v, static_cast<const std::int32_t*>(b.off.data()), d, dl, vb, b.voff, b.n, o);
      }
    });
  }
  py::list out;
  for (auto& b : jobs) out.append(b.out);
  return out;
}

void bind_plan_fused(py::module_& m) {
  m.def("_string_codes_many", &codes_many, py::arg("vocabs"), py::arg("offsets"), py::arg("datas"),
        py::arg("valids"), py::arg("valid_offsets"), py::arg("ns"), py::arg("n_threads") = 0);
  py::class_<plan::Vocabulary, std::shared_ptr<plan::Vocabulary>>(m, "StringVocabulary")
      .def(py::init([](std::vector<std::string> values) { return std::make_shared<plan::Vocabulary>(std::move(values)); }),
           py::arg("values"))
      .def(
          "codes",
          [](const plan::Vocabulary& v, const py::array& offsets, const py::array& data, const py::object& valid,
             index_t valid_offset, index_t n) {
            if (offsets.dtype().is(py::dtype::of<std::int64_t>()))
              return codes_of<std::int64_t>(v, offsets, data, valid, valid_offset, n);
            if (offsets.dtype().is(py::dtype::of<std::int32_t>()))
              return codes_of<std::int32_t>(v, offsets, data, valid, valid_offset, n);
            throw std::invalid_argument("string codes: offsets must be int32 or int64");
          },
          py::arg("offsets"), py::arg("data"), py::arg("valid"), py::arg("valid_offset"), py::arg("n"),
          "Codes (int32) of an Arrow string array's values: vocabulary position, -2 unseen, -1 null.");
  py::class_<FusedLinear>(m, "FusedLinear")
      .def(py::init([](std::shared_ptr<plan::Program> program, index_t n_out, const I64& w_off,
                       const F64& w, const F64& bias, bool finite_only) {
             FusedLinear f;
             if (!program) throw std::invalid_argument("linear head: program is None");
             f.program = std::move(program);
             f.head.n_out = n_out;
             f.head.w_off.assign(w_off.data(), w_off.data() + w_off.size());
             f.head.w.assign(w.data(), w.data() + w.size());
             f.head.bias.assign(bias.data(), bias.data() + bias.size());
             f.head.finite_only = finite_only;
             f.head.check(*f.program);
             return f;
           }),
           py::arg("program"), py::arg("n_out"), py::arg("w_off"), py::arg("w"), py::arg("bias"),
           py::arg("finite_only"))
      .def(
          "run",
          [](const FusedLinear& f, const py::list& columns, const I32& kinds, index_t n_rows, int n_threads,
             bool logistic) {
            std::vector<py::array> keep;
            plan::Inputs in = plan_inputs(*f.program, columns, kinds, n_rows, keep);
            py::array_t<double> out({n_rows, out_width(f, logistic)});
            double* o = out.mutable_data();
            index_t bad;
            {
              // Safe: the kernel reads only buffers held by `keep` and the head, writes only `out`.
              py::gil_scoped_release release;
              bad = plan::run_linear(*f.program, f.head, in, o, n_threads, logistic);
            }
            return py::make_tuple(out, bad);
          },
          py::arg("columns"), py::arg("kinds"), py::arg("n_rows"), py::arg("n_threads") = 0,
          py::arg("logistic") = false,
          "(margins (n_rows, n_out) or, with logistic, binary probabilities (n_rows, 2); first row "
          "with a non-finite value or -1)")
      .def(
          "run_rows",
          [](const FusedLinear& f, const F64& X, bool logistic) {
            // Runs inline on the calling thread: this is the low-latency path.
            const auto& p = *f.program;
            const plan::Inputs in = row_major_inputs(p, X);
            const index_t n = in.n_rows;
            py::array_t<double> out({n, out_width(f, logistic)});
            const index_t bad = plan::run_linear(p, f.head, in, out.mutable_data(), 1, logistic);
            return py::make_tuple(out, bad);
          },
          py::arg("X"), py::arg("logistic") = false);
}

}  // namespace forgeline::bind
