#include "core/json_scan.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mcpgate::core::json_scan {
namespace {

// The offset of the first byte from `at` that can end a run of plain string content: '"' or
// '\\', and when `checking`, a control character or a non-ASCII byte (which the validator
// looks at one by one). Sixteen bytes a step where SSE2 is there: bodies are mostly strings.
template <bool checking>
std::size_t next_special(std::string_view text, std::size_t at) {
  const char* data = text.data();
  const std::size_t size = text.size();
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  for (; at + 16 <= size; at += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + at));
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash));
    if constexpr (checking) hit = _mm_or_si128(hit, _mm_cmplt_epi8(chunk, space));  // signed: also >= 0x80
    if (const int mask = _mm_movemask_epi8(hit)) return at + static_cast<std::size_t>(__builtin_ctz(mask));
  }
#endif
  for (; at < size; ++at) {
    const auto c = static_cast<unsigned char>(data[at]);
    if (c == '"' || c == '\\' || (checking && (c < 0x20 || c >= 0x80))) return at;
  }
  return size;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The four hex digits at `at` as a code unit, or -1.
long hex4(std::string_view text, std::size_t at) {
  if (at + 4 > text.size()) return -1;
  long value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const int digit = hex_digit(text[at + i]);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code >> 6)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

// Raw string content (validated) with escapes resolved, appended to `out`.
void decode_string(std::string_view raw, std::string& out) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out.push_back(raw[i]);
      continue;
    }
    const char kind = raw[++i];
    switch (kind) {
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        auto code = static_cast<std::uint32_t>(hex4(raw, i + 1));
        i += 4;
        if (code >= 0xD800 && code <= 0xDBFF) {
          const auto low = static_cast<std::uint32_t>(hex4(raw, i + 3));
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        append_utf8(out, code);
        break;
      }
      default: out.push_back(kind);  // '"', '\\', '/'
    }
  }
}

// A member name as the validator saw it: its raw text between the quotes.
struct KeyRef {
  std::string_view raw;
  bool escaped;
};

}  // namespace

// One pass over the text, filling the Document's container table. The scratch vectors are per
// thread and reused, so a body costs no allocation beyond its table once a worker has seen one
// like it.
class Validator {
 public:
  Validator(std::string_view text, std::vector<Document::Container>& containers) : text_(text), containers_(containers) {}

  Verdict run() {
    thread_local std::vector<std::uint32_t> frames;     // open containers: indices into containers_
    thread_local std::vector<std::size_t> keys_from;  // per open object: its first key in `keys`
    thread_local std::vector<KeyRef> keys;
    frames.clear();
    keys_from.clear();
    keys.clear();
    const Verdict verdict = walk(frames, keys_from, keys);
    // A rare huge body must not pin its scratch for the thread's lifetime.
    if (keys.capacity() > 4096) std::vector<KeyRef>().swap(keys);
    if (frames.capacity() > kMaxDepth) std::vector<std::uint32_t>().swap(frames);
    return verdict;
  }

 private:
  bool is_object(std::uint32_t frame) const { return text_[containers_[frame].open] == '{'; }

  bool open_container(std::vector<std::uint32_t>& frames) {
    if (frames.size() == kMaxDepth) return false;
    frames.push_back(static_cast<std::uint32_t>(containers_.size()));
    containers_.push_back({static_cast<std::uint32_t>(at_), 0});
    at_ = skip_space(at_ + 1);
    return true;
  }

  // `at_` on the closing bracket of the innermost container.
  void close_container(std::vector<std::uint32_t>& frames) {
    containers_[frames.back()].end = static_cast<std::uint32_t>(++at_);
    frames.pop_back();
  }

  std::size_t skip_space(std::size_t at) const {
    while (at < text_.size() && is_space(text_[at])) ++at;
    return at;
  }

