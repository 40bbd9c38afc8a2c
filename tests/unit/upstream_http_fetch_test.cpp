// Tests for the gateway's own HTTP calls (metadata, JWKS, userinfo, introspection, token
// endpoints): the real loop and real libcurl against a scripted server on 127.0.0.1:0.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "loop_thread.h"
#include "upstream/curl_multi.h"
#include "upstream/http_fetch.h"

namespace {

using mcpgate::testing::LoopThread;
using mcpgate::upstream::CurlMulti;
using mcpgate::upstream::Fetcher;
using mcpgate::upstream::FetchResult;
using mcpgate::upstream::TransferError;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Accepts one connection, reads the request, writes `reply`, then holds the connection open
// (without reading or writing) until destroyed: a server that stalls after what it sent.
class StallingServer {
 public:
  explicit StallingServer(std::string reply) : reply_(std::move(reply)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listen_fd_, 4) == 0);
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~StallingServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(listen_fd_);
  }
  StallingServer(const StallingServer&) = delete;
  StallingServer& operator=(const StallingServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/jwks"; }

 private:
  void serve() {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    char buffer[4096];
    (void)::recv(fd, buffer, sizeof buffer, 0);  // the request head (small, one segment on loopback)
    (void)::send(fd, reply_.data(), reply_.size(), MSG_NOSIGNAL);
    for (int i = 0; i < 1000 && !stop_; ++i) std::this_thread::sleep_for(10ms);  // at most 10 s
    ::close(fd);
  }

  std::string reply_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Fetched {
  TransferError error = TransferError::None;
  int status = 0;
  std::string body;
  Clock::duration took{};
};

// Runs one GET with `timeout_ms` on a fresh loop; waits (bounded) for its callback.
Fetched fetch_once(const std::string& url, uint32_t timeout_ms) {
  LoopThread thread;
  std::unique_ptr<CurlMulti> curl;
  std::unique_ptr<Fetcher> fetcher;
  auto done = std::make_shared<std::promise<Fetched>>();
  auto answer = done->get_future();
  const auto started = Clock::now();
  thread.call([&] {
    curl = std::make_unique<CurlMulti>(thread.loop().base());
    fetcher = std::make_unique<Fetcher>(thread.loop(), *curl);
    fetcher->fetch("GET", url, {}, {}, timeout_ms, [done, started](FetchResult& result) {
      done->set_value({result.error, result.status, result.body, Clock::now() - started});
    });
  });
  const bool answered = answer.wait_for(10s) == std::future_status::ready;
  thread.call([&] {
    fetcher.reset();  // cancels what is still in flight
    curl.reset();
  });
  REQUIRE_MESSAGE(answered, "the fetch never called back");
  return answer.get();
}

}  // namespace

TEST_CASE("http fetch: a response whose body stalls after the head fails at the timeout") {
  // Regression: the timeout covered only the wait for the head, so a JWKS (or token endpoint)
  // that sent its head and then stalled held the fetch, and every request parked on it, forever.
  StallingServer server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"keys\":[");
  const Fetched fetched = fetch_once(server.url(), 300);
  CHECK(fetched.error == TransferError::Timeout);
  CHECK(fetched.took < 5s);
}

TEST_CASE("http fetch: a complete response within the timeout is delivered") {
  StallingServer server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"keys\":[]}");
  const Fetched fetched = fetch_once(server.url(), 2000);
  CHECK(fetched.error == TransferError::None);
  CHECK(fetched.status == 200);
  CHECK(fetched.body == "{\"keys\":[]}");
}
