// Bindings for dense networks (linear models are one-layer networks).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "forgeline/linear.hpp"
#include "forgeline/mlp.hpp"

namespace forgeline::bind {

namespace {

using nn::Act;
using nn::Network;

template <class T>
std::vector<T> to_vec(const std::optional<py::array_t<T, py::array::forcecast>>& a) {
  if (!a) return {};
  auto v = view1d(*a);
  std::vector<T> out(static_cast<size_t>(v.size));
  for (index_t i = 0; i < v.size; ++i) out[static_cast<size_t>(i)] = v[i];
  return out;
}

Act to_act(int code) {
  if (!nn::valid_act(code)) throw std::invalid_argument("unknown activation code " + std::to_string(code));
  return static_cast<Act>(code);
}

template <class T, class In>
py::tuple predict_as(const Network<T>& net, const py::array& X, int n_threads, bool check_finite) {
  auto x = py::array_t<In, py::array::forcecast>::ensure(X);
  if (!x) throw std::invalid_argument("input must be a 2-D float array");
  auto v = view2d(x);
  if (v.cols != net.n_in())
    throw std::invalid_argument("expected " + std::to_string(net.n_in()) + " input columns, got " +
                                std::to_string(v.cols));
  py::array_t<T> out({static_cast<py::ssize_t>(v.rows), static_cast<py::ssize_t>(net.n_out())});
  T* o = out.mutable_data();
  index_t bad;
  {
    // Safe to drop the GIL: the kernel reads only x's buffer and the network's own
    // immutable weights, and writes only `out`; all three are kept alive by this frame.
    py::gil_scoped_release release;
    bad = net.predict(v, o, n_threads, check_finite);
  }
  return py::make_tuple(out, bad);
}

// The latency path. Returns the output array alone (no tuple: a tuple is a GC-tracked
// allocation, and with many live objects the collections it triggers cost more than the
// forward pass). Bad input raises ValueError; the Python caller then takes the general
// path, which reports it as a typed forgeline error.
template <class T, class In>
py::array predict_one_as(const Network<T>& net, const py::array& x, bool check_finite, bool squeeze) {
  const auto nd = x.ndim();
  if (!(nd == 1 || (nd == 2 && x.shape(0) == 1)) || x.shape(nd - 1) != net.n_in())
    throw py::value_error("expected one row of " + std::to_string(net.n_in()) + " values");
  const auto stride = x.strides(nd - 1);
  if (stride % static_cast<py::ssize_t>(sizeof(In)) != 0) throw py::value_error("misaligned input");
  const py::ssize_t n_out = net.n_out();
  py::array_t<T> out = (nd == 1 || (squeeze && n_out == 1)) ? py::array_t<T>(n_out)
                                                            : py::array_t<T>({py::ssize_t{1}, n_out});
  // The GIL stays held: one row is about a microsecond of work, less than the cost of
  // releasing and re-acquiring it, and nothing here can block.
  const index_t bad = net.predict_row(static_cast<const In*>(x.data()),
                                      static_cast<index_t>(stride / static_cast<py::ssize_t>(sizeof(In))),
                                      out.mutable_data(), check_finite);
  if (bad >= 0) throw py::value_error("non-finite input");
  return out;
}

// numpy's byteorder character for the non-native order ('=' and '|' are native).
char foreign_byteorder() {
  const std::uint16_t one = 1;
  return *reinterpret_cast<const unsigned char*>(&one) == 1 ? '>' : '<';
}

bool is_f32(const py::array& a) { return a.dtype().is(py::dtype::of<float>()); }

template <class T>
void bind_network(py::module_& m, const char* name) {
  using Arr = py::array_t<T, py::array::forcecast>;
  py::class_<Network<T>>(m, name)
      .def(py::init<index_t>(), py::arg("n_in"))
      .def(
          "add_dense",
          [](Network<T>& net, const Arr& w, const Arr& b, int act, double alpha, const std::optional<Arr>& scale,
             const std::optional<Arr>& shift) {
            net.add_dense(view2d(w), view1d(b), to_vec<T>(scale), to_vec<T>(shift), to_act(act), static_cast<T>(alpha));
          },
          py::arg("weights"), py::arg("bias"), py::arg("act") = 0, py::arg("alpha") = 0.0,
          py::arg("scale") = py::none(), py::arg("shift") = py::none())
      .def(
          "add_activation",
          [](Network<T>& net, int act, double alpha) { net.add_activation(to_act(act), static_cast<T>(alpha)); },
          py::arg("act"), py::arg("alpha") = 0.0)
      .def(
          "add_affine",
          [](Network<T>& net, const Arr& scale, const Arr& shift) {
            net.add_affine(to_vec<T>(scale), to_vec<T>(shift));
          },
          py::arg("scale"), py::arg("shift"))
      .def(
          "add_layernorm",
          [](Network<T>& net, const std::optional<Arr>& gamma, const std::optional<Arr>& beta, double eps) {
            net.add_layernorm(to_vec<T>(gamma), to_vec<T>(beta), eps);
          },
          py::arg("gamma"), py::arg("beta"), py::arg("eps"))
      .def("add_softmax", &Network<T>::add_softmax)
      .def_property_readonly("n_in", &Network<T>::n_in)
      .def_property_readonly("n_out", &Network<T>::n_out)
      .def(
          "predict",
          [](const Network<T>& net, const py::array& X, int n_threads, bool check_finite) {
            return is_f32(X) ? predict_as<T, float>(net, X, n_threads, check_finite)
                             : predict_as<T, double>(net, X, n_threads, check_finite);
          },
          py::arg("X"), py::arg("n_threads") = 0, py::arg("check_finite") = false,
          "(out, first_bad_row): forward pass; first_bad_row is -1 unless check_finite found a NaN/inf row.")
      .def(
          "predict_one",
          [](const Network<T>& net, const py::array& x, bool check_finite, bool squeeze) -> py::array {
            // Read the dtype straight from the descriptor: building py::dtype objects to
            // compare against costs as much as a small layer.
            const auto* d = py::detail::array_descriptor_proxy(py::detail::array_proxy(x.ptr())->descr);
            if (d->byteorder != foreign_byteorder()) {
              if (d->type_num == py::detail::npy_api::NPY_FLOAT_)
                return predict_one_as<T, float>(net, x, check_finite, squeeze);
              if (d->type_num == py::detail::npy_api::NPY_DOUBLE_)
                return predict_one_as<T, double>(net, x, check_finite, squeeze);
            }
            throw py::value_error("expected a native-endian float32 or float64 array");
          },
          py::arg("x"), py::arg("check_finite") = false, py::arg("squeeze") = false,
          "One row, (n_in,) or (1, n_in) float32/float64, on the calling thread. Returns (n_out,) or\n"
          "(1, n_out) ((1,) with squeeze and one output). ValueError on a wrong shape or dtype,\n"
          "or (check_finite) a NaN/inf input.");
}

}  // namespace

void bind_linear(py::module_& m) {
  bind_network<float>(m, "_Network32");
  bind_network<double>(m, "_Network64");
  m.def("_nn_active_isa", &nn::active_isa, "1 when the AVX2+FMA dense kernels are in use, else 0.");
  m.def("_nn_set_isa", &nn::set_isa, py::arg("isa"),
        "Force the dense kernels: 0 portable, 1 AVX2+FMA when available, -1 auto (tests only).");
}

}  // namespace forgeline::bind
