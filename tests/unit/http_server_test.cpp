// Component tests of the HTTP server side: a real Listener and its Connections on a loop
// thread, driven by a blocking client socket on 127.0.0.1.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"
#include "loop_thread.h"

using namespace mcpgate;

namespace {

// No request in these tests is ever complete; should one be, it is left unanswered.
struct Unanswered : http::Exchange {
  void start() override {}
  void on_client_closed() override {}
};

// The server under test: one Listener and its ConnectionSet, made and destroyed on the loop.
class TestServer {
 public:
  explicit TestServer(http::ConnectionSettings settings) {
    loop_.call([&] {
      connections_ = std::make_unique<http::ConnectionSet>(loop_.loop(), count_);
      listener_ = std::make_unique<http::Listener>(
          loop_.loop(), *connections_, http::Listener::Options{"127.0.0.1", 0, 0, false}, nullptr,
          [settings] { return settings; },
          [](http::Connection&) -> std::unique_ptr<http::Exchange> { return std::make_unique<Unanswered>(); },
          count_);
      port_ = listener_->bound_port();
    });
  }
  ~TestServer() {
    loop_.call([&] {
      listener_.reset();
      connections_.reset();
    });
  }
  uint16_t port() const { return port_; }
  int64_t connections() const { return count_.load(); }

 private:
  testing::LoopThread loop_;
  std::atomic<int64_t> count_{0};
  std::unique_ptr<http::ConnectionSet> connections_;
  std::unique_ptr<http::Listener> listener_;
  uint16_t port_ = 0;
};

// A connected client socket (blocking, 5 s receive timeout); -1 when socket() fails.
int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

// Everything the server sends until it closes (or the receive timeout).
std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

int highest_descriptor() {
  int highest = 2;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir)) highest = std::max(highest, std::atoi(entry->d_name));
    closedir(dir);
  }
  return highest;
}

std::atomic<int> libevent_warnings{0};

}  // namespace

// Regression: the request timer answered a JSON POST whose body never came with the plain
// error shape, unlike every other error for such a request (README: "a JSON POST whose body
// was not read" gets a JSON-RPC error with id null).
TEST_CASE("http server: a JSON POST whose body stalls gets a JSON-RPC shaped 408") {
  TestServer server({.request_timeout_ms = 100});
  const int fd = connect_to(server.port());
  const std::string head = "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{";
  REQUIRE(send(fd, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()));
  const std::string response = read_all(fd);
  close(fd);
  CHECK(response.rfind("HTTP/1.1 408 ", 0) == 0);
  CHECK(response.find("Connection: close\r\n") != std::string::npos);
  CHECK(response.find(R"("jsonrpc":"2.0","id":null)") != std::string::npos);
  CHECK(response.find(R"("reason":"request_timeout")") != std::string::npos);
}

// Regression: with no descriptor left, accept() failed, the connection stayed queued and the
// listener woke again at once: a busy loop writing libevent's "Error from accept() call" warning
// (megabytes a second). Accepting now pauses and resumes once descriptors are free.
TEST_CASE("http server: out of descriptors, accepting pauses instead of spinning, then resumes") {
  TestServer server({.idle_timeout_ms = 10000});
  event_set_log_callback([](int severity, const char*) {
    if (severity >= EVENT_LOG_WARN) ++libevent_warnings;
  });
  libevent_warnings = 0;
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(highest_descriptor() + 8);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  // Every descriptor number taken but one; the client's socket takes that, so the server's
  // accept() has none.
  std::vector<int> fillers;
  for (int i = 0; i < 4096; ++i) {
    const int filler = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (filler < 0) break;
    fillers.push_back(filler);
  }
  REQUIRE(!fillers.empty());
  close(fillers.back());
  fillers.pop_back();
  const int fd = connect_to(server.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int filler : fillers) close(filler);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  const int warnings = libevent_warnings.load();
  event_set_log_callback(nullptr);
  CHECK(fd >= 0);
  CHECK(warnings == 0);
  CHECK(server.connections() == 0);
  // Descriptors are free again: the queued connection is accepted.
  for (int i = 0; i < 100 && server.connections() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(server.connections() == 1);
  close(fd);
}
