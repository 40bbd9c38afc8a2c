#include "auth/token_lookup.h"

#include <jansson.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "auth/uri.h"

namespace mcpgate::auth {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

JsonPtr load_object(const std::string& text) {
  JsonPtr value(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
  if (value && !json_is_object(value.get())) value.reset();
  return value;
}

std::string compact(json_t* value) {
  std::unique_ptr<char, decltype(&free)> text(json_dumps(value, JSON_COMPACT), &free);
  return text ? text.get() : "";
}

std::vector<std::string> string_or_array(json_t* value) {
  std::vector<std::string> out;
  if (json_is_string(value)) out.emplace_back(json_string_value(value));
  std::size_t index;
  json_t* item;
  if (json_is_array(value)) {
    json_array_foreach(value, index, item) if (json_is_string(item)) out.emplace_back(json_string_value(item));
  }
  return out;
}

}  // namespace

LookupResult read_userinfo_response(const LookupResponse& response, const std::string& issuer) {
  if (!response.reached || response.status >= 500) return {AuthStatus::IdpUnavailable, {}};
  if (response.status == 401 || response.status == 403) return {AuthStatus::TokenInactive, {}};
  if (response.status != 200) return {AuthStatus::IdpUnavailable, {}};
  JsonPtr claims = load_object(response.body);
  if (!claims) return {AuthStatus::IdpUnavailable, {}};
  const char* subject = json_string_value(json_object_get(claims.get(), "sub"));
  if (subject == nullptr || *subject == '\0') return {AuthStatus::MissingClaim, {}};
  LookupResult result{AuthStatus::Ok, {}};
  result.identity.subject = subject;
  result.identity.issuer = issuer;
  if (const char* scope = json_string_value(json_object_get(claims.get(), "scope")))
    result.identity.scopes = split_scopes(scope);
  result.identity.claims_json = compact(claims.get());
  return result;
}

LookupResult read_introspection_response(const LookupResponse& response, const IntrospectionRules& rules,
                                         int64_t now_s) {
  if (!response.reached || response.status >= 500) return {AuthStatus::IdpUnavailable, {}};
  // 400: the server will not say this token is active (e.g. a token type it cannot
  // introspect): not a valid token here. 401/403 mean our own client was refused: a
  // gateway misconfiguration the caller must not pay for with its token.
  if (response.status == 400) return {AuthStatus::TokenInactive, {}};
  if (response.status != 200) return {AuthStatus::IdpUnavailable, {}};
  JsonPtr claims = load_object(response.body);
  if (!claims) return {AuthStatus::IdpUnavailable, {}};
  if (!json_is_true(json_object_get(claims.get(), "active"))) return {AuthStatus::TokenInactive, {}};
  const char* subject = json_string_value(json_object_get(claims.get(), "sub"));
  if (subject == nullptr || *subject == '\0') return {AuthStatus::MissingClaim, {}};
  if (const char* issuer = json_string_value(json_object_get(claims.get(), "iss")); issuer && rules.issuer != issuer)
    return {AuthStatus::IssuerMismatch, {}};
  json_t* exp = json_object_get(claims.get(), "exp");
  if (json_is_integer(exp) && json_integer_value(exp) + rules.leeway_s < now_s) return {AuthStatus::Expired, {}};
  // RFC 8707: the token must have been issued for this resource.
  const auto audiences = string_or_array(json_object_get(claims.get(), "aud"));
  const bool audience_ok = std::any_of(audiences.begin(), audiences.end(), [&](const std::string& aud) {
    return std::any_of(rules.audiences.begin(), rules.audiences.end(), [&](const std::string& wanted) {
      return canonical_resource_uri(aud) == canonical_resource_uri(wanted);
    });
  });
  if (!audience_ok) return {AuthStatus::AudienceMismatch, {}};
  LookupResult result{AuthStatus::Ok, {}};
  Identity& identity = result.identity;
  identity.subject = subject;
  identity.issuer = rules.issuer;
  identity.audiences = audiences;
  if (const char* client = json_string_value(json_object_get(claims.get(), "client_id"))) identity.client_id = client;
  if (const char* scope = json_string_value(json_object_get(claims.get(), "scope"))) identity.scopes = split_scopes(scope);
  identity.expires_at = json_is_integer(exp) ? json_integer_value(exp) : 0;
  identity.claims_json = compact(claims.get());
  return result;
}

std::string form_urlencode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string introspection_request_body(const std::string& token) {
  return "token=" + form_urlencode(token) + "&token_type_hint=access_token";
}

std::string client_secret_basic(const std::string& client_id, const std::string& client_secret) {
  const std::string credentials = form_urlencode(client_id) + ":" + form_urlencode(client_secret);
  std::string encoded(4 * ((credentials.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(credentials.data()),
                                     static_cast<int>(credentials.size()));
  encoded.resize(static_cast<std::size_t>(length));
  return "Basic " + encoded;
}

}  // namespace mcpgate::auth
