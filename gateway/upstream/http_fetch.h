// A small buffered HTTP request for the gateway's own calls (metadata, JWKS,
// token endpoints), on a loop's CurlMulti. The response body is bounded.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/event_loop.h"
#include "http/message.h"
#include "upstream/transfer.h"

namespace mcpgate::upstream {

struct FetchResult {
  TransferError error = TransferError::None;
  std::string detail;  // why it failed, for logs
  int status = 0;
  http::HeaderList headers;
  std::string body;
  bool ok() const { return error == TransferError::None && status >= 200 && status < 300; }
};

using FetchCallback = std::function<void(FetchResult&)>;

class Fetcher;

// One request in flight; owned by its Fetcher until done.
class HttpFetch : public core::Deletable, public TransferSink {
 public:
  HttpFetch(Fetcher& owner, UpstreamRequest request, std::string body, FetchCallback done);
  void start();

 private:
  void on_response_head(int status, http::HeaderList headers) override;
  bool can_take_data() override { return true; }
  void on_response_data(const char* data, std::size_t length) override;
  void on_transfer_done(TransferError error, const std::string& detail) override;

  Fetcher& owner_;
  std::string request_body_;
  FetchCallback done_;
  FetchResult result_;
  bool too_large_ = false;
  std::unique_ptr<Transfer> transfer_;
};

// Starts fetches on one loop and owns them until they finish (or the loop is torn down).
class Fetcher {
 public:
  static constexpr std::size_t kMaxResponseBytes = 1 << 20;

  Fetcher(core::EventLoop& loop, CurlMulti& curl) : loop_(loop), curl_(curl) {}
  ~Fetcher();  // cancels what is in flight; callbacks are not called

  // GET (or POST when `body` is set) `url`; `done` runs on this loop, never before fetch() returns,
  // at the latest `timeout_ms` after the start (connect, head and body together).
  void fetch(const std::string& method, const std::string& url, http::HeaderList headers, std::string body,
             uint32_t timeout_ms, FetchCallback done);

 private:
  friend class HttpFetch;
  void finished(HttpFetch* fetch);

  core::EventLoop& loop_;
  CurlMulti& curl_;
  std::unordered_map<HttpFetch*, std::unique_ptr<HttpFetch>> in_flight_;
};

}  // namespace mcpgate::upstream
