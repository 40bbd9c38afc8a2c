// The token store's record decoders: tokens_from_json (what a stored entry opens to),
// tokens_from_token_response (a token endpoint's answer), TokenSealer::open (what the backend
// hands back), and open_connect_grant (the connect link a browser brings back).
//
// Input: [mode] [detail] [detail] <payload>; mode = byte 0 % 6:
//   0  payload is a stored tokens record (JSON)
//   1  payload is a token endpoint's answer; detail bit 0: a previous record to inherit from
//   2  payload is a sealed value as read from the backend; detail bit 0 picks the store key
//   3  payload is a plaintext sealed now and opened back (then tampered at a position from the details)
//   4  payload is a connect link as received in ?link=
//   5  payload is the JSON of a connect link, signed now with the store key
//
// Checked: decoded records have an access token; records round-trip through tokens_to_json;
// token lifetimes count forward from now; what is sealed opens only under its own store key
// and sealer, and never once a byte of it changed; an opened link has not expired and says
// what its JSON said; a signed grant opens as itself.
#include <jansson.h>

#include <optional>
#include <string>

#include "core/base64url.h"
#include "core/json.h"
#include "credentials/connect_link.h"
#include "credentials/token_sealer.h"
#include "credentials/token_store.h"
#include "fuzz_support.h"

