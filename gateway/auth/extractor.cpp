#include "auth/extractor.h"

#include <array>

namespace mcpgate::auth {
namespace {

// RFC 6750 b64token characters, as a table: every request's token is checked byte by byte.
constexpr std::array<bool, 256> kToken68 = [] {
  std::array<bool, 256> table{};
  for (unsigned char c = '0'; c <= '9'; ++c) table[c] = true;
  for (unsigned char c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (unsigned char c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (unsigned char c : std::string_view("-._~+/=")) table[c] = true;
  return table;
}();

bool is_token68(std::string_view text) {
  bool all = !text.empty();
  for (unsigned char c : text) all &= kToken68[c];  // no early exit: a token is checked whole, fast
  return all;
}

// True when `encoded` (a query or form body) has a parameter named access_token.
bool has_access_token_parameter(std::string_view encoded) {
  while (!encoded.empty()) {
    const std::size_t end = std::min(encoded.find('&'), encoded.size());
    const std::string_view pair = encoded.substr(0, end);
    if (pair.substr(0, pair.find('=')) == "access_token") return true;
    encoded.remove_prefix(std::min(end + 1, encoded.size()));
  }
  return false;
}

}  // namespace

ExtractedToken extract_bearer_token(const http::HttpRequest& request) {
  if (has_access_token_parameter(request.query)) return {ExtractOutcome::InQuery, {}};
  const auto content_type = request.headers.get("Content-Type");
  if (content_type && content_type->rfind("application/x-www-form-urlencoded", 0) == 0 &&
      has_access_token_parameter(request.body))
    return {ExtractOutcome::InBody, {}};
  const std::size_t headers = request.headers.count("Authorization");
  if (headers == 0) return {ExtractOutcome::Missing, {}};
  if (headers > 1) return {ExtractOutcome::Multiple, {}};
  std::string_view value = *request.headers.get("Authorization");
  const std::size_t space = value.find(' ');
  if (space == std::string_view::npos || !http::iequals(value.substr(0, space), "Bearer"))
    return {ExtractOutcome::Missing, {}};
  std::string_view credential = value.substr(space + 1);
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  if (!is_token68(credential)) return {ExtractOutcome::Malformed, {}};
  return {ExtractOutcome::Found, std::string(credential)};
}

}  // namespace mcpgate::auth
