// The browser side of linking a user's downstream account to a delegated credential:
//   GET /oauth/connect/<credential>?link=<signed link>  checks the link (signature, expiry,
//       first use), records the flow (state, PKCE verifier, who) in the store, sets a
//       cookie binding the flow to this browser, and redirects to the downstream AS;
//   GET /oauth/callback?code&state&iss  takes the flow record (once), checks the browser
//       cookie and the RFC 9207 issuer, redeems the code, stores the tokens, and says so.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "credentials/connect_link.h"
#include "http/server.h"
#include "proxy/worker.h"

namespace mcpgate::proxy {

// The connect-flow paths; the gateway answers them only while a delegated credential is
// configured (otherwise they belong to the routes like any other path).
bool is_connect_path(std::string_view path);
bool offers_connect_flow(const config::Config& config);

class ConnectExchange : public http::Exchange {
 public:
  ConnectExchange(http::Connection& connection, Worker& worker);
  ~ConnectExchange() override { *gone_ = true; }
  void start() override;
  void on_client_closed() override { *gone_ = true; }

 private:
  struct Flow {
    credentials::ConnectGrant grant;
    std::string verifier;  // PKCE code_verifier
  };
  void start_connect(const std::string& credential_name);
  void redirect_to_server(const Flow& flow, const std::string& state);
  void start_callback();
  void redeem(const Flow& flow, const std::string& code);
  void page(int status, std::string_view title, std::string_view text, http::HeaderList headers = {});
  const config::CredentialConfig* delegated_credential(const std::string& name) const;
  std::string redirect_uri() const;

  http::Connection& connection_;
  Worker& worker_;
  config::ConfigPtr config_;
  std::shared_ptr<auth::AuthRegistry> registry_;
  std::shared_ptr<auth::Waiter> waiter_;
  // Shared with every callback this exchange starts: set when the client went away, so a
  // late answer does not touch the connection (the exchange is gone with it).
  std::shared_ptr<bool> gone_ = std::make_shared<bool>(false);
  std::function<void()> resume_;  // what to run again when the server's metadata arrives
};

}  // namespace mcpgate::proxy
