// Tests for the Redis token-store backend, against a real redis-server child on a free loopback
// port and a real event loop on its own thread.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/event_loop.h"
#include "credentials/store_backend.h"
#include "loop_thread.h"

extern char** environ;

namespace {

using mcpgate::config::StoreBackendType;
using mcpgate::config::TokenStoreConfig;
using mcpgate::core::EventLoop;
using mcpgate::credentials::StoreBackend;
using mcpgate::credentials::StoreBackendPtr;
using mcpgate::credentials::StoreStatus;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kAnswerWait = 8s;  // far above the backend's own 2 s timeouts

std::string find_redis_server() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(std::string("/usr/bin:/usr/sbin:") + (path != nullptr ? path : ""));
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/redis-server";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// A port nothing listens on right now: bind 127.0.0.1:0 and read what the kernel chose.
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  REQUIRE(ok);
  return ntohs(addr.sin_port);
}

bool accepts_connections(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One redis-server child process; killed (and reaped) by stop() and by the destructor, always.
class RedisServer {
 public:
  RedisServer(uint16_t port, std::vector<std::string> extra_args) : port_(port), extra_args_(std::move(extra_args)) {
    binary_ = find_redis_server();
    REQUIRE_MESSAGE(!binary_.empty(),
                    "redis-server is not installed (Debian package redis-server; scripts/test installs it)");
    log_path_ = "/tmp/mcpgate-redis-test-" + std::to_string(::getpid()) + "-" + std::to_string(port_) + ".log";
    start();
  }
  ~RedisServer() {
    stop();
    ::unlink(log_path_.c_str());
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }

  // Spawns the server and waits until it accepts connections.
  void start() {
    REQUIRE(pid_ <= 0);
    std::vector<std::string> args = {binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--daemonize", "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int rc = ::posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << binary_ << ": " << std::strerror(rc));

    const auto deadline = Clock::now() + 10s;
    while (!accepts_connections(port_)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("redis-server exited at start; its output:\n" << read_file(log_path_));
      }
      if (Clock::now() > deadline) {
        stop();
        FAIL("redis-server did not accept connections on port " << port_ << " within 10 s");
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  // Kills the server at once (SIGKILL: no goodbye on its connections beyond the kernel's).
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // A stalled server: connections stay open, nothing is answered.
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  uint16_t port_;
  std::vector<std::string> extra_args_;
  std::string binary_;
  std::string log_path_;
  pid_t pid_ = -1;
};

using mcpgate::testing::LoopThread;

struct Answer {
  StoreStatus status = StoreStatus::Unavailable;
  std::string value;
  Clock::duration took{};
  bool inside_call = false;  // the callback ran before the starting call returned (forbidden)
};

TokenStoreConfig redis_config(uint16_t port, unsigned db = 0, std::string password = {}) {
  TokenStoreConfig config;
  config.backend = StoreBackendType::Redis;
  config.redis_host = "127.0.0.1";
  config.redis_port = port;
  config.redis_db = db;
  config.redis_password = std::move(password);
  return config;
}

// A redis-server child, a loop thread, and backends made and destroyed on that loop.
class RedisFixture {
 public:
  explicit RedisFixture(std::vector<std::string> server_args = {}) : server_(free_port(), std::move(server_args)) {
    ::signal(SIGPIPE, SIG_IGN);  // as main() does: a write to a dropped connection must not kill us
  }
  ~RedisFixture() {
    loop_.call([this] { backends_.clear(); });
  }

  RedisServer& server() { return server_; }
  LoopThread& loop() { return loop_; }

  // Makes a backend on the loop thread; the fixture owns it.
  StoreBackend* make_backend(const TokenStoreConfig& config) {
    StoreBackend* made = nullptr;
    loop_.call([&] {
      backends_.push_back(mcpgate::credentials::make_store_backend(config, loop_.loop(), nullptr));
      made = backends_.back().get();
    });
    return made;
  }
  StoreBackend* make_backend() { return make_backend(redis_config(server_.port())); }
  // Destroys a backend on the loop thread, as a worker's teardown does.
  void destroy(StoreBackend* backend) {
    loop_.call([&] { release(backend).reset(); });
  }
  // Hands a backend's ownership back; only on the loop thread.
  StoreBackendPtr release(StoreBackend* backend) {
    StoreBackendPtr owned;
    for (auto& b : backends_)
      if (b.get() == backend) owned = std::move(b);
    std::erase(backends_, nullptr);
    return owned;
  }

  Answer value_op(StoreBackend* backend, std::function<void(StoreBackend&, StoreBackend::ValueCallback)> start) {
    auto promise = std::make_shared<std::promise<Answer>>();
    auto future = promise->get_future();
    loop_.loop().post([backend, start = std::move(start), promise] {
      const auto started = Clock::now();
      auto inside = std::make_shared<bool>(true);
      start(*backend, [promise, started, inside](StoreStatus status, std::string value) {
        promise->set_value({status, std::move(value), Clock::now() - started, *inside});
      });
      *inside = false;
    });
    REQUIRE_MESSAGE(future.wait_for(kAnswerWait) == std::future_status::ready, "the backend never answered");
    Answer answer = future.get();
    CHECK_FALSE(answer.inside_call);
    return answer;
  }
  Answer status_op(StoreBackend* backend, std::function<void(StoreBackend&, StoreBackend::StatusCallback)> start) {
    return value_op(backend, [start = std::move(start)](StoreBackend& b, StoreBackend::ValueCallback done) {
      start(b, [done = std::move(done)](StoreStatus status) { done(status, {}); });
    });
  }

  Answer get(StoreBackend* b, const std::string& key) {
    return value_op(b, [key](StoreBackend& s, auto done) { s.get(key, std::move(done)); });
  }
  Answer take(StoreBackend* b, const std::string& key) {
    return value_op(b, [key](StoreBackend& s, auto done) { s.take(key, std::move(done)); });
  }
  StoreStatus set(StoreBackend* b, const std::string& key, const std::string& value, int64_t ttl_ms) {
    return status_op(b, [=](StoreBackend& s, auto done) { s.set(key, value, ttl_ms, std::move(done)); }).status;
  }
  StoreStatus add(StoreBackend* b, const std::string& key, const std::string& value, int64_t ttl_ms) {
    return status_op(b, [=](StoreBackend& s, auto done) { s.add(key, value, ttl_ms, std::move(done)); }).status;
  }
  StoreStatus remove(StoreBackend* b, const std::string& key) {
    return status_op(b, [=](StoreBackend& s, auto done) { s.remove(key, std::move(done)); }).status;
  }
  StoreStatus remove_if(StoreBackend* b, const std::string& key, const std::string& value) {
    return status_op(b, [=](StoreBackend& s, auto done) { s.remove_if(key, value, std::move(done)); }).status;
  }

  // take_tokens' answer as "allowed/retry_after_ms/limited" (Ok) or "" (anything else).
  std::string take_tokens(StoreBackend* b, std::vector<mcpgate::credentials::BucketTake> buckets) {
    return value_op(b, [buckets](StoreBackend& s, StoreBackend::ValueCallback done) {
             s.take_tokens(buckets, [done](StoreStatus status, mcpgate::credentials::BucketVerdict v) {
               done(status, status != StoreStatus::Ok ? "" : std::to_string(v.allowed) + "/" + std::to_string(v.retry_after_ms) + "/" + std::to_string(v.limited));
             });
           }).value;
  }

  // Sets a key every 50 ms until it answers Ok; returns how long that took, or nothing.
  std::optional<Clock::duration> wait_until_writable(StoreBackend* b, Clock::duration limit) {
    const auto started = Clock::now();
    while (Clock::now() - started < limit) {
      if (set(b, "probe", "p", 0) == StoreStatus::Ok) return Clock::now() - started;
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

 private:
  RedisServer server_;
  LoopThread loop_;
  std::vector<StoreBackendPtr> backends_;  // loop thread only (made and cleared through call())
};

}  // namespace

TEST_CASE("credentials: redis backend round-trips values, misses and expiries") {
  RedisFixture fx;
  StoreBackend* redis = fx.make_backend();

  using namespace std::string_literals;
  const std::string sealed = "v1.\0\xff\xfe sealed bytes"s;  // values are opaque bytes, NULs included
  CHECK(fx.set(redis, "mcpgate:test:a", sealed, 0) == StoreStatus::Ok);
  const Answer got = fx.get(redis, "mcpgate:test:a");
  CHECK(got.status == StoreStatus::Ok);
  CHECK(got.value == sealed);

  CHECK(fx.get(redis, "mcpgate:test:missing").status == StoreStatus::NotFound);

  CHECK(fx.set(redis, "mcpgate:test:a", "second", 0) == StoreStatus::Ok);
  CHECK(fx.get(redis, "mcpgate:test:a").value == "second");

  CHECK(fx.set(redis, "mcpgate:test:short", "soon gone", 200) == StoreStatus::Ok);
  CHECK(fx.get(redis, "mcpgate:test:short").status == StoreStatus::Ok);
  std::this_thread::sleep_for(450ms);
  CHECK(fx.get(redis, "mcpgate:test:short").status == StoreStatus::NotFound);
  CHECK(fx.get(redis, "mcpgate:test:a").status == StoreStatus::Ok);  // ttl 0: no expiry

  CHECK(fx.remove(redis, "mcpgate:test:a") == StoreStatus::Ok);
  CHECK(fx.get(redis, "mcpgate:test:a").status == StoreStatus::NotFound);
  CHECK(fx.remove(redis, "mcpgate:test:a") == StoreStatus::Ok);  // Ok whether or not it existed
}

TEST_CASE("credentials: redis backend resolves a host name on the loop; an unknown name is Unavailable") {
  RedisFixture fx;
  TokenStoreConfig by_name = redis_config(fx.server().port());
  by_name.redis_host = "localhost";  // /etc/hosts: resolved by libevent's evdns, never a blocking getaddrinfo
  StoreBackend* redis = fx.make_backend(by_name);
  const auto writable_after = fx.wait_until_writable(redis, 10s);
  REQUIRE_MESSAGE(writable_after.has_value(), "no connection through a resolved name");
  CHECK(fx.set(redis, "named", "v", 0) == StoreStatus::Ok);
  CHECK(fx.get(redis, "named").value == "v");

  TokenStoreConfig unknown = redis_config(fx.server().port());
  unknown.redis_host = "no-such-host.invalid";
  StoreBackend* nowhere = fx.make_backend(unknown);
  const Answer answer = fx.get(nowhere, "named");
  CHECK(answer.status == StoreStatus::Unavailable);
  fx.destroy(nowhere);  // with a resolution possibly in flight
}

TEST_CASE("credentials: redis backend add, remove_if and take") {
  RedisFixture fx;
  StoreBackend* redis = fx.make_backend();

  CHECK(fx.add(redis, "lock", "owner-a", 5000) == StoreStatus::Ok);
  CHECK(fx.add(redis, "lock", "owner-b", 5000) == StoreStatus::Conflict);
  CHECK(fx.get(redis, "lock").value == "owner-a");

  CHECK(fx.remove_if(redis, "lock", "owner-b") == StoreStatus::NotFound);
  CHECK(fx.get(redis, "lock").value == "owner-a");
  CHECK(fx.remove_if(redis, "lock", "owner-a") == StoreStatus::Ok);
  CHECK(fx.get(redis, "lock").status == StoreStatus::NotFound);
  CHECK(fx.remove_if(redis, "lock", "owner-a") == StoreStatus::NotFound);
  CHECK(fx.add(redis, "lock", "owner-b", 5000) == StoreStatus::Ok);

  // A used-once marker whose ttl ran out may be added again.
  CHECK(fx.add(redis, "used", "1", 200) == StoreStatus::Ok);
  CHECK(fx.add(redis, "used", "1", 200) == StoreStatus::Conflict);
  std::this_thread::sleep_for(450ms);
  CHECK(fx.add(redis, "used", "1", 200) == StoreStatus::Ok);

  CHECK(fx.set(redis, "record", "single use", 5000) == StoreStatus::Ok);
  const Answer taken = fx.take(redis, "record");
  CHECK(taken.status == StoreStatus::Ok);
  CHECK(taken.value == "single use");
  CHECK(fx.take(redis, "record").status == StoreStatus::NotFound);
  CHECK(fx.get(redis, "record").status == StoreStatus::NotFound);

  // The token store releases its lock without a callback.
  fx.loop().call([redis] { redis->remove_if("lock", "owner-b", nullptr); });
  CHECK(fx.get(redis, "lock").status == StoreStatus::NotFound);
}

TEST_CASE("credentials: redis backend authenticates and selects its database first") {
  RedisFixture fx({"--requirepass", "s3cret-pass"});
  StoreBackend* db3 = fx.make_backend(redis_config(fx.server().port(), 3, "s3cret-pass"));
  // Issued at once: hiredis queues it while connecting, behind AUTH and SELECT.
  CHECK(fx.set(db3, "k", "in db 3", 0) == StoreStatus::Ok);
  CHECK(fx.get(db3, "k").value == "in db 3");

  StoreBackend* db0 = fx.make_backend(redis_config(fx.server().port(), 0, "s3cret-pass"));
  CHECK(fx.get(db0, "k").status == StoreStatus::NotFound);

  StoreBackend* wrong = fx.make_backend(redis_config(fx.server().port(), 3, "wrong"));
  CHECK(fx.get(wrong, "k").status == StoreStatus::Unavailable);
  CHECK(fx.get(wrong, "k").status == StoreStatus::Unavailable);
  fx.destroy(wrong);
}

TEST_CASE("credentials: redis backend answers Unavailable while redis is down, then reconnects") {
  RedisFixture fx;
  StoreBackend* redis = fx.make_backend();
  CHECK(fx.set(redis, "before", "v", 0) == StoreStatus::Ok);

  fx.server().stop();
  for (int i = 0; i < 5; ++i) {
    const Answer answer = fx.get(redis, "before");
    INFO("attempt " << i << " answered " << mcpgate::credentials::status_name(answer.status));
    CHECK(answer.status == StoreStatus::Unavailable);
    CHECK(answer.took < 1s);  // at once, not after the operation timeout
    CHECK(fx.set(redis, "during", "v", 0) == StoreStatus::Unavailable);
    std::this_thread::sleep_for(150ms);
  }

  fx.server().start();
  const auto reconnected_after = fx.wait_until_writable(redis, 10s);
  REQUIRE_MESSAGE(reconnected_after.has_value(), "the backend did not reconnect within 10 s");
  CHECK(*reconnected_after < 4s);  // backoff is capped at 2 s
  CHECK(fx.get(redis, "probe").value == "p");
}

TEST_CASE("credentials: redis backend times out on a stalled redis, then recovers") {
  RedisFixture fx;
  StoreBackend* redis = fx.make_backend();
  CHECK(fx.set(redis, "k", "v", 0) == StoreStatus::Ok);

  fx.server().pause();
  const Answer stalled = fx.get(redis, "k");
  CHECK(stalled.status == StoreStatus::Unavailable);
  CHECK(stalled.took >= 1500ms);
  CHECK(stalled.took < 4s);

  fx.server().resume();
  const auto recovered_after = fx.wait_until_writable(redis, 10s);
  REQUIRE_MESSAGE(recovered_after.has_value(), "the backend did not recover within 10 s");
  CHECK(fx.get(redis, "k").value == "v");
}

TEST_CASE("credentials: redis backend destroyed with operations in flight answers them Unavailable") {
  RedisFixture fx;
  StoreBackend* redis = fx.make_backend();
  CHECK(fx.set(redis, "k", "v", 0) == StoreStatus::Ok);

  // Started and destroyed in one loop task: the commands are still unanswered (not even written).
  auto answers = std::make_shared<std::vector<StoreStatus>>();  // loop thread only until all_answered
  auto all_answered = std::make_shared<std::promise<void>>();
  fx.loop().call([&fx, redis, answers, all_answered] {
    StoreBackendPtr owned = fx.release(redis);
    for (int i = 0; i < 3; ++i) {
      owned->get("k", [answers, all_answered](StoreStatus status, std::string) {
        answers->push_back(status);
        if (answers->size() == 3) all_answered->set_value();
      });
    }
    owned.reset();
    CHECK(answers->empty());  // answered later, from the loop, not inside the destructor
  });
  REQUIRE(all_answered->get_future().wait_for(kAnswerWait) == std::future_status::ready);
  for (StoreStatus status : *answers) CHECK(status == StoreStatus::Unavailable);

  // Destroyed while redis is down and a reconnect timer is pending.
  StoreBackend* second = fx.make_backend();
  CHECK(fx.get(second, "k").status == StoreStatus::Ok);
  fx.server().stop();
  CHECK(fx.get(second, "k").status == StoreStatus::Unavailable);
  fx.destroy(second);
}

TEST_CASE("credentials: redis backend token buckets are shared by backends and taken all-or-none") {
  RedisFixture fx;
  StoreBackend* replica_a = fx.make_backend();
  StoreBackend* replica_b = fx.make_backend();
  REQUIRE(fx.wait_until_writable(replica_a, 10s).has_value());
  REQUIRE(fx.wait_until_writable(replica_b, 10s).has_value());
  CHECK(replica_a->shares_buckets());
  using mcpgate::credentials::BucketTake;
  const BucketTake alice{"rl:alice", 2, 60000, 1};  // 2 at once, then one a minute
  const BucketTake route{"rl:route", 10, 60000, 1};
  CHECK(fx.take_tokens(replica_a, {alice, route}) == "1/0/0");
  CHECK(fx.take_tokens(replica_b, {alice, route}) == "1/0/0");  // the other replica's bucket is the same
  const std::string refused = fx.take_tokens(replica_a, {route, alice});
  CHECK(refused.rfind("0/", 0) == 0);
  CHECK(refused.substr(refused.rfind('/')) == "/1");  // the second bucket (alice) is the empty one
  const long wait_ms = std::stol(refused.substr(2, refused.rfind('/') - 2));
  CHECK(wait_ms > 55000);
  CHECK(wait_ms <= 60000);
  // The refused take left the route bucket alone: 8 of 10 remain.
  for (int i = 0; i < 8; ++i) CHECK(fx.take_tokens(replica_b, {route}) == "1/0/0");
  CHECK(fx.take_tokens(replica_b, {route}).rfind("0/", 0) == 0);
  // A bucket expires from Redis once it would be full again.
  CHECK(fx.take_tokens(replica_a, {BucketTake{"rl:short", 1, 100, 1}}) == "1/0/0");
  std::this_thread::sleep_for(1300ms);
  CHECK(fx.get(replica_a, "rl:short").status == StoreStatus::NotFound);
}
