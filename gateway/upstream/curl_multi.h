// libcurl's multi interface driven by one libevent loop (the hiperfifo pattern).
// Each event loop has one CurlMulti; its connection cache gives upstream keep-alive.
#pragma once

#include <curl/curl.h>

#include <vector>

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
  // An easy handle for a new transfer: a reset one from earlier transfers when there is one
  // (curl keeps its buffers, so a request costs no handle setup), else a new one.
  CURL* take_easy();
  // Returns a handle that is no longer added; kept for reuse up to a bound, else cleaned up.
  void give_back_easy(CURL* easy);

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
  std::vector<CURL*> idle_easy_;  // reset handles, owned here
};

}  // namespace mcpgate::upstream
