#include "upstream/http_fetch.h"

namespace mcpgate::upstream {

HttpFetch::HttpFetch(Fetcher& owner, UpstreamRequest request, std::string body, FetchCallback done)
    : owner_(owner), request_body_(std::move(body)), done_(std::move(done)) {
  request.body = &request_body_;
  transfer_ = std::make_unique<Transfer>(owner.curl_, *this, std::move(request));
}

void HttpFetch::start() { transfer_->start(); }

void HttpFetch::on_response_head(int status, http::HeaderList headers) {
  result_.status = status;
  result_.headers = std::move(headers);
}

void HttpFetch::on_response_data(const char* data, std::size_t length) {
  if (result_.body.size() + length > Fetcher::kMaxResponseBytes) {
    too_large_ = true;  // keep reading to the end, keep nothing more
    return;
  }
  result_.body.append(data, length);
}

// Called from CurlMulti::collect_finished or a timer: outside curl callbacks.
void HttpFetch::on_transfer_done(TransferError error, const std::string& detail) {
  result_.error = error;
  result_.detail = detail;
  if (too_large_ && error == TransferError::None) {
    result_.error = TransferError::Failed;
    result_.detail = "response larger than " + std::to_string(Fetcher::kMaxResponseBytes) + " bytes";
  }
  auto done = std::move(done_);
  owner_.finished(this);  // deferred: this object outlives the callback below
  if (done) done(result_);
}

Fetcher::~Fetcher() { in_flight_.clear(); }

void Fetcher::fetch(const std::string& method, const std::string& url, http::HeaderList headers, std::string body,
                    uint32_t timeout_ms, FetchCallback done) {
  UpstreamRequest request;
  request.method = method;
  request.url = url;
  request.headers = std::move(headers);
  request.connect_timeout_ms = timeout_ms;
  request.response_timeout_ms = timeout_ms;
  request.total_timeout_ms = timeout_ms;  // a body that stalls after the head fails too
  auto fetch = std::make_unique<HttpFetch>(*this, std::move(request), std::move(body), std::move(done));
  HttpFetch* raw = fetch.get();
  in_flight_.emplace(raw, std::move(fetch));
  raw->start();
}

void Fetcher::finished(HttpFetch* fetch) {
  auto found = in_flight_.find(fetch);
  if (found == in_flight_.end()) return;
  loop_.defer_delete(std::move(found->second));
  in_flight_.erase(found);
}

}  // namespace mcpgate::upstream
