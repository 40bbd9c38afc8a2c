#include "auth/challenge.h"

namespace mcpgate::auth {
namespace {

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out.push_back(' ');
    out.append(word);
  }
  return out;
}

// Scopes and descriptions are config-validated or fixed texts: no quotes to escape.
std::string bearer(const ChallengeContext& context, std::string_view error, std::string_view description) {
  std::string header = "Bearer resource_metadata=\"" + context.resource_metadata_url + "\"";
  if (!context.scopes.empty()) header += ", scope=\"" + join(context.scopes) + "\"";
  if (!error.empty()) header += ", error=\"" + std::string(error) + "\"";
  if (!description.empty()) header += ", error_description=\"" + std::string(description) + "\"";
  return header;
}

}  // namespace

Challenge challenge_for(AuthStatus status, const ChallengeContext& context) {
  switch (status) {
    case AuthStatus::Ok:
      return {200, "", "", "", 0};
    case AuthStatus::TokenMissing:
      return {401, "unauthorized", "this endpoint requires a bearer token", bearer(context, "", ""), 0};
    case AuthStatus::InsufficientScope:
      return {403, "insufficient_scope", "the token lacks a scope this request needs",
              bearer(context, "insufficient_scope", "the token lacks a scope this request needs"), 0};
    case AuthStatus::KeysUnavailable:
    case AuthStatus::IdpUnavailable:
      // Never 401: a client must not throw away a good token because the IdP blinked.
      return {503, "idp_unavailable", "the authorization server cannot be reached; retry later", "",
              std::max(1, context.retry_after_s)};
    case AuthStatus::InternalError:
      return {500, "internal_error", "the token could not be checked", "", 0};
    default: {
      const std::string description(auth_status_description(status));
      return {401, "invalid_token", description, bearer(context, "invalid_token", description), 0};
    }
  }
}

Challenge challenge_for(ExtractOutcome outcome, const ChallengeContext& context) {
  switch (outcome) {
    case ExtractOutcome::Found:
      return {200, "", "", "", 0};
    case ExtractOutcome::Missing:
      return challenge_for(AuthStatus::TokenMissing, context);
    case ExtractOutcome::Malformed:
      return challenge_for(AuthStatus::TokenMalformed, context);
    case ExtractOutcome::Multiple:
      return {400, "invalid_request", "more than one Authorization header",
              bearer(context, "invalid_request", "more than one Authorization header"), 0};
    case ExtractOutcome::InQuery:
    case ExtractOutcome::InBody:
      return {400, "invalid_request", "send the token in the Authorization header only",
              bearer(context, "invalid_request", "send the token in the Authorization header only"), 0};
  }
  return {500, "internal_error", "", "", 0};
}

}  // namespace mcpgate::auth
