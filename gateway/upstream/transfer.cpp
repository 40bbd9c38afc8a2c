#include "upstream/transfer.h"

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <string_view>

#include "upstream/curl_multi.h"

namespace mcpgate::upstream {
namespace {

constexpr long kReceiveBufferBytes = 16384;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

TransferError classify(CURLcode result) {
  switch (result) {
    case CURLE_OK: return TransferError::None;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION: return TransferError::Unreachable;
    case CURLE_OPERATION_TIMEDOUT: return TransferError::Timeout;
    default: return TransferError::Failed;
  }
}

}  // namespace

Transfer::Transfer(CurlMulti& multi, TransferSink& sink, UpstreamRequest request)
    : multi_(multi),
      sink_(sink),
      request_(std::move(request)),
      easy_(multi.take_easy()),
      response_timer_(evtimer_new(multi.base(), &Transfer::on_response_timeout, this)) {}

Transfer::~Transfer() {
  cancel();
  multi_.give_back_easy(easy_);
  curl_slist_free_all(header_list_);
  event_free(response_timer_);
}

void Transfer::start() {
  CURL* e = easy_;
  curl_easy_setopt(e, CURLOPT_URL, request_.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, this);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer_);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request_.connect_timeout_ms));
  if (request_.total_timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(request_.total_timeout_ms));
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
  curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);  // bytes pass through as sent
  curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
  if (request_.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (request_.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (request_.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request_.method.c_str());
    if (request_.body != nullptr && (!request_.body->empty() || request_.method == "POST")) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request_.body->size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, request_.body->data());
    }
  }
  for (const auto& field : request_.headers.fields())
    header_list_ = curl_slist_append(header_list_, (field.name + ": " + field.value).c_str());
  // Headers curl would otherwise add on its own.
  for (const char* suppressed : {"Expect:", "Accept:", "Content-Type:"}) {
    const std::string_view name(suppressed, std::string_view(suppressed).size() - 1);
    if (!request_.headers.get(name)) header_list_ = curl_slist_append(header_list_, suppressed);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, header_list_);
  const timeval timeout{static_cast<time_t>(request_.response_timeout_ms / 1000),
                        static_cast<suseconds_t>((request_.response_timeout_ms % 1000) * 1000)};
  evtimer_add(response_timer_, &timeout);
  running_ = true;
  multi_.add(e);
}

void Transfer::cancel() {
  evtimer_del(response_timer_);
  if (!running_) return;
  running_ = false;
  multi_.remove(easy_);
}

void Transfer::resume() {
  if (!running_ || !paused_) return;
  paused_ = false;
  curl_easy_pause(easy_, CURLPAUSE_CONT);  // may re-enter on_body before returning
}

void Transfer::on_finished(CURLcode result) {
  if (!running_) return;
  const std::string detail = error_buffer_[0] != '\0' ? error_buffer_ : curl_easy_strerror(result);
  finish(classify(result), detail);
}

void Transfer::finish(TransferError error, const std::string& detail) {
  cancel();
  sink_.on_transfer_done(error, detail);
}

// Inside curl: only collects header lines; the head goes to the sink at its blank line.
std::size_t Transfer::on_header(char* data, std::size_t size, std::size_t count, void* self) noexcept {
  try {
    return static_cast<Transfer*>(self)->take_header_line(data, size * count);
  } catch (const std::exception& e) {
    spdlog::error("upstream response head handling failed: {}", e.what());
    return 0;  // curl fails the transfer; the sink hears on_transfer_done
  }
}

std::size_t Transfer::take_header_line(char* data, std::size_t length) {
  Transfer* transfer = this;
  const std::string_view line = trim(std::string_view(data, length));
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line (after 1xx, a new head begins)
    transfer->response_headers_ = {};
    const auto space = line.find(' ');
    int status = 0;
    if (space != std::string_view::npos) {
      const std::string_view code = line.substr(space + 1, 3);
      std::from_chars(code.data(), code.data() + code.size(), status);
    }
    transfer->status_ = status;
    return length;
  }
  if (line.empty()) {
    if (transfer->status_ >= 200 && !transfer->head_delivered_) {
      transfer->head_delivered_ = true;
      evtimer_del(transfer->response_timer_);
      transfer->sink_.on_response_head(transfer->status_, std::move(transfer->response_headers_));
    }
    return length;
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos)
    transfer->response_headers_.add(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return length;
}

// Inside curl: hands bytes to the sink, or pauses without consuming them.
std::size_t Transfer::on_body(char* data, std::size_t size, std::size_t count, void* self) noexcept {
  auto* transfer = static_cast<Transfer*>(self);
  const std::size_t length = size * count;
  if (!transfer->running_) return 0;
  try {
    if (!transfer->sink_.can_take_data()) {
      transfer->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    transfer->sink_.on_response_data(data, length);
    return length;
  } catch (const std::exception& e) {
    spdlog::error("relaying the upstream response failed: {}", e.what());
    return 0;
  }
}

// Outside curl (a libevent timer): the handle may be removed here.
void Transfer::on_response_timeout(int, short, void* self) noexcept {
  auto* transfer = static_cast<Transfer*>(self);
  if (!transfer->running_ || transfer->head_delivered_) return;
  try {
    transfer->finish(TransferError::Timeout, "no response from the upstream in time");
  } catch (const std::exception& e) {
    spdlog::error("upstream timeout handling failed: {}", e.what());
  }
}

}  // namespace mcpgate::upstream
