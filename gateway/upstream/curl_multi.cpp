#include "upstream/curl_multi.h"

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "upstream/transfer.h"

namespace mcpgate::upstream {

// One per socket curl watches; curl hands it back as `watch` (curl_multi_assign). The event
// is reassigned in place when curl changes what it waits for.
struct CurlMulti::SocketWatch {
  event* ev = nullptr;
};

namespace {
// Enough for the transfers one loop usually runs at once; more are made and freed as needed.
constexpr std::size_t kMaxIdleEasyHandles = 64;
}  // namespace

CurlMulti::CurlMulti(event_base* base)
    : base_(base), multi_(curl_multi_init()), timer_(evtimer_new(base, &CurlMulti::on_timeout, this)) {
  if (multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::on_timer_request);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 256L);
}

CurlMulti::~CurlMulti() {
  // Transfers are removed by their owners first; cleanup releases cached connections
  // and calls on_socket(CURL_POLL_REMOVE) for their watches.
  curl_multi_cleanup(multi_);
  for (CURL* easy : idle_easy_) curl_easy_cleanup(easy);
  event_free(timer_);
}

CURL* CurlMulti::take_easy() {
  if (idle_easy_.empty()) return curl_easy_init();
  CURL* easy = idle_easy_.back();
  idle_easy_.pop_back();
  return easy;
}

void CurlMulti::give_back_easy(CURL* easy) {
  if (easy == nullptr) return;
  if (idle_easy_.size() >= kMaxIdleEasyHandles) {
    curl_easy_cleanup(easy);
    return;
  }
  curl_easy_reset(easy);  // options and callbacks cleared; connections stay in the multi's cache
  idle_easy_.push_back(easy);
}

void CurlMulti::add(CURL* easy) { curl_multi_add_handle(multi_, easy); }

void CurlMulti::remove(CURL* easy) { curl_multi_remove_handle(multi_, easy); }

// Called by curl (inside curl_multi_* calls) to say which events a socket needs.
int CurlMulti::on_socket(CURL*, curl_socket_t fd, int what, void* self, void* watch_ptr) noexcept {
  auto* multi = static_cast<CurlMulti*>(self);
  auto* watch = static_cast<SocketWatch*>(watch_ptr);
  if (what == CURL_POLL_REMOVE) {
    if (watch != nullptr) {
      event_free(watch->ev);
      delete watch;
    }
    curl_multi_assign(multi->multi_, fd, nullptr);
    return 0;
  }
  const short kind = static_cast<short>(((what & CURL_POLL_IN) ? EV_READ : 0) |
                                        ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
  if (watch == nullptr) {
    watch = new SocketWatch;
    watch->ev = event_new(multi->base_, fd, kind, &CurlMulti::on_socket_event, multi);
    curl_multi_assign(multi->multi_, fd, watch);
  } else {
    event_del(watch->ev);
    event_assign(watch->ev, multi->base_, fd, kind, &CurlMulti::on_socket_event, multi);
  }
  event_add(watch->ev, nullptr);
  return 0;
}

// curl asks for a timeout; a zero timeout runs on the next loop round, not now.
int CurlMulti::on_timer_request(CURLM*, long timeout_ms, void* self) noexcept {
  auto* multi = static_cast<CurlMulti*>(self);
  if (timeout_ms < 0) {
    evtimer_del(multi->timer_);
    return 0;
  }
  const timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  evtimer_add(multi->timer_, &timeout);
  return 0;
}

void CurlMulti::on_socket_event(int fd, short kind, void* self) noexcept {
  const int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
  static_cast<CurlMulti*>(self)->drive(fd, action);
}

void CurlMulti::on_timeout(int, short, void* self) noexcept {
  static_cast<CurlMulti*>(self)->drive(CURL_SOCKET_TIMEOUT, 0);
}

void CurlMulti::drive(curl_socket_t fd, int action) {
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_, fd, action, &running);
  if (rc != CURLM_OK) spdlog::error("curl_multi_socket_action: {}", curl_multi_strerror(rc));
  collect_finished();
}

// Outside every curl callback: finished transfers may be removed and their owners told.
void CurlMulti::collect_finished() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    Transfer* transfer = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
    const CURLcode result = message->data.result;
    if (transfer == nullptr) continue;
    try {
      transfer->on_finished(result);
    } catch (const std::exception& e) {
      spdlog::error("finishing an upstream transfer failed: {}", e.what());
    }
  }
}

}  // namespace mcpgate::upstream
