#include "core/event_loop.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>

namespace mcpgate::core {

void enable_libevent_threads() {
  static const int result = evthread_use_pthreads();
  if (result != 0) throw std::runtime_error("libevent: pthreads support unavailable");
}

namespace {

// epoll with a change list: a socket's interest changed several times in one loop round (curl
// switching a reused connection between send and receive, a write enabled then flushed) costs
// one epoll_ctl, not one per change. No fd is dup()ed into the loop, the change list's caveat.
event_base* new_event_base() {
  const std::unique_ptr<event_config, decltype(&event_config_free)> config(event_config_new(), &event_config_free);
  if (config) {
    event_config_set_flag(config.get(), EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    if (event_base* base = event_base_new_with_config(config.get())) return base;
  }
  return event_base_new();
}

}  // namespace

EventLoop::EventLoop() : base_(new_event_base()) {
  if (base_ == nullptr) throw std::runtime_error("libevent: event_base_new failed");
  // Persistent user events: activated by event_active(), never by I/O.
  posted_event_ = event_new(base_, -1, EV_PERSIST, &EventLoop::on_posted, this);
  deferred_delete_event_ = event_new(base_, -1, EV_PERSIST, &EventLoop::on_deferred_delete, this);
  event_add(posted_event_, nullptr);
  event_add(deferred_delete_event_, nullptr);
}

EventLoop::~EventLoop() {
  graveyard_.clear();
  if (dns_ != nullptr) evdns_base_free(dns_, 0);
  event_free(posted_event_);
  event_free(deferred_delete_event_);
  event_base_free(base_);
}

evdns_base* EventLoop::dns() {
  if (dns_ == nullptr) {
    dns_ = evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns_ == nullptr) return nullptr;
    evdns_base_set_option(dns_, "timeout:", "2");
    evdns_base_set_option(dns_, "attempts:", "2");
  }
  return dns_;
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  event_active(posted_event_, EV_READ, 0);
}

void EventLoop::defer_delete(std::unique_ptr<Deletable> object) {
  if (!object) return;
  graveyard_.push_back(std::move(object));
  event_active(deferred_delete_event_, EV_READ, 0);
}

void EventLoop::drain_deferred() {
  while (!graveyard_.empty()) {
    std::vector<std::unique_ptr<Deletable>> dead;
    dead.swap(graveyard_);
  }
}

void EventLoop::run() { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); }

void EventLoop::stop() { event_base_loopbreak(base_); }

// Owner: the loop. Tasks are moved out under the lock and run without it.
void EventLoop::on_posted(int, short, void* self) noexcept {
  auto* loop = static_cast<EventLoop*>(self);
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(loop->posted_mutex_);
    tasks.swap(loop->posted_);
  }
  for (auto& task : tasks) {
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("posted task failed: {}", e.what());
    }
  }
}

// Owner: the loop. Destructors may defer more objects; those wait for the next round.
void EventLoop::on_deferred_delete(int, short, void* self) noexcept {
  auto* loop = static_cast<EventLoop*>(self);
  std::vector<std::unique_ptr<Deletable>> dead;
  dead.swap(loop->graveyard_);
  dead.clear();
}

}  // namespace mcpgate::core
