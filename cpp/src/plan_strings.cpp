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

namespace {
inline std::uint64_t splitmix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
constexpr std::int64_t kEmptyLen = 255;
inline std::uint64_t perfect_key(std::uint64_t word, std::size_t len) {
  return word ^ (static_cast<std::uint64_t>(len) << 59);
}

// Searches odd multipliers from a fixed sequence (deterministic) for a table of 4x..64x the
// number of short values; gives up (empty table: the probing path is used) past 2^14 entries.
void build_perfect(Vocabulary& v) {
  std::vector<std::pair<std::uint64_t, std::size_t>> keys;  // (word, len) of distinct short values
  std::vector<std::int32_t> codes;
  for (std::size_t h = 0; h < v.short_code.size(); ++h)
    if (v.short_code[h] >= 0) {
      keys.emplace_back(v.short_word[h], static_cast<std::size_t>(v.short_len[h]));
      codes.push_back(v.short_code[h]);
    }
  int bits = 4;
  while ((std::size_t{1} << bits) < 4 * keys.size()) ++bits;
  for (int tries_bits = 0; tries_bits < 5 && bits <= 14; ++tries_bits, ++bits) {
    const std::size_t cap = std::size_t{1} << bits;
    for (std::uint64_t t = 1; t <= 64; ++t) {
      const std::uint64_t mult = splitmix(t * 0x9E3779B97F4A7C15ULL) | 1;
      std::vector<Vocabulary::Perfect> tab(cap, Vocabulary::Perfect{0, kEmptyLen << 32});
      bool ok = true;
      for (std::size_t i = 0; i < keys.size() && ok; ++i) {
        auto& e = tab[(perfect_key(keys[i].first, keys[i].second) * mult) >> (64 - bits)];
        ok = (e.len_code >> 32) == kEmptyLen;
        e = Vocabulary::Perfect{keys[i].first, (static_cast<std::int64_t>(keys[i].second) << 32) | codes[i]};
      }
      if (ok) {
        v.perfect = std::move(tab);
        v.perfect_mult = mult;
        v.perfect_shift = 64 - bits;
        return;
      }
    }
  }
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
  build_perfect(*this);
}


std::int32_t Vocabulary::find_short(std::uint64_t word, std::size_t len) const {
  if (!perfect.empty()) {
    const Perfect& e = perfect[(perfect_key(word, len) * perfect_mult) >> perfect_shift];
    return (e.word == word && static_cast<std::uint64_t>(e.len_code >> 32) == len)
               ? static_cast<std::int32_t>(e.len_code & 0xFFFFFFFF)
               : kUnseen;
  }
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

namespace {
// The low `len` bytes of a word, len = 0..8 (a table: no variable shift, no branch).
constexpr std::uint64_t kLowBytes[9] = {0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFFULL, 0xFFFFFFFFFFULL,
                                        0xFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFULL, ~std::uint64_t{0}};

// The per-value loop, with the look-up (perfect table or probing) and the validity test
// chosen once per call rather than per value.
template <class Off, bool kPerfect, bool kValid>
void codes_loop(const Vocabulary& vocab, const Off* offsets, const char* data, std::size_t data_len,
                const std::uint8_t* valid, index_t valid_offset, index_t n, std::int32_t* out) {
  const Vocabulary::Perfect* tab = vocab.perfect.data();
  const std::uint64_t mult = vocab.perfect_mult;
  const int shift = vocab.perfect_shift;
#pragma GCC unroll 4
  for (index_t i = 0; i < n; ++i) {
    if (kValid) {
      const index_t b = valid_offset + i;
      if (!((valid[b >> 3] >> (b & 7)) & 1)) {
        out[i] = kMissing;
        continue;
      }
    }
    const Off a = offsets[i], e = offsets[i + 1];
    // Every value is checked against the buffer, not only the first and last offsets: a
    // non-monotone offset in the middle must not send a read past the data.
    if (FL_UNLIKELY(e < a || static_cast<std::size_t>(e) > data_len))
      throw std::invalid_argument("string column: offsets are not monotone or run past the data");
    const auto len = static_cast<std::size_t>(e - a);
    const auto start = static_cast<std::size_t>(a);
    if (FL_LIKELY(len <= 8)) {
      // Whole-word load when 8 bytes are readable, masked to the value's length.
      std::uint64_t w;
      if (FL_LIKELY(start + 8 <= data_len)) {
        std::memcpy(&w, data + start, 8);
        w &= kLowBytes[len];
      } else {
        w = word_of(data + start, len);
      }
      if (kPerfect) {
        const Vocabulary::Perfect& t = tab[(perfect_key(w, len) * mult) >> shift];
        out[i] = (t.word == w && static_cast<std::uint64_t>(t.len_code >> 32) == len)
                     ? static_cast<std::int32_t>(t.len_code & 0xFFFFFFFF)
                     : kUnseen;
      } else {
        out[i] = vocab.find_short(w, len);
      }
    } else {
      out[i] = vocab.find(data + start, len);
    }
  }
}
}  // namespace

template <class Off>
void string_codes(const Vocabulary& vocab, const Off* offsets, const char* data, std::size_t data_len,
                  const std::uint8_t* valid, index_t valid_offset, index_t n, std::int32_t* out) {
  const bool perfect = !vocab.perfect.empty();
  if (valid != nullptr) {
    if (perfect)
      codes_loop<Off, true, true>(vocab, offsets, data, data_len, valid, valid_offset, n, out);
    else
      codes_loop<Off, false, true>(vocab, offsets, data, data_len, valid, valid_offset, n, out);
  } else if (perfect) {
    codes_loop<Off, true, false>(vocab, offsets, data, data_len, valid, valid_offset, n, out);
  } else {
    codes_loop<Off, false, false>(vocab, offsets, data, data_len, valid, valid_offset, n, out);
  }
}

void code_rows(const StringSource& s, index_t begin, index_t end) {
  if (s.wide)
    string_codes<std::int64_t>(*s.vocab, static_cast<const std::int64_t*>(s.offsets) + begin, s.data, s.data_len,
                               s.valid, s.valid_offset + begin, end - begin, s.out + begin);
  else
    string_codes<std::int32_t>(*s.vocab, static_cast<const std::int32_t*>(s.offsets) + begin, s.data, s.data_len,
                               s.valid, s.valid_offset + begin, end - begin, s.out + begin);
}

template void string_codes<std::int32_t>(const Vocabulary&, const std::int32_t*, const char*, std::size_t,
                                         const std::uint8_t*, index_t, index_t, std::int32_t*);
template void string_codes<std::int64_t>(const Vocabulary&, const std::int64_t*, const char*, std::size_t,
                                         const std::uint8_t*, index_t, index_t, std::int32_t*);

}  // namespace forgeline::plan
