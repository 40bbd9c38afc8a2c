// One libevent loop on one thread, with thread-safe posting and deferred deletion.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct event;
struct event_base;
struct evdns_base;

namespace mcpgate::core {

// Anything whose destruction must wait until no callback is on the stack.
class Deletable {
 public:
  virtual ~Deletable() = default;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  event_base* base() const { return base_; }
  // The loop's DNS resolver (libevent evdns; 2 s timeout, 2 attempts), made on first use and
  // freed with the loop: a lookup its owner cancelled still ends in a later callback that uses
  // the resolver, so no owner may free it. Nullptr if it cannot be made.
  evdns_base* dns();

  // Runs `fn` on this loop's thread soon. Safe from any thread.
  void post(std::function<void()> fn);
  // Destroys `object` from the top of the loop, never inside the caller's callback.
  void defer_delete(std::unique_ptr<Deletable> object);
  // Destroys what defer_delete holds now; for teardown after run() returned.
  void drain_deferred();
  // Runs until stop(); returns on the loop's own thread.
  void run();
  // Asks the loop to return from run() once the current callbacks finish. Safe from any thread.
  void stop();

 private:
  static void on_posted(int, short, void* self) noexcept;
  static void on_deferred_delete(int, short, void* self) noexcept;

  event_base* base_;
  event* posted_event_;
  event* deferred_delete_event_;
  evdns_base* dns_ = nullptr;
  std::mutex posted_mutex_;  // guards posted_ only; never held while a task runs
  std::vector<std::function<void()>> posted_;
  std::vector<std::unique_ptr<Deletable>> graveyard_;  // loop thread only
};

// Calls evthread_use_pthreads() once; must run before any EventLoop is built.
void enable_libevent_threads();

}  // namespace mcpgate::core
