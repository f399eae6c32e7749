// String -> category code for Arrow string columns: the fused scoring path's input coder.
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "forgeline/plan.hpp"

namespace forgeline::plan {

namespace {
inline std::uint64_t fnv1a(const char* s, std::size_t len) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < len; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ULL;
  return h ^ (h >> 29);
}
}  // namespace

Vocabulary::Vocabulary(std::vector<std::string> v) : values(std::move(v)) {
  std::size_t cap = 16;
  while (cap < 2 * values.size() + 2) cap *= 2;
  slots.assign(cap, -1);
  mask = cap - 1;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto& s = values[i];
    if (find(s.data(), s.size()) >= 0) continue;  // duplicates keep their first position
    std::uint64_t h = fnv1a(s.data(), s.size()) & mask;
    while (slots[h] >= 0) h = (h + 1) & mask;
    slots[h] = static_cast<std::int32_t>(i);
  }
}

std::int32_t Vocabulary::find(const char* s, std::size_t len) const {
  std::uint64_t h = fnv1a(s, len) & mask;
  for (;;) {
    const std::int32_t k = slots[h];
    if (k < 0) return kUnseen;
    const auto& v = values[static_cast<std::size_t>(k)];
    if (v.size() == len && std::memcmp(v.data(), s, len) == 0) return k;
    h = (h + 1) & mask;
  }
}

template <class Off>
void string_codes(const Vocabulary& vocab, const Off* offsets, const char* data, const std::uint8_t* valid,
                  index_t valid_offset, index_t n, std::int32_t* out) {
  for (index_t i = 0; i < n; ++i) {
    if (valid != nullptr) {
      const index_t b = valid_offset + i;
      if (!((valid[b >> 3] >> (b & 7)) & 1)) {
        out[i] = kMissing;
        continue;
      }
    }
    const Off a = offsets[i], e = offsets[i + 1];
    if (e < a) throw std::invalid_argument("string column: offsets are not monotone");
    out[i] = vocab.find(data + a, static_cast<std::size_t>(e - a));
  }
}

template void string_codes<std::int32_t>(const Vocabulary&, const std::int32_t*, const char*, const std::uint8_t*,
                                         index_t, index_t, std::int32_t*);
template void string_codes<std::int64_t>(const Vocabulary&, const std::int64_t*, const char*, const std::uint8_t*,
                                         index_t, index_t, std::int32_t*);

}  // namespace forgeline::plan