  Verdict walk(std::vector<std::uint32_t>& frames, std::vector<std::size_t>& keys_from, std::vector<KeyRef>& keys) {
    at_ = skip_space(0);
  value:
    if (at_ >= text_.size()) return Verdict::Invalid;
    switch (text_[at_]) {
      case '{':
        if (!open_container(frames)) return Verdict::Invalid;
        keys_from.push_back(keys.size());
        if (at_ < text_.size() && text_[at_] == '}') {
          close_container(frames);
          keys_from.pop_back();
          goto after_value;
        }
        goto member;
      case '[':
        if (!open_container(frames)) return Verdict::Invalid;
        if (at_ < text_.size() && text_[at_] == ']') {
          close_container(frames);
          goto after_value;
        }
        goto value;
      case '"':
        if (!string(nullptr)) return Verdict::Invalid;
        goto after_value;
      case 't':
        if (!literal("true")) return Verdict::Invalid;
        goto after_value;
      case 'f':
        if (!literal("false")) return Verdict::Invalid;
        goto after_value;
      case 'n':
        if (!literal("null")) return Verdict::Invalid;
        goto after_value;
      default:
        if (!number()) return Verdict::Invalid;
        goto after_value;
    }
  member: {
    if (at_ >= text_.size() || text_[at_] != '"') return Verdict::Invalid;
    KeyRef key{};
    if (!string(&key)) return Verdict::Invalid;
    keys.push_back(key);
    at_ = skip_space(at_);
    if (at_ >= text_.size() || text_[at_] != ':') return Verdict::Invalid;
    at_ = skip_space(at_ + 1);
    goto value;
  }
  after_value:
    at_ = skip_space(at_);
    if (frames.empty()) return at_ == text_.size() ? Verdict::Valid : Verdict::Invalid;
    if (at_ >= text_.size()) return Verdict::Invalid;
    if (text_[at_] == ',') {
      at_ = skip_space(at_ + 1);
      if (is_object(frames.back())) goto member;
      goto value;
    }
    if (const bool object = is_object(frames.back()); text_[at_] == (object ? '}' : ']')) {
      if (object) {
        if (has_duplicate(keys, keys_from.back())) return Verdict::DuplicateKey;
        keys.resize(keys_from.back());
        keys_from.pop_back();
      }
      close_container(frames);
      goto after_value;
    }
    return Verdict::Invalid;
  }

  static bool has_duplicate(std::vector<KeyRef>& keys, std::size_t from) {
    const auto first = keys.begin() + static_cast<std::ptrdiff_t>(from);
    const std::size_t count = keys.size() - from;
    if (count < 2) return false;
    const bool escaped = std::any_of(first, keys.end(), [](const KeyRef& key) { return key.escaped; });
    if (escaped) {  // rare: compare decoded names ("a" and "\u0061" are one name)
      std::vector<std::string> names;
      names.reserve(count);
      for (auto key = first; key != keys.end(); ++key) {
        std::string name;
        decode_string(key->raw, name);
        names.push_back(std::move(name));
      }
      std::sort(names.begin(), names.end());
      return std::adjacent_find(names.begin(), names.end()) != names.end();
    }
    if (count <= 8) {
      for (auto a = first; a != keys.end(); ++a)
        for (auto b = a + 1; b != keys.end(); ++b)
          if (a->raw == b->raw) return true;
      return false;
    }
    std::sort(first, keys.end(), [](const KeyRef& a, const KeyRef& b) { return a.raw < b.raw; });
    return std::adjacent_find(first, keys.end(), [](const KeyRef& a, const KeyRef& b) { return a.raw == b.raw; }) !=
           keys.end();
  }

  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  bool digits() {
    const std::size_t start = at_;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
    return at_ > start;
  }

