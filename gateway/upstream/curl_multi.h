// libcurl's multi interface driven by one libevent loop (the hiperfifo pattern).
// Each event loop has one CurlMulti; its connection cache gives upstream keep-alive.
#pragma once

#include <curl/curl.h>

struct event;
struct event_base;

namespace mcpgate::upstream {

class Transfer;

class CurlMulti {
 public:
  explicit CurlMulti(event_base* base);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  event_base* base() const { return base_; }
  // Starts `transfer`'s easy handle. Never call from inside a curl callback.
  void add(CURL* easy);
  // Stops it. Never call from inside a curl callback.
  void remove(CURL* easy);

 private:
  struct SocketWatch;
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* watch) noexcept;
  static int on_timer_request(CURLM* multi, long timeout_ms, void* self) noexcept;
  static void on_socket_event(int fd, short kind, void* self) noexcept;
  static void on_timeout(int, short, void* self) noexcept;
  void drive(curl_socket_t fd, int action);
  void collect_finished();

  event_base* base_;
  CURLM* multi_;
  event* timer_;
};

}  // namespace mcpgate::upstream
