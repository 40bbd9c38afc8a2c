// Cost per request of JWT validation with and without the verified-token cache:
// for RS256 (2048-bit) and ES256, the full verify_jwt path (parse, key lookup,
// signature, claims) against the cache-hit path of ProxyExchange::verify_jwt_token
// (TokenCache::key_for, i.e. SHA-256 of the token, then find). Single-threaded.
// Keys and tokens are generated in process with cjose; no files, no network.
//
// Usage: mcpgate_jwt_bench [MAX_ITERATIONS=20000] [MAX_SECONDS_PER_RUN=2]
// Each timed run stops after MAX_ITERATIONS or MAX_SECONDS_PER_RUN, whichever
// comes first; ns/op is the median of 5 runs (after one untimed warm-up run).
#include <cjose/header.h>
#include <cjose/jwk.h>
#include <cjose/jws.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwks.h"
#include "auth/jwt_verifier.h"
#include "auth/token_cache.h"
#include "bench_timing.h"

namespace {

using mcpgate::auth::AuthStatus;
using mcpgate::auth::CjoseJwkPtr;
using mcpgate::auth::JwkSet;
using mcpgate::auth::JwtRules;
using mcpgate::auth::TokenCache;
using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;
using mcpgate::bench::keep;
using mcpgate::bench::kRuns;
using mcpgate::bench::Limits;
using mcpgate::bench::measure;
using mcpgate::bench::Sample;

constexpr int64_t kNow = 1'750'000'000;
constexpr std::string_view kRoute = "notes";

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "jwt_bench: %s\n", what);
  std::exit(1);
}

JsonPtr load(std::string_view text) {
  JsonPtr json(json_loadb(text.data(), text.size(), 0, nullptr), &json_decref);
  if (!json) die("benchmark JSON does not parse");
  return json;
}

std::string dump(json_t* json) {
  std::unique_ptr<char, decltype(&free)> text(json_dumps(json, JSON_COMPACT), &free);
  if (!text) die("json_dumps failed");
  return text.get();
}

// The key's public JWK with `members` (a JSON object) merged in.
std::string public_jwk(const cjose_jwk_t* key, std::string_view members) {
  std::unique_ptr<char, decltype(&free)> text(cjose_jwk_to_json(key, false, nullptr), &free);
  if (!text) die("cjose_jwk_to_json failed");
  JsonPtr jwk = load(text.get());
  json_object_update(jwk.get(), load(members).get());
  return dump(jwk.get());
}

// A compact JWS of `payload` under `header_json`, signed with the header's alg.
std::string sign(const cjose_jwk_t* key, std::string_view header_json, std::string_view payload) {
  JsonPtr header = load(header_json);
  std::unique_ptr<cjose_jws_t, decltype(&cjose_jws_release)> jws(
      cjose_jws_sign(key, reinterpret_cast<cjose_header_t*>(header.get()),
                     reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), nullptr),
      &cjose_jws_release);
  if (!jws) die("cjose_jws_sign failed");
  const char* compact = nullptr;
  if (!cjose_jws_export(jws.get(), &compact, nullptr)) die("cjose_jws_export failed");
  return compact;
}

// A realistic RFC 9068 access-token payload, valid at kNow.
std::string claims(int serial) {
  return R"({"iss":"https://idp.example.com","sub":"user-)" + std::to_string(serial) +
         R"(","aud":"https://mcp.example.com/notes","exp":)" + std::to_string(kNow + 600) +
         R"(,"iat":)" + std::to_string(kNow - 10) + R"(,"jti":"bench-)" + std::to_string(serial) +
         R"(","client_id":"notes-cli","scope":"notes:read notes:write"})";
}

struct Row {
  std::string alg, path;
  size_t token_bytes = 0;
  Sample sample;
  double baseline_ns = 0;  // verify_jwt ns/op of the same alg
};

