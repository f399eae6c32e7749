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

// One string column's Arrow buffers, validated (offsets n + 1 entries of int32/int64 with the
// first and last inside data, a long enough validity bitmap) and held for the native coder.
struct HeldString {
  py::array off, data, valid;
  plan::StringSource src;
};

HeldString hold_string(const plan::Vocabulary& vocab, const py::handle& offsets, const py::handle& data,
                       const py::handle& valid, index_t valid_offset, index_t n) {
  HeldString h;
  plan::StringSource& s = h.src;
  s.vocab = &vocab;
  h.off = offsets.cast<py::array>();
  s.wide = h.off.dtype().is(py::dtype::of<std::int64_t>());
  if (!s.wide && !h.off.dtype().is(py::dtype::of<std::int32_t>()))
    throw std::invalid_argument("string codes: offsets must be int32 or int64");
  h.off = s.wide ? py::array(py::array_t<std::int64_t, py::array::c_style>::ensure(h.off))
                 : py::array(py::array_t<std::int32_t, py::array::c_style>::ensure(h.off));
  h.data = py::array_t<std::uint8_t, py::array::c_style>::ensure(data);
  if (!h.off || !h.data || h.off.ndim() != 1 || h.data.ndim() != 1 || n < 0 || h.off.shape(0) != n + 1)
    throw std::invalid_argument("string codes: need 1-D data and n + 1 offsets");
  const std::int64_t first = s.wide ? static_cast<const std::int64_t*>(h.off.data())[0]
                                    : static_cast<const std::int32_t*>(h.off.data())[0];
  const std::int64_t last = s.wide ? static_cast<const std::int64_t*>(h.off.data())[n]
                                   : static_cast<const std::int32_t*>(h.off.data())[n];
  if (first < 0 || last < first || last > h.data.shape(0))
    throw std::invalid_argument("string codes: offsets outside the data buffer");
  if (!valid.is_none()) {
    h.valid = py::array_t<std::uint8_t, py::array::c_style>::ensure(valid);
    if (!h.valid || h.valid.ndim() != 1 || valid_offset < 0 || (valid_offset + n + 7) / 8 > h.valid.shape(0))
      throw std::invalid_argument("string codes: validity bitmap too short");
    s.valid = static_cast<const std::uint8_t*>(h.valid.data());
  }
  s.offsets = h.off.data();
  s.data = static_cast<const char*>(h.data.data());
  s.data_len = static_cast<std::size_t>(h.data.shape(0));
  s.valid_offset = valid_offset;
  s.n = n;
  return h;
}

// Codes of several string columns at once, one column per parallel chunk: every argument is
// a list with one entry per column (as StringVocabulary.codes takes them).
py::list codes_many(const py::list& vocabs, const py::list& offsets, const py::list& datas, const py::list& valids,
                    const std::vector<index_t>& valid_offsets, const std::vector<index_t>& ns, int n_threads) {
  const std::size_t c = vocabs.size();
  if (offsets.size() != c || datas.size() != c || valids.size() != c || valid_offsets.size() != c || ns.size() != c)
    throw std::invalid_argument("string codes: one entry per column in every list");
  std::vector<HeldString> jobs;
  std::vector<py::array_t<std::int32_t>> outs;
  for (std::size_t j = 0; j < c; ++j) {
    jobs.push_back(hold_string(vocabs[j].cast<const plan::Vocabulary&>(), offsets[j], datas[j], valids[j], valid_offsets[j], ns[j]));
    outs.emplace_back(ns[j]);
    jobs.back().src.out = outs.back().mutable_data();
  }
  {
    // Safe: reads arrays held by `jobs` and immutable vocabularies; each chunk writes its own output.
    py::gil_scoped_release release;
    parallel_for(static_cast<index_t>(c), n_threads, 1, [&](index_t b0, index_t e0, index_t) {
      for (index_t j = b0; j < e0; ++j) {
        const plan::StringSource& s = jobs[static_cast<std::size_t>(j)].src;
        plan::code_rows(s, 0, s.n);
      }
    });
  }
  py::list out;
  for (auto& o : outs) out.append(o);
  return out;
}

void bind_plan_fused(py::module_& m) {
  m.def("_set_fused_simd", &plan::set_fused_simd, py::arg("on"),
        "Let the fused linear head use its AVX-512 copy (default) or force the baseline one.");
  m.def("_string_codes_many", &codes_many, py::arg("vocabs"), py::arg("offsets"), py::arg("datas"),
        py::arg("valids"), py::arg("valid_offsets"), py::arg("ns"), py::arg("n_threads") = 0);
  py::class_<plan::Vocabulary, std::shared_ptr<plan::Vocabulary>>(m, "StringVocabulary")
      .def(py::init([](std::vector<std::string> values) { return std::make_shared<plan::Vocabulary>(std::move(values)); }),
           py::arg("values"))
      .def(
          "codes",
          [](const plan::Vocabulary& v, const py::array& offsets, const py::array& data, const py::object& valid,
             index_t valid_offset, index_t n) {
            HeldString h = hold_string(v, offsets, data, valid, valid_offset, n);
            py::array_t<std::int32_t> out(n);
            h.src.out = out.mutable_data();
            {
              // Safe: reads the held arrays and the immutable vocabulary, writes only `out`.
              py::gil_scoped_release release;
              plan::code_rows(h.src, 0, n);
            }
            return out;
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