  bool number() {
    if (text_[at_] == '-') ++at_;
    if (at_ >= text_.size()) return false;
    if (text_[at_] == '0') {
      ++at_;
    } else if (!digits()) {
      return false;
    }
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      if (!digits()) return false;
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (!digits()) return false;
    }
    return true;
  }

  // `at_` on the opening quote; leaves it past the closing one.
  bool string(KeyRef* key) {
    const std::size_t start = ++at_;
    bool escaped = false;
    for (;;) {
      at_ = next_special<true>(text_, at_);
      if (at_ >= text_.size()) return false;
      const auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') break;
      if (c < 0x20) return false;
      if (c == '\\') {
        escaped = true;
        if (!escape()) return false;
      } else if (!utf8_sequence()) {
        return false;
      }
    }
    if (key != nullptr) *key = KeyRef{text_.substr(start, at_ - start), escaped};
    ++at_;
    return true;
  }

  // `at_` on the backslash.
  bool escape() {
    if (at_ + 1 >= text_.size()) return false;
    const char kind = text_[at_ + 1];
    if (kind != 'u') {
      at_ += 2;
      return kind == '"' || kind == '\\' || kind == '/' || kind == 'b' || kind == 'f' || kind == 'n' || kind == 'r' ||
             kind == 't';
    }
    const long unit = hex4(text_, at_ + 2);
    at_ += 6;
    if (unit <= 0) return false;  // invalid, or NUL
    if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // a low surrogate alone
    if (unit < 0xD800 || unit > 0xDBFF) return true;
    if (at_ + 1 >= text_.size() || text_[at_] != '\\' || text_[at_ + 1] != 'u') return false;
    const long low = hex4(text_, at_ + 2);
    at_ += 6;
    return low >= 0xDC00 && low <= 0xDFFF;
  }

  // `at_` on a byte >= 0x80: one well-formed UTF-8 sequence (RFC 3629 table), no overlongs
  // and no surrogates.
  bool utf8_sequence() {
    const auto byte = [this](std::size_t i) {
      return at_ + i < text_.size() ? static_cast<unsigned char>(text_[at_ + i]) : 0;
    };
    const auto cont = [](unsigned char c) { return c >= 0x80 && c <= 0xBF; };
    const unsigned char lead = byte(0);
    std::size_t length;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      const unsigned char second = byte(1);
      if (lead == 0xE0 ? (second < 0xA0 || second > 0xBF) : lead == 0xED ? (second < 0x80 || second > 0x9F) : !cont(second))
        return false;
      length = 3;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      const unsigned char second = byte(1);
      if (lead == 0xF0 ? (second < 0x90 || second > 0xBF) : lead == 0xF4 ? (second < 0x80 || second > 0x8F) : !cont(second))
        return false;
      length = 4;
    } else {
      return false;
    }
    for (std::size_t i = 1; i < length; ++i)
      if (!cont(byte(i))) return false;
    at_ += length;
    return true;
  }

 private:
  std::string_view text_;
  std::vector<Document::Container>& containers_;
  std::size_t at_ = 0;
};

namespace {

// The raw content of the validated string whose quote is at `at`, and whether it has escapes.
std::string_view raw_string(std::string_view text, std::size_t at, bool& escaped) {
  escaped = false;
  std::size_t end = next_special<false>(text, at + 1);
  while (text[end] != '"') {  // a backslash: skip what it escapes
    escaped = true;
    end = next_special<false>(text, end + 2);
  }
  return text.substr(at + 1, end - at - 1);
}

}  // namespace

Document::Document(std::string_view text) : text_(text) {
  // Offsets are kept in 32 bits: the gateway's body limits are far below 4 GiB.
  verdict_ = text.size() >= UINT32_MAX ? Verdict::Invalid : Validator(text, containers_).run();
  if (verdict_ != Verdict::Valid) containers_.clear();
}

std::size_t Document::skip_space(std::size_t at) const {
  while (at < text_.size() && is_space(text_[at])) ++at;
  return at;
}

std::size_t Document::root() const { return skip_space(0); }

std::size_t Document::end_of(std::size_t at) const {
  const char first = text_[at];
  if (first == '"') {
    bool escaped;
    return at + raw_string(text_, at, escaped).size() + 2;
  }
  if (first == '{' || first == '[') {
    const auto found = std::lower_bound(containers_.begin(), containers_.end(), at,
                                        [](const Container& container, std::size_t open) { return container.open < open; });
    return found->end;
  }
  while (at < text_.size() && text_[at] != ',' && text_[at] != '}' && text_[at] != ']' && !is_space(text_[at])) ++at;
  return at;
}

std::string Document::string_at(std::size_t at) const {
  bool escaped;
  const std::string_view raw = raw_string(text_, at, escaped);
  if (!escaped) return std::string(raw);
  std::string out;
  decode_string(raw, out);
  return out;
}

bool Document::string_equals(std::size_t at, std::string_view expected) const {
  bool escaped;
  const std::string_view raw = raw_string(text_, at, escaped);
  if (!escaped) return raw == expected;
  std::string decoded;
  decode_string(raw, decoded);
  return decoded == expected;
}

std::size_t Document::find_member(std::size_t open, std::string_view key) const {
  std::size_t found = std::string_view::npos;
  for_each_member(open, [&](std::size_t key_at, std::size_t value_at) {
    if (!string_equals(key_at, key)) return true;
    found = value_at;
    return false;
  });
  return found;
}

}  // namespace mcpgate::core::json_scan