void print(const std::vector<Row>& rows) {
  std::printf("%-6s %-28s %6s %12s %13s %9s %8s\n", "alg", "path", "bytes", "ns/op", "ops/s", "speedup", "iters");
  for (const Row& row : rows) {
    std::printf("%-6s %-28s %6zu %12.0f %13.0f %8.1fx %8llu\n", row.alg.c_str(), row.path.c_str(), row.token_bytes,
                row.sample.ns_per_op, 1e9 / row.sample.ns_per_op, row.baseline_ns / row.sample.ns_per_op,
                static_cast<unsigned long long>(row.sample.iterations));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Limits limits;
  if (argc > 1) limits.max_iterations = std::strtoull(argv[1], nullptr, 10);
  if (argc > 2) limits.max_seconds = std::strtod(argv[2], nullptr);
  if (limits.max_iterations == 0 || !(limits.max_seconds > 0)) die("usage: mcpgate_jwt_bench [MAX_ITERATIONS] [MAX_SECONDS]");

  static const uint8_t kExponent[] = {0x01, 0x00, 0x01};
  CjoseJwkPtr rsa(cjose_jwk_create_RSA_random(2048, kExponent, sizeof kExponent, nullptr));
  CjoseJwkPtr ec(cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, nullptr));
  if (!rsa || !ec) die("key generation failed");

  // One JWKS holding both keys, as an IdP publishing several would.
  const std::string jwks = R"({"keys":[)" + public_jwk(rsa.get(), R"({"kid":"rsa-1","use":"sig","alg":"RS256"})") +
                           "," + public_jwk(ec.get(), R"({"kid":"ec-1","use":"sig","alg":"ES256"})") + "]}";
  std::string error;
  const auto keys = JwkSet::parse(jwks, &error);
  if (!keys || keys->size() != 2) die(("JWKS does not parse: " + error).c_str());

  JwtRules rules;
  rules.issuer = "https://idp.example.com";
  rules.audiences = {"https://mcp.example.com/notes"};

  struct Case {
    const char* alg;
    const cjose_jwk_t* key;
    const char* header;
  };
  const Case cases[] = {
      {"RS256", rsa.get(), R"({"alg":"RS256","kid":"rsa-1","typ":"at+jwt"})"},
      {"ES256", ec.get(), R"({"alg":"ES256","kid":"ec-1","typ":"at+jwt"})"},
  };

  std::printf("mcpgate JWT validation cost per request (single thread, %s)\n", OpenSSL_version(OPENSSL_VERSION));
  std::printf("runs: median of %d, each bounded by %llu iterations or %.1f s\n", kRuns,
              static_cast<unsigned long long>(limits.max_iterations), limits.max_seconds);
  std::printf("cache: %zu other entries; hit = key_for (SHA-256) + find; +copy adds the Identity copy ProxyExchange does\n\n",
              size_t{1000});

  std::vector<Row> rows;
  for (const Case& c : cases) {
    const std::string token = sign(c.key, c.header, claims(0));
    const auto check = mcpgate::auth::verify_jwt(token, *keys, rules, kNow);
    if (check.status != AuthStatus::Ok) die("benchmark token does not verify");

    // 1. Full verification.
    const Sample verify = measure(limits, 1, [&] {
      auto result = mcpgate::auth::verify_jwt(token, *keys, rules, kNow);
      keep(result);
      if (result.status != AuthStatus::Ok) die("verify_jwt failed during the run");
    });
    rows.push_back({c.alg, "verify_jwt (no cache)", token.size(), verify, verify.ns_per_op});

    // 2. Cache hit, in a cache that also holds other clients' tokens (same shape of key).
    TokenCache cache;
    for (int i = 1; i <= 1000; ++i) {
      std::string other = token;
      other.replace(other.size() - 8, 8, std::to_string(10000000 + i));
      cache.insert(TokenCache::key_for(kRoute, other), {AuthStatus::Ok, check.identity, kNow + 600});
    }
    cache.insert(TokenCache::key_for(kRoute, token), {AuthStatus::Ok, check.identity, check.identity.expires_at});
    const Sample hit = measure(limits, 64, [&] {
      const std::string key = TokenCache::key_for(kRoute, token);
      const TokenCache::Entry* entry = cache.find(key, kNow);
      keep(entry);
      if (entry == nullptr) die("cache miss during the run");
    });
    rows.push_back({c.alg, "cache hit", token.size(), hit, verify.ns_per_op});

    // 2b. The same plus the copy of the cached Identity, as ProxyExchange::verify_jwt_token does.
    const Sample hit_copy = measure(limits, 64, [&] {
      const std::string key = TokenCache::key_for(kRoute, token);
      const TokenCache::Entry* entry = cache.find(key, kNow);
      if (entry == nullptr) die("cache miss during the run");
      mcpgate::auth::Identity identity = entry->identity;
      keep(identity);
    });
    rows.push_back({c.alg, "cache hit +copy", token.size(), hit_copy, verify.ns_per_op});
  }
  print(rows);
  return 0;
}