namespace {

using mcpgate::credentials::ConnectGrant;
using mcpgate::credentials::TokenSealer;
using mcpgate::credentials::UserTokens;
using mcpgate::fuzz::printable;

constexpr int64_t kNow = 1'750'000'000;
// Fixed keys, so a sealed seed in the corpus opens in every run (tests/fuzz/corpus/token_record).
const std::string kKeyA(32, 'A');
const std::string kKeyB = "0123456789abcdef0123456789ABCDEF";
const std::string kContexts[2] = {"mcpgate:tokens:user-api:aHR0cHM6Ly9pZHAuZXhhbXBsZS5jb20:YWxpY2U",
                                  "mcpgate:record:connect:state-1"};
// The purpose connect_link.cpp signs links under; LLVMFuzzerInitialize checks it still is.
constexpr std::string_view kLinkPurpose = "mcpgate connect link v1";

const TokenSealer& sealer() {  // seals with B, opens A and B: a store after a key rotation
  static const TokenSealer instance(std::vector<std::string>{kKeyB, kKeyA});
  return instance;
}
const TokenSealer& old_sealer() {  // the store before the rotation: A only
  static const TokenSealer instance(std::vector<std::string>{kKeyA});
  return instance;
}

bool same_tokens(const UserTokens& a, const UserTokens& b) {
  return a.access_token == b.access_token && a.refresh_token == b.refresh_token && a.scope == b.scope &&
         a.expires_at == b.expires_at && a.updated_at == b.updated_at;
}

void check_round_trip(const UserTokens& tokens, const std::string& what) {
  const auto again = mcpgate::credentials::tokens_from_json(mcpgate::credentials::tokens_to_json(tokens));
  FUZZ_CHECK(again && same_tokens(*again, tokens), what);
}

void stored_record(const std::string& payload) {
  const auto tokens = mcpgate::credentials::tokens_from_json(payload);
  if (!tokens) return;
  FUZZ_CHECK(!tokens->access_token.empty(), printable(payload));
  check_round_trip(*tokens, printable(payload));
}

void token_response(const std::string& payload, bool with_previous) {
  const UserTokens previous{"old-access", "old-refresh", "notes:read", kNow - 10, kNow - 3600};
  const auto tokens = mcpgate::credentials::tokens_from_token_response(payload, with_previous ? &previous : nullptr, kNow);
  const std::string what = printable(payload);
  if (!tokens) return;
  FUZZ_CHECK(!tokens->access_token.empty() && tokens->updated_at == kNow, what);
  FUZZ_CHECK(tokens->expires_at == 0 || tokens->expires_at > kNow, what);
  if (with_previous) FUZZ_CHECK(!tokens->refresh_token.empty() && !tokens->scope.empty(), what);
  check_round_trip(*tokens, what);
}

void sealed_value(std::string_view payload, uint8_t detail) {
  const std::string& context = kContexts[detail & 1];
  const auto opened = sealer().open(payload, context);
  if (!opened) return;
  // It opened, so it was sealed with A or B under this context: never under the other one.
  FUZZ_CHECK(!sealer().open(payload, kContexts[(detail & 1) ^ 1]), printable(payload));
  if (auto under_a = old_sealer().open(payload, context)) FUZZ_CHECK(*under_a == *opened, printable(payload));
  if (auto tokens = mcpgate::credentials::tokens_from_json(*opened)) check_round_trip(*tokens, printable(*opened));
}

void seal_and_tamper(std::string_view plaintext, uint8_t position, uint8_t flip) {
  const std::string what = printable(plaintext);
  for (const std::string& context : kContexts) {
    const std::string sealed = sealer().seal(plaintext, context);
    FUZZ_CHECK(sealed.compare(0, sealer().sealing_key_id().size() + 1, sealer().sealing_key_id() + ".") == 0, what);
    const auto opened = sealer().open(sealed, context);
    FUZZ_CHECK(opened && *opened == plaintext, what);
    FUZZ_CHECK(!sealer().open(sealed, context == kContexts[0] ? kContexts[1] : kContexts[0]), what);
    FUZZ_CHECK(!old_sealer().open(sealed, context), what);  // sealed with B, unknown to the old store
    const std::string old = old_sealer().seal(plaintext, context);
    const auto rotated = sealer().open(old, context);
    FUZZ_CHECK(rotated && *rotated == plaintext, what);  // the rotated store still opens A's entries
    // Any changed byte, in the key id or the sealed bytes, and the value does not open.
    std::string tampered = sealed;
    const std::size_t at = tampered.size() * position / 256;
    tampered[at] = static_cast<char>(tampered[at] ^ (flip | 1));
    FUZZ_CHECK(!sealer().open(tampered, context), what + "  tampered at " + std::to_string(at));
    FUZZ_CHECK(!sealer().open(sealed.substr(0, sealed.size() - 1 - position % 8), context), what);
  }
}

void check_grant(const ConnectGrant& grant, const std::string& what) {
  FUZZ_CHECK(grant.expires_at > kNow, what);
}

void connect_link(std::string_view link) {
  if (auto grant = mcpgate::credentials::open_connect_grant(sealer(), link, kNow)) check_grant(*grant, printable(link));
}

std::string signed_link(std::string_view json) {
  const std::string payload = mcpgate::core::base64url_encode(json);
  return payload + "." + mcpgate::core::base64url_encode(sealer().sign(kLinkPurpose, payload));
}

// Printable ASCII from fuzzed bytes: what json_pack accepts as a string.
std::string text_from(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out.push_back(static_cast<char>(0x20 + c % 0x5f));
  return out;
}

void signed_grant_json(std::string_view json, uint8_t detail) {
  const std::string what = printable(json);
  const std::string link = signed_link(json);
  const auto grant = mcpgate::credentials::open_connect_grant(sealer(), link, kNow);
  if (grant) {
    check_grant(*grant, what);
    // It says what its JSON says.
    auto object = mcpgate::core::json_owned(json_loadb(json.data(), json.size(), JSON_REJECT_DUPLICATES, nullptr));
    FUZZ_CHECK(object != nullptr, what);
    FUZZ_CHECK(grant->credential == json_string_value(json_object_get(object.get(), "c")) &&
                   grant->issuer == json_string_value(json_object_get(object.get(), "i")) &&
                   grant->subject == json_string_value(json_object_get(object.get(), "s")) &&
                   grant->id == json_string_value(json_object_get(object.get(), "n")) &&
                   grant->expires_at == json_integer_value(json_object_get(object.get(), "e")),
               what);
    // The same link under another store's key does not open.
    FUZZ_CHECK(!mcpgate::credentials::open_connect_grant(old_sealer(), link, kNow), what);
  }
  // A grant made by the gateway from fields like these opens as itself, until it expires.
  const std::string text = text_from(json.substr(0, 96));
  const std::size_t third = text.size() / 3;
  const ConnectGrant made{text.substr(0, third), text.substr(third, third), text.substr(2 * third), "n0nce",
                          kNow + 1 + detail};
  const std::string made_link = mcpgate::credentials::sign_connect_grant(sealer(), made);
  const auto opened = mcpgate::credentials::open_connect_grant(sealer(), made_link, kNow);
  FUZZ_CHECK(opened && opened->credential == made.credential && opened->issuer == made.issuer &&
                 opened->subject == made.subject && opened->id == made.id && opened->expires_at == made.expires_at,
             printable(made_link));
  FUZZ_CHECK(!mcpgate::credentials::open_connect_grant(sealer(), made_link, made.expires_at), printable(made_link));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // signed_link() must sign as connect_link.cpp does, or mode 5 would only test refusals.
  const ConnectGrant grant{"user-api", "https://idp.example.com", "alice", "id-1", kNow + 60};
  const std::string link = mcpgate::credentials::sign_connect_grant(sealer(), grant);
  const auto payload = mcpgate::core::base64url_decode(link.substr(0, link.find('.')));
  if (!payload || signed_link(*payload) != link) {
    std::fprintf(stderr, "fuzz_token_record: kLinkPurpose no longer matches connect_link.cpp\n");
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpgate::fuzz::Input input(data, size);
  const unsigned mode = input.byte() % 6;
  const uint8_t detail = input.byte();
  const uint8_t detail2 = input.byte();
  const std::string payload(input.rest());
  switch (mode) {
    case 0: stored_record(payload); break;
    case 1: token_response(payload, detail & 1); break;
    case 2: sealed_value(payload, detail); break;
    case 3: seal_and_tamper(payload, detail, detail2); break;
    case 4: connect_link(payload); break;
    case 5: signed_grant_json(payload, detail); break;
  }
  return 0;
}
