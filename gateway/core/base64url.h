// base64url without padding (RFC 4648 §5, as JOSE uses it).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcpgate::core {

std::string base64url_encode(std::string_view bytes);
// Strict (RFC 7515 §2): other characters, a dangling sixth bit group or non-zero spare bits
// make the text non-canonical, and two spellings of one value are one too many.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace mcpgate::core
