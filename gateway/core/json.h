// jansson ownership and text: the one place for both.
#pragma once

#include <jansson.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace mcpgate::core {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

inline JsonPtr json_owned(json_t* value) { return JsonPtr(value, &json_decref); }

// Compact JSON text of `value` (any JSON value); "null" when it cannot be written.
inline std::string json_text(const json_t* value) {
  std::unique_ptr<char, decltype(&std::free)> text(json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY), &std::free);
  return text ? std::string(text.get()) : "null";
}

}  // namespace mcpgate::core
