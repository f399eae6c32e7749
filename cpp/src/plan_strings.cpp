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
inline std::uint64_t short_hash(std::uint64_t word, std::size_t len) {
  return (word ^ (static_cast<std::uint64_t>(len) << 59)) * 0x9E3779B97F4A7C15ULL;
}
inline std::uint64_t word_of(const char* s, std::size_t len) {
  std::uint64_t w = 0;
  std::memcpy(&w, s, len);  // len <= 8; little-endian order of the bytes is all that matters
  return w;
}
}  // namespace

Vocabulary::Vocabulary(std::vector<std::string> v) : values(std::move(v)) {
  std::size_t cap = 16;
  while (cap < 2 * values.size() + 2) cap *= 2;
  slots.assign(cap, -1);
  mask = cap - 1;
  int bits = 4;
  while ((std::size_t{1} << bits) < cap) ++bits;
  short_shift = 64 - bits;
  short_word.assign(cap, 0);
  short_len.assign(cap, 0);
  short_code.assign(cap, -1);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto& s = values[i];
    if (find(s.data(), s.size()) >= 0) continue;  // duplicates keep their first position
    if (s.size() <= 8) {
      const std::uint64_t w = word_of(s.data(), s.size());
      std::uint64_t h = short_hash(w, s.size()) >> short_shift;
      while (short_code[h] >= 0) h = (h + 1) & mask;
      short_word[h] = w;
      short_len[h] = static_cast<std::int32_t>(s.size());
      short_code[h] = static_cast<std::int32_t>(i);
      continue;
    }
    std::uint64_t h = fnv1a(s.data(), s.size()) & mask;
    while (slots[h] >= 0) h = (h + 1) & mask;
    slots[h] = static_cast<std::int32_t>(i);
  }
}

std::int32_t Vocabulary::find_short(std::uint64_t word, std::size_t len) const {
  std::uint64_t h = short_hash(word, len) >> short_shift;
  for (;;) {
    const std::int32_t k = short_code[h];
    if (k < 0) return kUnseen;
    if (short_word[h] == word && static_cast<std::size_t>(short_len[h]) == len) return k;
    h = (h + 1) & mask;
  }
}

std::int32_t Vocabulary::find(const char* s, std::size_t len) const {
  if (len <= 8) return find_short(word_of(s, len), len);
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
void string_codes(const Vocabulary& vocab, const Off* offsets, const char* data, std::size_t data_len,
                  const std::uint8_t* valid, index_t valid_offset, index_t n, std::int32_t* out) {
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
    const auto len = static_cast<std::size_t>(e - a);
    const auto start = static_cast<std::size_t>(a);
    if (len <= 8) {
      // Whole-word load when 8 bytes are readable, masked to the value's length.
      std::uint64_t w;
      if (start + 8 <= data_len) {
        std::memcpy(&w, data + start, 8);
        if (len < 8) w &= (std::uint64_t{1} << (8 * len)) - 1;
      } else {
        w = word_of(data + start, len);
      }
      out[i] = vocab.find_short(w, len);
    } else {
      out[i] = vocab.find(data + start, len);
    }
  }
}

template void string_codes<std::int32_t>(const Vocabulary&, const std::int32_t*, const char*, std::size_t,
                                         const std::uint8_t*, index_t, index_t, std::int32_t*);
template void string_codes<std::int64_t>(const Vocabulary&, const std::int64_t*, const char*, std::size_t,
                                         const std::uint8_t*, index_t, index_t, std::int32_t*);

}  // namespace forgeline::plan
