#include "admin/admin_exchange.h"

#include <openssl/crypto.h>

namespace mcpgate::admin {

bool constant_time_equals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void AdminExchange::reply_json(int status, const std::string& body) {
  http::HeaderList headers;
  headers.add("Content-Type", "application/json");
  headers.add("Cache-Control", "no-store");
  connection_.send_response(status, std::move(headers), body);
}

void AdminExchange::start() {
  const auto& request = connection_.request();
  if (request.method != "GET" && request.method != "HEAD") {
    connection_.send_error({405, "method_not_allowed", "the admin endpoints answer GET"}, std::nullopt);
    return;
  }
  if (request.path == "/healthz") {
    reply_json(200, R"({"status":"ok"})");
  } else if (request.path == "/readyz") {
    const bool ready = state_.ready.load() && (!state_.dependencies_ready || state_.dependencies_ready());
    reply_json(ready ? 200 : 503, ready ? R"({"status":"ready"})" : R"({"status":"not_ready"})");
  } else if (request.path == "/metrics") {
    if (!state_.token.empty()) {
      const auto header = request.headers.get("Authorization");
      if (!header || !constant_time_equals(std::string(*header), "Bearer " + state_.token)) {
        connection_.send_error({401, "unauthorized", "the admin token is required"}, std::nullopt);
        return;
      }
    }
    http::HeaderList headers;
    headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    connection_.send_response(200, std::move(headers), state_.metrics->render_prometheus());
  } else {
    connection_.send_error({404, "not_found", "unknown admin endpoint"}, std::nullopt);
  }
}

}  // namespace mcpgate::admin
