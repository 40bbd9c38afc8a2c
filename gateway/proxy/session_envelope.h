// Stateless session affinity for routes with several upstream endpoints: the Mcp-Session-Id a
// 2025-era client holds is the upstream's session id and the endpoint that made it, sealed
// (AES-256-GCM, bound to the route) under the session_envelope key, so any replica sharing the
// key sends the client's next request to the same endpoint without shared state.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "credentials/token_sealer.h"

namespace mcpgate::proxy {

struct SessionTarget {
  std::string endpoint;          // UpstreamUrl origin + path, as the route lists it
  std::string upstream_session;  // the Mcp-Session-Id the endpoint gave
};

class SessionEnvelope {
 public:
  explicit SessionEnvelope(std::shared_ptr<const credentials::TokenSealer> sealer) : sealer_(std::move(sealer)) {}

  // "<key id>.<base64url>": visible ASCII, a valid Mcp-Session-Id.
  std::string wrap(std::string_view route, const SessionTarget& target) const;
  // nullopt for a tampered, foreign (other key or route) or malformed envelope.
  std::optional<SessionTarget> unwrap(std::string_view route, std::string_view envelope) const;

 private:
  std::shared_ptr<const credentials::TokenSealer> sealer_;
};

using SessionEnvelopePtr = std::shared_ptr<const SessionEnvelope>;

// The envelope for a config: its keys, or `fallback_key` (made once at start) when it has none.
SessionEnvelopePtr make_session_envelope(const config::SessionEnvelopeConfig& config, const std::string& fallback_key);

// How an endpoint is named inside an envelope.
std::string endpoint_name(const config::UpstreamUrl& endpoint);

}  // namespace mcpgate::proxy
