// The feature program: the preprocessing half of a compiled Plan, executed natively over
// row blocks. Each output slot group reads one input column into a double register, runs a
// short chain of unary ops that replicate scikit-learn's elementwise arithmetic exactly
// (same operations in the same order, so results are bit-identical), then emits either the
// scalar, a one-hot position, or a table look-up. It is forgeline's only column-program
// executor: compiled Scorers and forgeline.transforms' own transform() both run on it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "forgeline/common.hpp"

namespace forgeline::plan {

enum class Op : std::int32_t {
  Impute = 1,           // NaN -> a
  Add = 2,              // x + a
  Sub = 3,              // x - a
  Mul = 4,              // x * a
  Div = 5,              // x / a
  Log1p = 6,            // log1p(x)
  Clip = 7,             // min(max(x, a), b); NaN stays NaN
  SearchSortedRight = 8,  // number of table values <= x (numpy searchsorted side="right"; NaN -> len)
  CodeOf = 9,           // exact position of x in the sorted table, UNSEEN (-2) if absent, -1 if NaN
  Expm1 = 10,           // expm1(x)
  Sqrt = 11,
  Abs = 12,
  Log = 13,
  Exp = 14,
  IsNan = 15,           // 1.0 if NaN else 0.0 (missing indicator)
  ReplaceInf = 16,      // +-inf -> NaN (used ahead of imputers that treat inf as missing)
  YeoJohnson = 17,      // scipy.stats.yeojohnson's transform with lambda a
  CheckFinite = 18,     // +-inf raises (std::domain_error naming the group); value unchanged
  CheckNan = 19,        // NaN raises (std::domain_error naming the group); value unchanged
  SinCycle = 20,        // sin(2*pi*x/a)
  CosCycle = 21,        // cos(2*pi*x/a)
  DatePart = 22,        // Datetime sources only, first op: a = part (0 year 1 month 2 day
                        // 3 weekday 4 hour 5 minute 6 second 7 dayofyear); NaT -> NaN
  IsNanFlip = 23,       // NaN -> 0.0, else x
};
constexpr std::int32_t kMaxOp = 23;

// Datetime: int64 nanoseconds since the epoch (NaT = INT64_MIN), read by a leading DatePart op.
// Udf: the group reads no input column; its register is a user function (see UdfBlock) of
// registers that earlier groups wrote with Emit::Register.
// Product: like Udf, but the register is reg[reg_off] * reg[reg_off + 1] (reg_len == 2,
// udf_fn == -1): one float64 multiply, exactly what scikit-learn's PolynomialFeatures does.
enum class Source : std::int32_t { Float64 = 0, Float32 = 1, Codes = 2, Datetime = 3, Udf = 4, Product = 5 };
// Register: the group's values go to udf register `slot` (not to the output) for later Udf groups.
enum class Emit : std::int32_t { Scalar = 0, OneHot = 1, Lookup = 2, Register = 3 };

// A user function compiled by Numba (`forgeline.udf`), called by address: reads a column-major
// block of m rows x k arguments, writes m values, returns 1 (anything else: it raised). It
// must not need the GIL (Numba nopython cfuncs only take it to report an exception).
using UdfBlock = std::int64_t (*)(const double* in, std::int64_t m, std::int64_t k, double* out);

// Codes of a categorical register: -1 missing, -2 unseen (matches forgeline._frame).
constexpr int kMissing = -1;
constexpr int kUnseen = -2;
// One-hot table entries: >= 0 output slot, kZeros emit nothing, kRaise unknown-category error.
constexpr int kZeros = -1;
constexpr int kRaise = -2;

struct Program {
  index_t n_slots = 0;
  // per group
  std::vector<std::int32_t> src, src_kind, op_begin, op_end, emit, slot, tab_off, tab_len;
  // Lookup groups: bit 0 set = an unseen category raises, bit 1 set = a missing value raises
  std::vector<std::int32_t> unseen_error;
  // per op
  std::vector<std::int32_t> op_code, op_off, op_len;
  std::vector<double> op_a, op_b;
  // tables: op tables and Lookup values (double); OneHot maps (code+2 -> slot or -1)
  std::vector<double> dtab;
  std::vector<std::int32_t> itab;  // one-hot maps, see kZeros / kRaise
  // udfs: per group udf_fn (index into udf_addr, -1 = none) and the argument registers
  // [reg_off, reg_off + reg_len) of a Udf group; n_regs registers of one tile each
  std::vector<std::int32_t> udf_fn, reg_off, reg_len;
  std::vector<std::uintptr_t> udf_addr;
  index_t n_regs = 0;

