// Tests for the authentication status codes and the identity helpers.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "auth/identity.h"
#include "auth/status.h"

using mcpgate::auth::AuthStatus;

TEST_CASE("auth status: every code has a unique snake_case name and a description") {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(AuthStatus::InternalError); ++i) {
    const auto status = static_cast<AuthStatus>(i);
    const std::string_view name = mcpgate::auth::auth_status_name(status);
    CAPTURE(name);
    CHECK(names.insert(name).second);
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos);
    CHECK_FALSE(mcpgate::auth::auth_status_description(status).empty());
  }
  CHECK(names.size() == 22);
  CHECK(mcpgate::auth::auth_status_name(AuthStatus::KeyNotFound) == "key_not_found");
  CHECK(mcpgate::auth::auth_status_name(AuthStatus::Ok) == "ok");
  CHECK(mcpgate::auth::auth_status_name(static_cast<AuthStatus>(999)) == "internal_error");
}

TEST_CASE("auth status: only failures that the same token always meets again are token faults") {
  using mcpgate::auth::is_token_fault;
  CHECK(is_token_fault(AuthStatus::SignatureInvalid));
  CHECK(is_token_fault(AuthStatus::TokenMalformed));
  CHECK(is_token_fault(AuthStatus::AlgorithmNotAllowed));
  CHECK(is_token_fault(AuthStatus::Expired));
  CHECK(is_token_fault(AuthStatus::AudienceMismatch));
  CHECK(is_token_fault(AuthStatus::ClaimInvalid));
  CHECK_FALSE(is_token_fault(AuthStatus::Ok));
  // The JWKS may gain the key, the keys may come back, the clock moves on.
  CHECK_FALSE(is_token_fault(AuthStatus::KeyNotFound));
  CHECK_FALSE(is_token_fault(AuthStatus::KeysUnavailable));
  CHECK_FALSE(is_token_fault(AuthStatus::NotYetValid));
  CHECK_FALSE(is_token_fault(AuthStatus::IssuedInFuture));
  CHECK_FALSE(is_token_fault(AuthStatus::IdpUnavailable));
  CHECK_FALSE(is_token_fault(AuthStatus::InsufficientScope));
  CHECK_FALSE(is_token_fault(AuthStatus::InternalError));
}

TEST_CASE("auth identity: scope strings and scope checks") {
  using mcpgate::auth::split_scopes;
  CHECK(split_scopes("").empty());
  CHECK(split_scopes("   ").empty());
  CHECK(split_scopes("a") == std::vector<std::string>{"a"});
  CHECK(split_scopes(" a  b a c ") == std::vector<std::string>{"a", "b", "c"});

  mcpgate::auth::Identity identity;
  identity.scopes = {"mcp:tools", "notes:read"};
  CHECK(mcpgate::auth::has_all_scopes(identity, {}));
  CHECK(mcpgate::auth::has_all_scopes(identity, {"notes:read", "mcp:tools"}));
  CHECK_FALSE(mcpgate::auth::has_all_scopes(identity, {"notes:write"}));
  CHECK_FALSE(mcpgate::auth::has_all_scopes(identity, {"notes"}));
}
