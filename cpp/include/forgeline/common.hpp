// Shared low-level types for forgeline kernels. Pure C++: never include pybind11 here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__GNUC__) || defined(__clang__)
#define FL_RESTRICT __restrict__
#define FL_LIKELY(x) __builtin_expect(!!(x), 1)
#define FL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define FL_RESTRICT
#define FL_LIKELY(x) (x)
#define FL_UNLIKELY(x) (x)
#endif

namespace forgeline {

using index_t = std::int64_t;

// A non-owning view of a 1-D buffer with an element stride (in elements, not bytes).
template <class T>
struct View1D {
  T* data = nullptr;
  index_t size = 0;
  index_t stride = 1;
  T& operator[](index_t i) const { return data[i * stride]; }
};

// A non-owning view of a 2-D buffer; strides are in elements, so both C and F order fit.
template <class T>
struct View2D {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t row_stride = 0;
  index_t col_stride = 1;
  T& operator()(index_t r, index_t c) const { return data[r * row_stride + c * col_stride]; }
  bool c_contiguous() const { return col_stride == 1 && (rows <= 1 || row_stride == cols); }
};

inline void require(bool ok, const std::string& what) {
  if (FL_UNLIKELY(!ok)) throw std::invalid_argument(what);
}

}  // namespace forgeline