  void check() const;  // validates every index; throws std::invalid_argument
  void check_udfs() const;  // the udf part of check()
};

// numpy's ufunc inner-loop signature (char** args, npy_intp const* dims, npy_intp const* steps,
// void* data). The executor calls numpy's float64 log1p/expm1 loops through it so results are
// bit-identical to numpy's SIMD implementations; without them it falls back to libm.
using UfuncLoop = void (*)(char**, const std::int64_t*, const std::int64_t*, void*);
void set_numpy_loops(UfuncLoop log1p, void* log1p_data, UfuncLoop expm1, void* expm1_data);
bool numpy_loops_set();
// numpy's float64 exp loop, for the fused head's logistic link (libm's exp until registered).
void set_numpy_exp_loop(UfuncLoop exp, void* exp_data);
void numpy_exp(const double* in, double* out, index_t n);

// Input columns: one pointer per input column index, with the Source kind per group saying
// how to read it. Every column has n_rows values, contiguous.
struct Inputs {
  std::vector<const void*> columns;
  index_t n_rows = 0;
  // Row-major mode: every column is a double at columns[j][r * row_stride] and categorical
  // columns hold their code as a double (NaN = missing). Used by the single-row path.
  index_t row_stride = 0;
};

// Output matrix: out(r, s) = base[r * row_stride + s * col_stride] (row-major: row_stride =
// n_slots, col_stride = 1; column-major output is what callers that go on column-wise use).
struct Output {
  double* base = nullptr;
  index_t row_stride = 0, col_stride = 1;
};

// Fill rows [row_begin, row_end) of out. Throws std::domain_error naming the group on an
// unseen category whose policy is "error" ("unknown category in plan group G") and on a
// failed check op ("check failed in plan group G: infinity|NaN").
void run_block(const Program& p, const Inputs& in, index_t row_begin, index_t row_end, Output out);

// The same over all rows, parallel over fixed row blocks.
void run(const Program& p, const Inputs& in, Output out, int n_threads);

// ---------------------------------------------------------------- fused linear head
// A linear model folded into the feature program: instead of writing a feature matrix, each
// group adds its contribution straight into the rows' margins, so a block never leaves the
// cache and the ~hundreds of mostly-zero one-hot columns are never materialised.

// Most rows per call of group_values (the tile of the fused head and the CSR builder; the
// dense executor uses smaller tiles so that its output tile stays in cache).
constexpr index_t kGroupTile = 256;

// The register of group g for rows [t0, t0 + n), n <= kGroupTile: the input column read as
// run_block reads it, with the group's op chain applied. x must hold n doubles.
void group_values(const Program& p, const Inputs& in, std::size_t g, index_t t0, index_t n, double* x);

// Groups whose op chain ends in log1p, with no op before it that can raise: a tile's
// registers of all of them are computed first and go through numpy's log1p loop in one
// call (per-call overhead is what dominates log1p over short tiles). Values and error
// behaviour are those of group_values: log1p is elementwise, and these groups raise nothing.
struct TileBatch {
  std::vector<std::int32_t> row;  // per group: its row in the batch buffer, or -1
  index_t n_batch = 0;
  // batch = false: batch nothing (a handful of rows gains nothing from it)
  explicit TileBatch(const Program& p, bool batch = true);
  // Fill buf (n_batch rows of n values, row r at buf + r * n) for rows [t0, t0 + n), for the
  // batched groups among [g_begin, g_end) (their rows are contiguous: rows follow group order).
  void fill(const Program& p, const Inputs& in, index_t t0, index_t n, double* buf, std::size_t g_begin = 0,
            std::size_t g_end = static_cast<std::size_t>(-1)) const;
  // Group g's register: from buf when batched, else computed into x by group_values.
  const double* values(const Program& p, const Inputs& in, std::size_t g, index_t t0, index_t n,
                       const double* buf, double* x) const {
    const std::int32_t r = row[g];
    if (r >= 0) return buf + static_cast<index_t>(r) * n;
    group_values(p, in, g, t0, n, x);
    return x;
  }
};

struct LinearHead {
  index_t n_out = 1;
  // Per group of the program: offset into w. Scalar groups own n_out weights (margin +=
  // w * x); OneHot and Lookup groups own a table of tab_len * n_out values indexed like the
  // program's tables (0 unseen, 1 missing, 2 + code), added as they are.
  std::vector<std::int64_t> w_off;
  std::vector<double> w;
  std::vector<double> bias;  // n_out
  bool finite_only = true;   // a non-finite register or table value marks the row bad

