// Tests for the verified-token cache: expiry, and what a flood of new tokens may evict.
#include <doctest/doctest.h>

#include <string>

#include "auth/token_cache.h"

using mcpgate::auth::AuthStatus;
using mcpgate::auth::TokenCache;

namespace {

TokenCache::Entry ok_until(int64_t valid_until) { return {AuthStatus::Ok, {}, valid_until}; }

std::string key(int n) { return TokenCache::key_for("route", "token-" + std::to_string(n)); }

}  // namespace

TEST_CASE("token cache: an entry is found until it expires, and is then gone") {
  TokenCache cache;
  cache.insert(key(1), ok_until(100));
  CHECK(cache.find(key(1), 99) != nullptr);
  CHECK(cache.find(key(1), 100) == nullptr);
  CHECK(cache.size() == 0);
  CHECK(cache.find(key(2), 0) == nullptr);
  CHECK(TokenCache::key_for("a", "t") != TokenCache::key_for("b", "t"));  // per route
}

TEST_CASE("token cache: bounded, and a flood of tokens seen once never evicts the tokens in use") {
  TokenCache cache;
  const int in_use = 1000;
  for (int i = 0; i < in_use; ++i) {
    cache.insert(key(i), ok_until(1000));
    REQUIRE(cache.find(key(i), 0) != nullptr);  // used again: protected
  }
  // Ten times the capacity in tokens never seen again (forged, or each request a new one).
  for (int i = 0; i < 10 * static_cast<int>(TokenCache::kMaxEntries); ++i) {
    cache.insert(key(1'000'000 + i), {AuthStatus::TokenMalformed, {}, 1000});
    REQUIRE(cache.size() <= TokenCache::kMaxEntries);
  }
  CHECK(cache.size() == TokenCache::kMaxEntries);
  int kept = 0;
  for (int i = 0; i < in_use; ++i) kept += cache.find(key(i), 0) != nullptr;
  CHECK(kept == in_use);
  // The newest of the flood are still there: the oldest went first.
  CHECK(cache.find(key(1'000'000 + 10 * static_cast<int>(TokenCache::kMaxEntries) - 1), 0) != nullptr);
  CHECK(cache.find(key(1'000'000), 0) == nullptr);
}

TEST_CASE("token cache: protected entries beyond their share return to probation, least recent first") {
  TokenCache cache;
  const int total = static_cast<int>(TokenCache::kMaxProtected) + 10;
  for (int i = 0; i < total; ++i) {
    cache.insert(key(i), ok_until(1000));
    cache.find(key(i), 0);
  }
  CHECK(cache.size() == static_cast<std::size_t>(total));
  // Fill to capacity and beyond with new tokens: the demoted (oldest protected) go before
  // anything still protected.
  for (int i = 0; i < static_cast<int>(TokenCache::kMaxEntries); ++i) cache.insert(key(100'000 + i), ok_until(1000));
  CHECK(cache.find(key(0), 0) == nullptr);
  CHECK(cache.find(key(total - 1), 0) != nullptr);
  cache.clear();
  CHECK(cache.size() == 0);
}

TEST_CASE("token cache: refusals replayed stay on probation, so they never evict the tokens in use") {
  TokenCache cache;
  const int in_use = 1000;
  for (int i = 0; i < in_use; ++i) {
    cache.insert(key(i), ok_until(1000));
    REQUIRE(cache.find(key(i), 0) != nullptr);
  }
  // Bad tokens, each replayed, ten times the capacity: a replay finds the refusal but does not protect it.
  for (int i = 0; i < 10 * static_cast<int>(TokenCache::kMaxEntries); ++i) {
    cache.insert(key(1'000'000 + i), {AuthStatus::SignatureInvalid, {}, 1000});
    const auto* replayed = cache.find(key(1'000'000 + i), 0);
    REQUIRE(replayed != nullptr);
    REQUIRE(replayed->status == AuthStatus::SignatureInvalid);
  }
  int kept = 0;
  for (int i = 0; i < in_use; ++i) kept += cache.find(key(i), 0) != nullptr;
  CHECK(kept == in_use);
  // A protected token later refused (an introspection answer that changed) leaves the protected segment.
  cache.insert(key(0), {AuthStatus::TokenInactive, {}, 1000});
  for (int i = 0; i < static_cast<int>(TokenCache::kMaxEntries); ++i) cache.insert(key(2'000'000 + i), {AuthStatus::Expired, {}, 1000});
  CHECK(cache.find(key(0), 0) == nullptr);
  CHECK(cache.find(key(1), 0) != nullptr);
}
