#include "proxy/session_envelope.h"

namespace mcpgate::proxy {
namespace {

std::string context_for(std::string_view route) { return "mcp-session\n" + std::string(route); }

}  // namespace

std::string SessionEnvelope::wrap(std::string_view route, const SessionTarget& target) const {
  return sealer_->seal(target.endpoint + '\n' + target.upstream_session, context_for(route));
}

std::optional<SessionTarget> SessionEnvelope::unwrap(std::string_view route, std::string_view envelope) const {
  auto plaintext = sealer_->open(envelope, context_for(route));
  if (!plaintext) return std::nullopt;
  const auto newline = plaintext->find('\n');
  if (newline == std::string::npos) return std::nullopt;
  return SessionTarget{plaintext->substr(0, newline), plaintext->substr(newline + 1)};
}

SessionEnvelopePtr make_session_envelope(const config::SessionEnvelopeConfig& config, const std::string& fallback_key) {
  std::vector<credentials::TokenSealer::NamedKey> keys;
  for (const auto& key : config.keys) keys.push_back({key.id, key.bytes});
  if (keys.empty()) keys.push_back({"local", fallback_key});
  return std::make_shared<const SessionEnvelope>(std::make_shared<const credentials::TokenSealer>(std::move(keys)));
}

std::string endpoint_name(const config::UpstreamUrl& endpoint) { return endpoint.origin() + endpoint.path; }

}  // namespace mcpgate::proxy
