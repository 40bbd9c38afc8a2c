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
