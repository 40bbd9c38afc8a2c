#include "credentials/connect_link.h"

#include <jansson.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "core/base64url.h"

#include "core/json.h"

namespace mcpgate::credentials {
namespace {

constexpr std::string_view kLinkPurpose = "mcpgate connect link v1";
using core::JsonPtr;

}  // namespace

std::string random_token(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) throw std::runtime_error("random generator failed");
  return core::base64url_encode(std::string_view(reinterpret_cast<char*>(buffer.data()), buffer.size()));
}

ConnectGrant new_connect_grant(std::string credential, std::string issuer, std::string subject, int64_t now, int64_t ttl_s) {
  return {std::move(credential), std::move(issuer), std::move(subject), random_token(16), now + ttl_s};
}

std::string sign_connect_grant(const TokenSealer& sealer, const ConnectGrant& grant) {
  JsonPtr object(json_pack("{s:s, s:s, s:s, s:s, s:I}", "c", grant.credential.c_str(), "i", grant.issuer.c_str(), "s",
                           grant.subject.c_str(), "n", grant.id.c_str(), "e", static_cast<json_int_t>(grant.expires_at)),
                 &json_decref);
  const std::string payload = core::base64url_encode(core::json_text(object.get()));
  return payload + "." + core::base64url_encode(sealer.sign(kLinkPurpose, payload));
}

std::optional<ConnectGrant> open_connect_grant(const TokenSealer& sealer, std::string_view link, int64_t now) {
  if (link.size() > 4096) return std::nullopt;
  const auto dot = link.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view payload = link.substr(0, dot);
  const auto signature = core::base64url_decode(link.substr(dot + 1));
  if (!signature || !sealer.verify(kLinkPurpose, payload, *signature)) return std::nullopt;
  const auto json = core::base64url_decode(payload);
  if (!json) return std::nullopt;
  JsonPtr object(json_loadb(json->data(), json->size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
  const char *credential = nullptr, *issuer = nullptr, *subject = nullptr, *id = nullptr;
  json_int_t expires_at = 0;
  if (!object || json_unpack(object.get(), "{s:s, s:s, s:s, s:s, s:I}", "c", &credential, "i", &issuer, "s", &subject,
                             "n", &id, "e", &expires_at) != 0)
    return std::nullopt;
  if (expires_at <= now) return std::nullopt;
  return ConnectGrant{credential, issuer, subject, id, expires_at};
}

std::string connect_url(const std::string& public_url, const ConnectGrant& grant, const std::string& signed_link) {
  return public_url + "/oauth/connect/" + grant.credential + "?link=" + signed_link;
}

}  // namespace mcpgate::credentials
