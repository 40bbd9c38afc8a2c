// The one place where an authentication or authorization outcome becomes an HTTP
// status, a WWW-Authenticate challenge (RFC 6750 §3, RFC 9728 §5.1) and a reason.
#pragma once

#include <string>
#include <vector>

#include "auth/extractor.h"
#include "auth/status.h"

namespace mcpgate::auth {

struct Challenge {
  int status = 401;
  std::string reason;            // gateway error reason, e.g. "invalid_token"
  std::string message;           // short human text, never token contents
  std::string www_authenticate;  // empty: no header
  int retry_after_s = 0;         // > 0: send Retry-After
};

struct ChallengeContext {
  std::string resource_metadata_url;
  std::vector<std::string> scopes;  // what this request needs
  int retry_after_s = 1;            // for 503s
};

Challenge challenge_for(AuthStatus status, const ChallengeContext& context);
Challenge challenge_for(ExtractOutcome outcome, const ChallengeContext& context);

}  // namespace mcpgate::auth
