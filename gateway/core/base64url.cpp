#include "core/base64url.h"

#include <array>
#include <cstdint>

namespace mcpgate::core {
namespace {

constexpr uint8_t kInvalid = 0xff;

// Each character's 6-bit value, kInvalid for anything outside the URL-safe alphabet ('=' too).
constexpr std::array<uint8_t, 256> kValues = [] {
  std::array<uint8_t, 256> table{};
  table.fill(kInvalid);
  for (int i = 0; i < 26; ++i) table['A' + i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 26; ++i) table['a' + i] = static_cast<uint8_t>(26 + i);
  for (int i = 0; i < 10; ++i) table['0' + i] = static_cast<uint8_t>(52 + i);
  table['-'] = 62;
  table['_'] = 63;
  return table;
}();

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kAlphabet[(bits >> count) & 63]);
    }
  }
  if (count > 0) out.push_back(kAlphabet[(bits << (6 - count)) & 63]);
  return out;
}

// Four characters to three bytes a step, into a string sized once: every new JWT's header and
// payload pass through here.
std::optional<std::string> base64url_decode(std::string_view text) {
  const std::size_t tail = text.size() % 4;
  if (tail == 1) return std::nullopt;
  const std::size_t whole = text.size() - tail;
  std::string out(whole / 4 * 3 + (tail == 0 ? 0 : tail - 1), '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  char* at = out.data();
  uint8_t invalid = 0;
  for (std::size_t i = 0; i < whole; i += 4) {
    const uint8_t a = kValues[in[i]], b = kValues[in[i + 1]], c = kValues[in[i + 2]], d = kValues[in[i + 3]];
    invalid |= a | b | c | d;  // only kInvalid has the top bits set
    const uint32_t bits = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6) | d;
    *at++ = static_cast<char>(bits >> 16);
    *at++ = static_cast<char>(bits >> 8);
    *at++ = static_cast<char>(bits);
  }
  if (invalid & 0xc0) return std::nullopt;
  if (tail > 0) {
    const uint8_t a = kValues[in[whole]], b = kValues[in[whole + 1]], c = tail == 3 ? kValues[in[whole + 2]] : 0;
    if ((a | b | c) & 0xc0) return std::nullopt;
    const uint32_t bits = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6);
    // The unused low bits of the last character must be zero (one encoding per byte string).
    if ((tail == 2 ? bits & 0xffff : bits & 0xff) != 0) return std::nullopt;
    *at++ = static_cast<char>(bits >> 16);
    if (tail == 3) *at++ = static_cast<char>(bits >> 8);
  }
  return out;
}

}  // namespace mcpgate::core
