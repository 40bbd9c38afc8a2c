// One upstream HTTP request on a CurlMulti, with its response streamed to a sink.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string>

#include "http/message.h"

struct event;

namespace mcpgate::upstream {

class CurlMulti;

struct UpstreamRequest {
  std::string method;
  std::string url;
  http::HeaderList headers;
  const std::string* body = nullptr;  // owned by the caller; must outlive the Transfer
  uint32_t connect_timeout_ms = 5000;
  uint32_t response_timeout_ms = 30000;  // until the response head has arrived
  // The whole transfer, body included (0: none). Relayed streams have none; the gateway's own
  // calls (metadata, keys, tokens) do, or a server that stalls mid-body would hold them forever.
  uint32_t total_timeout_ms = 0;
};

enum class TransferError { None, Unreachable, Timeout, Failed };

// Receives a Transfer's events, on the loop thread. Methods may not destroy the
// Transfer synchronously (defer its owner's deletion instead).
class TransferSink {
 public:
  virtual ~TransferSink() = default;
  virtual void on_response_head(int status, http::HeaderList headers) = 0;
  // False: the sink cannot take data now; the transfer pauses until resume().
  virtual bool can_take_data() = 0;
  virtual void on_response_data(const char* data, std::size_t length) = 0;
  // Exactly once, unless cancelled first. `error` is None on a complete response.
  virtual void on_transfer_done(TransferError error, const std::string& detail) = 0;
};

class Transfer {
 public:
  Transfer(CurlMulti& multi, TransferSink& sink, UpstreamRequest request);
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  void start();
  // Stops the transfer; the sink hears nothing more. Safe to call twice.
  void cancel();
  // Continues a transfer paused by can_take_data() == false. May deliver data before returning.
  void resume();
  bool paused() const { return paused_; }
  bool running() const { return running_; }

  // Called by CurlMulti when curl reports the transfer done.
  void on_finished(CURLcode result);

 private:
  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* self) noexcept;
  std::size_t take_header_line(char* data, std::size_t length);
  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* self) noexcept;
  static void on_response_timeout(int, short, void* self) noexcept;
  void finish(TransferError error, const std::string& detail);

  CurlMulti& multi_;
  TransferSink& sink_;
  UpstreamRequest request_;
  CURL* easy_;
  curl_slist* header_list_ = nullptr;
  event* response_timer_;
  char error_buffer_[CURL_ERROR_SIZE] = "";
  int status_ = 0;
  http::HeaderList response_headers_;
  bool head_delivered_ = false;
  bool running_ = false;
  bool paused_ = false;
};

}  // namespace mcpgate::upstream
