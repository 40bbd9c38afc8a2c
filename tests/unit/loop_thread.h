// Test support: a core::EventLoop running on its own thread, for tests of code whose
// callbacks are posted to a loop (token store backends).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "core/event_loop.h"

namespace mcpgate::testing {

class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.run(); }) {}
  ~LoopThread() {
    loop_.post([this] { loop_.stop(); });  // posted, so a stop before run() started is not lost
    thread_.join();
    loop_.drain_deferred();
  }
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;
  core::EventLoop& loop() { return loop_; }

  // Runs `fn` on the loop thread and waits (at most `limit`) for it to return.
  void call(std::function<void()> fn, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    loop_.post([fn = std::move(fn), done] {
      fn();
      done->set_value();
    });
    REQUIRE_MESSAGE(future.wait_for(limit) == std::future_status::ready, "the loop did not run a posted task");
  }

 private:
  // Before the loop: libevent's thread support must be on when a loop is built.
  struct LibeventThreads {
    LibeventThreads() { core::enable_libevent_threads(); }
  } threads_;
  core::EventLoop loop_;
  std::thread thread_;
};

}  // namespace mcpgate::testing
