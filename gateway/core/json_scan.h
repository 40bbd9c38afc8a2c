// JSON read in place: validated once, then walked by position, with no tree built. The request
// path reads a handful of members from bodies of any size (routing facts, tools/list results);
// building a jansson tree for that cost ~27 µs per KiB and an allocation per value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcpgate::core::json_scan {

enum class Verdict {
  Valid,
  Invalid,       // not exactly one JSON value in UTF-8 (RFC 8259), or nested deeper than kMaxDepth
  DuplicateKey,  // an object, at any depth, names a member twice (escapes resolved)
};

// As deep as jansson parses, so the two agree on what is JSON.
inline constexpr std::size_t kMaxDepth = 2048;

// A text checked once, with where each object and array ends, so walking it never scans a
// value twice. As strict as the project's JSON library where it matters for agreeing with an
// upstream: raw control characters, invalid or overlong UTF-8, lone surrogates and NUL
// ("\u0000") in strings are refused. Numbers are checked for their grammar only.
// Positions are byte offsets into `text`, which must outlive the Document.
class Document {
 public:
  explicit Document(std::string_view text);

  Verdict verdict() const { return verdict_; }
  bool valid() const { return verdict_ == Verdict::Valid; }
  std::string_view text() const { return text_; }

  // What follows needs valid(). The top-level value's offset.
  std::size_t root() const;
  // `at` on a value's first byte; returns the offset just past the value.
  std::size_t end_of(std::size_t at) const;
  // The first byte of the value at `at`: '{', '[', '"', 't', 'f', 'n', or a number's.
  char kind(std::size_t at) const { return text_[at]; }

  // The string value whose opening quote is at `at`, escapes resolved.
  std::string string_at(std::size_t at) const;
  // Whether the string at `at` is `expected` once decoded (no allocation unless it has escapes).
  bool string_equals(std::size_t at, std::string_view expected) const;

  // Calls visit(key_at, value_at) for each member of the object whose '{' is at `open`, in
  // order, while visit returns true. `key_at` is the name's opening quote.
  template <typename Visit>
  void for_each_member(std::size_t open, Visit&& visit) const {
    std::size_t at = skip_space(open + 1);
    while (text_[at] == '"') {
      const std::size_t key_at = at;
      const std::size_t value_at = skip_space(skip_space(end_of(at)) + 1);  // past ':'
      if (!visit(key_at, value_at)) return;
      at = skip_space(end_of(value_at));
      if (text_[at] != ',') return;
      at = skip_space(at + 1);
    }
  }

  // Calls visit(element_at, element_end) for each element of the array whose '[' is at `open`,
  // while visit returns true.
  template <typename Visit>
  void for_each_element(std::size_t open, Visit&& visit) const {
    std::size_t at = skip_space(open + 1);
    if (text_[at] == ']') return;
    for (;;) {
      const std::size_t end = end_of(at);
      if (!visit(at, end)) return;
      at = skip_space(end);
      if (text_[at] != ',') return;
      at = skip_space(at + 1);
    }
  }

  // The member `key` of the object at `open`: its value's offset, or npos.
  std::size_t find_member(std::size_t open, std::string_view key) const;

  std::size_t skip_space(std::size_t at) const;

 private:
  struct Container {
    std::uint32_t open, end;  // '{' or '[', and just past its match
  };
  std::string_view text_;
  Verdict verdict_;
  std::vector<Container> containers_;  // in order of `open`
  friend class Validator;
};

}  // namespace mcpgate::core::json_scan