  void check(const Program& p) const;  // throws std::invalid_argument
};

// margin (n_rows x n_out, row-major) = bias + sum over groups in group order (a fixed order:
// results do not depend on the thread count). Returns the first row whose register, table
// value or margin is non-finite (when finite_only), or -1. Raises like run_block.
// With logistic = true (n_out == 1 only) `out` gets the binary class probabilities instead,
// (n_rows x 2) rows [1 - p, p] with p = 1 / (1 + exp(-margin)) and numpy's exp: the same
// operations as the model's Python link, done per tile while the margins are in cache.
index_t run_linear(const Program& p, const LinearHead& h, const Inputs& in, double* out, int n_threads,
                   bool logistic = false);
// Whether run_linear may take its AVX-512 copy (where the CPU has it); tests switch it off to
// compare the two copies, which give the same bits.
void set_fused_simd(bool on);

}  // namespace forgeline::plan

namespace forgeline::plan {

// Codes of Arrow string values against a vocabulary: code = position of the value in
// vocab (exact byte equality), kUnseen when absent, kMissing where the validity bit is 0.
// offsets has n + 1 entries (Arrow string / large_string layout, already sliced to the
// array's offset); valid is the Arrow validity bitmap (or nullptr) with its bit offset.
struct Vocabulary {
  std::vector<std::string> values;
  std::vector<std::int32_t> slots;  // open-addressing table for long values: vocab index or -1
  std::uint64_t mask = 0;
  // Values of at most 8 bytes are keyed by (their bytes as one little-endian word, length):
  // one multiply-shift hash and one integer compare, no byte loop.
  std::vector<std::uint64_t> short_word;
  std::vector<std::int32_t> short_len, short_code;  // per slot; short_code -1 = empty
  int short_shift = 60;
  // A collision-free (perfect) multiply-shift table over the short values when one is found
  // (it nearly always is): a look-up is one load and two compares, with no probe loop and
  // no branch. Entry: the word, and (length << 32 | code); empty entries have length 255.
  struct Perfect {
    std::uint64_t word;
    std::int64_t len_code;
  };
  std::vector<Perfect> perfect;
  std::uint64_t perfect_mult = 0;
  int perfect_shift = 64;
  explicit Vocabulary(std::vector<std::string> v);
  std::int32_t find(const char* s, std::size_t len) const;
  std::int32_t find_short(std::uint64_t word, std::size_t len) const;
};
// data_len: bytes in data (offsets are checked against it by the caller).
template <class Off>
void string_codes(const Vocabulary& vocab, const Off* offsets, const char* data, std::size_t data_len,
                  const std::uint8_t* valid, index_t valid_offset, index_t n, std::int32_t* out);

// One Arrow string column to code: validated buffers (offsets n + 1 entries, int32 or int64,
// first and last inside data; validity bitmap long enough) and where its codes go.
struct StringSource {
  const Vocabulary* vocab = nullptr;
  const void* offsets = nullptr;
  bool wide = false;  // int64 offsets
  const char* data = nullptr;
  std::size_t data_len = 0;
  const std::uint8_t* valid = nullptr;
  index_t valid_offset = 0;
  index_t n = 0;
  std::int32_t* out = nullptr;
};
// Codes of rows [begin, end) of the column into out[begin, end).
void code_rows(const StringSource& s, index_t begin, index_t end);

}  // namespace forgeline::plan
