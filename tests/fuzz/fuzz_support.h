// What every fuzz target shares: a failed invariant that names itself, and the control bytes
// that choose how the rest of the input is used (chunking, modes).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace mcpgate::fuzz {

// A broken invariant: printed, then abort(), which libFuzzer reports as a crash and saves.
[[noreturn]] inline void invariant_failed(const char* file, int line, const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
  std::abort();
}

// Unlike assert(), never compiled out.
#define FUZZ_CHECK(condition, detail)                                                       \
  do {                                                                                      \
    if (!(condition)) ::mcpgate::fuzz::invariant_failed(__FILE__, __LINE__, #condition, detail); \
  } while (0)

// MCPGATE_FUZZ_DEBUG=1: a target says what it made of each input (for writing seeds: run the
// binary on a file).
inline bool debug() {
  static const bool on = [] {
    const char* value = std::getenv("MCPGATE_FUZZ_DEBUG");
    return value != nullptr && std::string_view(value) == "1";
  }();
  return on;
}

// Printable for a failure message: control bytes and non-ASCII as \xNN, truncated.
inline std::string printable(std::string_view bytes, std::size_t max = 400) {
  std::string out;
  for (unsigned char c : bytes.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

// The input as a few control bytes in front of the payload. Missing control bytes read as 0,
// so every input is usable, and a seed is "<control bytes><realistic payload>".
class Input {
 public:
  Input(const uint8_t* data, std::size_t size) : bytes_(reinterpret_cast<const char*>(data), size) {}

  // The next control byte (0 once the input is used up).
  uint8_t byte() {
    if (bytes_.empty()) return 0;
    const auto value = static_cast<uint8_t>(bytes_.front());
    bytes_.remove_prefix(1);
    return value;
  }
  // Everything not consumed as control bytes.
  std::string_view rest() const { return bytes_; }

 private:
  std::string_view bytes_;
};

// `payload` cut into `count` (1..3) chunks, as network reads would deliver it: two chunks cut at
// `cut1`, three at `cut1` and `cut2` (each 0..255 scaled to the length, in either order).
// Empty chunks are kept: a read of 0 new bytes must change nothing.
inline std::vector<std::string_view> split_chunks(std::string_view payload, unsigned count, uint8_t cut1, uint8_t cut2) {
  count = std::clamp(count, 1u, 3u);
  std::size_t positions[2] = {payload.size() * cut1 / 255, payload.size() * cut2 / 255};
  std::vector<std::string_view> chunks;
  if (count == 1) {
    chunks.push_back(payload);
  } else if (count == 2) {
    chunks.push_back(payload.substr(0, positions[0]));
    chunks.push_back(payload.substr(positions[0]));
  } else {
    if (positions[0] > positions[1]) std::swap(positions[0], positions[1]);
    chunks.push_back(payload.substr(0, positions[0]));
    chunks.push_back(payload.substr(positions[0], positions[1] - positions[0]));
    chunks.push_back(payload.substr(positions[1]));
  }
  return chunks;
}

}  // namespace mcpgate::fuzz
