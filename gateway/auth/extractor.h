// Finds the bearer token of a request (RFC 6750 §2.1: the Authorization header only).
#pragma once

#include <string>

#include "http/message.h"

namespace mcpgate::auth {

enum class ExtractOutcome {
  Found,
  Missing,         // no Authorization header, or another scheme
  Malformed,       // "Bearer" with an empty or non-token68 credential
  Multiple,        // more than one Authorization header
  InQuery,         // access_token in the query string: refused (RFC 9700 §2.5 / MCP spec)
  InBody,          // access_token in a form body: refused
};

struct ExtractedToken {
  ExtractOutcome outcome = ExtractOutcome::Missing;
  std::string token;
};

ExtractedToken extract_bearer_token(const http::HttpRequest& request);

}  // namespace mcpgate::auth
