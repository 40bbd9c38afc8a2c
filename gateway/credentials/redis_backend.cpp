// The Redis backend: one hiredis async connection per loop, driven by the loop's event_base
// (hiredis's libevent adapter). AUTH and SELECT are the first commands of every connection; a
// lost connection is re-opened with backoff. Every answer is posted to the loop, never given
// inside the call that asked nor inside a hiredis callback: Unavailable while disconnected, on a
// timeout, and on any error reply.
//
// hiredis here is Debian 12's 0.14.1: it has no redisAsyncSetTimeout and no connect timeout, so
// both are libevent timers of ours.
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <vector>
#include <stdexcept>
#include <string_view>

#include "credentials/store_backend.h"
#include "observability/log.h"

namespace mcpgate::credentials {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr Millis kOpTimeout{2000};       // an operation unanswered this long answers Unavailable
constexpr Millis kConnectTimeout{2000};  // TCP connect plus AUTH/SELECT
constexpr Millis kFirstBackoff{100};
constexpr Millis kMaxBackoff{2000};
constexpr std::chrono::seconds kStillDownLogEvery{60};
constexpr std::chrono::seconds kErrorReplyLogEvery{10};

// Deletes KEYS[1] only while it holds ARGV[1]: 1 deleted, 0 not (absent or another value).
constexpr std::string_view kRemoveIfScript =
    "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

// Token buckets (BucketTake): KEYS are the buckets, ARGV three per bucket (capacity, refill
// interval in ms, cost). Each bucket is a hash {tokens, at (ms)}, absent = full. Reads all, then
// takes from all or none, on the server's clock (TIME) so replicas' clocks do not matter.
// Answers {1, 0, 0} or {0, wait_ms, index of the first empty bucket}.
constexpr std::string_view kTakeTokensScript = R"lua(
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local left = {}
local wait = 0
local limited = -1
for i, key in ipairs(KEYS) do
  local capacity, interval, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or at == nil then tokens, at = capacity, now end
  tokens = math.min(capacity, tokens + math.max(0, now - at) / interval)
  left[i] = tokens - cost
  if left[i] < 0 then
    wait = math.max(wait, math.ceil(-left[i] * interval))
    if limited < 0 then limited = i - 1 end
  end
end
if limited >= 0 then return {0, wait, limited} end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', tostring(left[i]), 'at', now)
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[3*i-2]) * tonumber(ARGV[3*i-1])) + 1000)
end
return {1, 0, 0}
)lua";

struct EventDeleter {
  void operator()(event* ev) const noexcept { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

timeval to_timeval(Millis ms) {
  return {static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

enum class Command { Get, Take, Set, Add, Remove, RemoveIf, TakeTokens };

const char* command_name(Command command) {
  switch (command) {
    case Command::Get: return "GET";
    case Command::Take: return "GETDEL";
    case Command::Set: return "SET";
    case Command::Add: return "SET NX";
    case Command::Remove: return "DEL";
    case Command::RemoveIf: return "EVAL remove_if";
    case Command::TakeTokens: return "EVAL take_tokens";
  }
  return "?";
}

class RedisBackend;

// Shared by the backend and every record it hands to hiredis. The backend's destructor clears
// `backend`, so a record never reaches a destroyed backend.
struct Link {
  RedisBackend* backend = nullptr;
};
using LinkPtr = std::shared_ptr<Link>;

// One store operation in flight. Owner: us until redisAsyncCommandArgv accepts it, then hiredis
// until it calls on_reply (exactly once: with the reply, or with NULL when the context goes
// away), where it is ours again and dies.
struct Op {
  LinkPtr link;
  core::EventLoop* loop = nullptr;
  Command command = Command::Get;
  StoreBackend::ValueCallback value_done;  // Get, Take
  StoreBackend::StatusCallback status_done;  // Set, Add, Remove, RemoveIf
  StoreBackend::BucketCallback bucket_done;  // TakeTokens
  EventPtr timer;  // the per-operation timeout; freed with the Op, never inside its own callback
  bool answered = false;  // timed out already: the late reply is ignored
};
using OpPtr = std::unique_ptr<Op>;

// AUTH or SELECT, sent first on each connection. Ownership as for Op.
struct SetupOp {
  LinkPtr link;
  uint64_t epoch = 0;  // the connection it was sent on
  const char* what = "";
  bool last = false;  // its OK means the connection is ready
};

// Posts the answer to the op's loop, once. Never calls the requester directly, so no requester
// code runs inside a hiredis callback (and none can destroy the backend there).
void answer(Op& op, StoreStatus status, std::string value = {}, BucketVerdict verdict = {}) {
  if (op.answered) return;
  op.answered = true;
  if (op.timer) evtimer_del(op.timer.get());
  if (op.value_done) {
    op.loop->post([done = std::move(op.value_done), status, value = std::move(value)]() mutable {
      done(status, std::move(value));
    });
  } else if (op.status_done) {
    op.loop->post([done = std::move(op.status_done), status] { done(status); });
  } else if (op.bucket_done) {
    op.loop->post([done = std::move(op.bucket_done), status, verdict] { done(status, verdict); });
  }
}

// take_tokens' answer: {allowed, wait_ms, limited index}.
std::optional<BucketVerdict> verdict_of(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3) return std::nullopt;
  for (std::size_t i = 0; i < 3; ++i)
    if (reply.element[i]->type != REDIS_REPLY_INTEGER) return std::nullopt;
  return BucketVerdict{reply.element[0]->integer == 1, reply.element[1]->integer,
                       static_cast<std::size_t>(std::max<long long>(0, reply.element[2]->integer))};
}

// Maps a non-error reply to the operation's answer.
StoreStatus status_of(Command command, const redisReply& reply) {
  const bool nil = reply.type == REDIS_REPLY_NIL;
  switch (command) {
    case Command::Get:
    case Command::Take:
      if (nil) return StoreStatus::NotFound;
      return reply.type == REDIS_REPLY_STRING ? StoreStatus::Ok : StoreStatus::Unavailable;
    case Command::Set:
      return reply.type == REDIS_REPLY_STATUS ? StoreStatus::Ok : StoreStatus::Unavailable;
    case Command::Add:
      if (nil) return StoreStatus::Conflict;
      return reply.type == REDIS_REPLY_STATUS ? StoreStatus::Ok : StoreStatus::Unavailable;
    case Command::Remove:
      return reply.type == REDIS_REPLY_INTEGER ? StoreStatus::Ok : StoreStatus::Unavailable;
    case Command::RemoveIf:
      if (reply.type != REDIS_REPLY_INTEGER) return StoreStatus::Unavailable;
      return reply.integer > 0 ? StoreStatus::Ok : StoreStatus::NotFound;
    case Command::TakeTokens:
      return verdict_of(reply) ? StoreStatus::Ok : StoreStatus::Unavailable;
  }
  return StoreStatus::Unavailable;
}

class RedisBackend : public StoreBackend {
 public:
  RedisBackend(const config::TokenStoreConfig& config, core::EventLoop& loop);
  ~RedisBackend() override;
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;

  void get(const std::string& key, ValueCallback done) override {
    submit(Command::Get, {"GET", key}, std::move(done), nullptr);
  }
  void take(const std::string& key, ValueCallback done) override {
    submit(Command::Take, {"GETDEL", key}, std::move(done), nullptr);
  }
  void set(const std::string& key, const std::string& value, int64_t ttl_ms, StatusCallback done) override {
    if (ttl_ms > 0) {
      const std::string ttl = std::to_string(ttl_ms);
      submit(Command::Set, {"SET", key, value, "PX", ttl}, nullptr, std::move(done));
    } else {
      submit(Command::Set, {"SET", key, value}, nullptr, std::move(done));
    }
  }
  void add(const std::string& key, const std::string& value, int64_t ttl_ms, StatusCallback done) override {
    if (ttl_ms > 0) {
      const std::string ttl = std::to_string(ttl_ms);
      submit(Command::Add, {"SET", key, value, "NX", "PX", ttl}, nullptr, std::move(done));
    } else {
      submit(Command::Add, {"SET", key, value, "NX"}, nullptr, std::move(done));
    }
  }
  void remove(const std::string& key, StatusCallback done) override {
    submit(Command::Remove, {"DEL", key}, nullptr, std::move(done));
  }
  void remove_if(const std::string& key, const std::string& value, StatusCallback done) override {
    submit(Command::RemoveIf, {"EVAL", kRemoveIfScript, "1", key, value}, nullptr, std::move(done));
  }
  bool shares_buckets() const override { return true; }
  void take_tokens(const std::vector<BucketTake>& buckets, BucketCallback done) override {
    std::vector<std::string> numbers;  // ARGV texts, kept alive for the views below
    numbers.reserve(buckets.size() * 3 + 1);
    numbers.push_back(std::to_string(buckets.size()));
    for (const auto& bucket : buckets) {
      numbers.push_back(std::to_string(bucket.capacity));
      // Shortest exact form, independent of the locale (std::to_string follows it).
      char interval[32];
      const auto written = std::to_chars(interval, interval + sizeof interval, bucket.refill_interval_ms);
      numbers.emplace_back(interval, written.ptr);
      numbers.push_back(std::to_string(bucket.cost));
    }
    std::vector<std::string_view> args{"EVAL", kTakeTokensScript, numbers[0]};
    for (const auto& bucket : buckets) args.push_back(bucket.key);
    for (std::size_t i = 1; i < numbers.size(); ++i) args.push_back(numbers[i]);
    submit(Command::TakeTokens, args, nullptr, nullptr, std::move(done));
  }

 private:
  // hiredis and libevent entry points; each says who owns what it is handed.
  static void on_connect(const redisAsyncContext* ctx, int status) noexcept;
  static void on_disconnect(const redisAsyncContext* ctx, int status) noexcept;
  static void on_setup_reply(redisAsyncContext* ctx, void* reply, void* privdata) noexcept;
  static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata) noexcept;
  static void on_op_timeout(evutil_socket_t, short, void* arg) noexcept;
  static void on_reconnect_timer(evutil_socket_t, short, void* self) noexcept;
  static void on_connect_timeout(evutil_socket_t, short, void* self) noexcept;
  static void on_drop_timer(evutil_socket_t, short, void* self) noexcept;

  void submit(Command command, const std::vector<std::string_view>& args, ValueCallback value_done,
              StatusCallback status_done, BucketCallback bucket_done = nullptr);
  // Whether an operation may be handed to hiredis now. While a connection is being opened for
  // the first time it is queued behind AUTH/SELECT; during an outage it answers at once.
  // A connection condemned by drop_soon() takes nothing more: a command sent on it now could be
  // answered by the server it gave up on, or lost with it a moment later.
  bool accepting() const { return ctx_ != nullptr && !dropping_ && (connected_ || !in_outage_); }
  bool send(redisAsyncContext* ctx, redisCallbackFn* fn, void* privdata, const std::vector<std::string_view>& args);

  void connect();
  void connect_to(const std::string& address);  // an IP literal
  static bool is_ip_literal(const std::string& host);
  static void on_resolved(int result, evutil_addrinfo* addresses, void* self) noexcept;
  void send_setup(const char* what, std::initializer_list<std::string_view> args, bool last);
  // Frees the context (pending operations answer Unavailable) and schedules a reconnect. Never
  // from inside a hiredis callback: those call drop_soon().
  void drop_connection(const std::string& reason);
  void drop_soon(std::string reason);
  // hiredis frees the context itself after these; we only forget it.
  void connect_failed(const std::string& reason);
  void session_ready();
  void schedule_reconnect(const std::string& reason);
  void note_error_reply(Command command, std::string_view error);

  core::EventLoop& loop_;
  const std::string host_;
  const int port_;
  const unsigned db_;
  const std::string username_;
  const std::string password_;  // never logged
  LinkPtr link_;
  // The current connection, or null. hiredis frees it itself after a failed connect or a lost
  // connection (we are told through on_connect/on_disconnect); we free it only from outside
  // hiredis callbacks (timers, the destructor). ctx_->data is `this` while we want its events.
  redisAsyncContext* ctx_ = nullptr;
  evdns_getaddrinfo_request* dns_request_ = nullptr;  // a resolution in flight
  bool connected_ = false;  // TCP up on ctx_
  uint64_t epoch_ = 0;      // counts connections, so a late setup reply cannot act on a newer one
  uint64_t drop_epoch_ = 0;
  std::string drop_reason_;
  bool dropping_ = false;  // drop_soon() condemned the current connection
  EventPtr reconnect_timer_;
  EventPtr connect_timer_;
  EventPtr drop_timer_;  // zero-delay: runs drop_connection at the top of the loop
  Millis backoff_ = kFirstBackoff;
  // Rate-limited logging: the first failure of an outage, a reminder now and then, the recovery.
  bool ever_ready_ = false;
  bool in_outage_ = false;
  unsigned failed_attempts_ = 0;
  Clock::time_point outage_since_;
  Clock::time_point outage_logged_at_;
  Clock::time_point error_reply_logged_at_;
};

RedisBackend::RedisBackend(const config::TokenStoreConfig& config, core::EventLoop& loop)
    : loop_(loop),
      host_(config.redis_host),
      port_(config.redis_port),
      db_(config.redis_db),
      username_(config.redis_username),
      password_(config.redis_password),
      link_(std::make_shared<Link>()),
      reconnect_timer_(evtimer_new(loop.base(), &RedisBackend::on_reconnect_timer, this)),
      connect_timer_(evtimer_new(loop.base(), &RedisBackend::on_connect_timeout, this)),
      drop_timer_(evtimer_new(loop.base(), &RedisBackend::on_drop_timer, this)) {
  if (!reconnect_timer_ || !connect_timer_ || !drop_timer_) throw std::runtime_error("libevent: evtimer_new failed");
  link_->backend = this;
  connect();
}

// Runs on the loop's thread, never inside a hiredis callback (no requester code runs there, see
// answer()), so freeing the context here is allowed. Operations in flight answer Unavailable.
RedisBackend::~RedisBackend() {
  link_->backend = nullptr;
  // on_resolved ignores the cancellation's callback, which comes later (the resolver is the loop's).
  if (dns_request_ != nullptr) evdns_getaddrinfo_cancel(dns_request_);
  dns_request_ = nullptr;
  reconnect_timer_.reset();
  connect_timer_.reset();
  drop_timer_.reset();
  if (ctx_ != nullptr) {
    redisAsyncContext* ctx = ctx_;
    ctx_ = nullptr;
    ctx->data = nullptr;  // its disconnect callback, if any, finds no backend
    redisAsyncFree(ctx);  // runs every pending on_reply with NULL, which frees the records
  }
}

void RedisBackend::connect() {
  ++epoch_;
  dropping_ = false;  // a condemnation was for the connection before
  connected_ = false;
  if (is_ip_literal(host_)) return connect_to(host_);
  // redisAsyncConnect would resolve a name with a blocking getaddrinfo: resolve it on the loop.
  evdns_base* dns = loop_.dns();
  if (dns == nullptr) return connect_failed("cannot start the DNS resolver");
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // May answer before it returns (hosts file, cache); on_resolved then has already run.
  evdns_getaddrinfo_request* request = evdns_getaddrinfo(dns, host_.c_str(), nullptr, &hints, &RedisBackend::on_resolved, this);
  if (request != nullptr) dns_request_ = request;
}

bool RedisBackend::is_ip_literal(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return evutil_inet_pton(AF_INET, host.c_str(), address) == 1 || evutil_inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// Owner: the backend, which cancels the request before it dies (the cancel calls back with
// EVUTIL_EAI_CANCEL, which touches nothing).
void RedisBackend::on_resolved(int result, evutil_addrinfo* addresses, void* arg) noexcept {
  if (result == EVUTIL_EAI_CANCEL) {
    if (addresses != nullptr) evutil_freeaddrinfo(addresses);
    return;
  }
  auto* self = static_cast<RedisBackend*>(arg);
  try {
    self->dns_request_ = nullptr;
    char text[INET6_ADDRSTRLEN] = {0};
    if (result == 0 && addresses != nullptr) {
      const void* address = addresses->ai_family == AF_INET6
                                ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(addresses->ai_addr)->sin6_addr)
                                : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(addresses->ai_addr)->sin_addr);
      evutil_inet_ntop(addresses->ai_family, address, text, sizeof text);
    }
    if (addresses != nullptr) evutil_freeaddrinfo(addresses);
    if (text[0] == '\0') return self->connect_failed(std::string("cannot resolve the Redis host: ") + evutil_gai_strerror(result));
    self->connect_to(text);
  } catch (...) {
    spdlog::error("token store: redis connect failed");
  }
}

void RedisBackend::connect_to(const std::string& address) {
  redisAsyncContext* ctx = redisAsyncConnect(address.c_str(), port_);
  if (ctx == nullptr) return connect_failed("out of memory");
  if (ctx->err != 0) {
    const std::string error = ctx->errstr != nullptr ? ctx->errstr : "connect failed";
    redisAsyncFree(ctx);  // our own context, no callback on the stack
    return connect_failed(error);
  }
  ctx->data = this;
  if (redisLibeventAttach(ctx, loop_.base()) != REDIS_OK) {
    ctx->data = nullptr;
    redisAsyncFree(ctx);
    return connect_failed("cannot attach to the event loop");
  }
  redisAsyncSetConnectCallback(ctx, &RedisBackend::on_connect);
  redisAsyncSetDisconnectCallback(ctx, &RedisBackend::on_disconnect);
  ctx_ = ctx;
  // Queued before anything else can be, so they are the first commands on the wire.
  if (!username_.empty()) {
    send_setup("AUTH", {"AUTH", username_, password_}, false);
  } else if (!password_.empty()) {
    send_setup("AUTH", {"AUTH", password_}, false);
  }
  const std::string db = std::to_string(db_);
  send_setup("SELECT", {"SELECT", db}, true);
  const timeval tv = to_timeval(kConnectTimeout);
  evtimer_add(connect_timer_.get(), &tv);
}

void RedisBackend::send_setup(const char* what, std::initializer_list<std::string_view> args, bool last) {
  auto setup = std::make_unique<SetupOp>(SetupOp{link_, epoch_, what, last});
  if (send(ctx_, &RedisBackend::on_setup_reply, setup.get(), args)) {
    setup.release();  // hiredis owns it until on_setup_reply
  } else {
    drop_soon(std::string("cannot send ") + what);
  }
}

bool RedisBackend::send(redisAsyncContext* ctx, redisCallbackFn* fn, void* privdata,
                        const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return redisAsyncCommandArgv(ctx, fn, privdata, static_cast<int>(argv.size()), argv.data(), lengths.data()) == REDIS_OK;
}

void RedisBackend::submit(Command command, const std::vector<std::string_view>& args, ValueCallback value_done,
                          StatusCallback status_done, BucketCallback bucket_done) {
  auto op = std::make_unique<Op>();
  op->link = link_;
  op->loop = &loop_;
  op->command = command;
  op->value_done = std::move(value_done);
  op->status_done = std::move(status_done);
  op->bucket_done = std::move(bucket_done);
  if (!accepting()) return answer(*op, StoreStatus::Unavailable);
  op->timer.reset(evtimer_new(loop_.base(), &RedisBackend::on_op_timeout, op.get()));
  if (!op->timer || !send(ctx_, &RedisBackend::on_reply, op.get(), args)) return answer(*op, StoreStatus::Unavailable);
  // hiredis queued it without calling back (it never does inside redisAsyncCommand).
  Op* in_flight = op.release();  // hiredis owns it until on_reply
  const timeval tv = to_timeval(kOpTimeout);
  evtimer_add(in_flight->timer.get(), &tv);
}

void RedisBackend::drop_connection(const std::string& reason) {
  dropping_ = false;
  if (ctx_ == nullptr) return;
  redisAsyncContext* ctx = ctx_;
  ctx_ = nullptr;
  connected_ = false;
  ctx->data = nullptr;  // we report this loss ourselves, below
  evtimer_del(connect_timer_.get());
  redisAsyncFree(ctx);  // pending operations answer Unavailable through on_reply(NULL)
  schedule_reconnect(reason);
}

void RedisBackend::drop_soon(std::string reason) {
  if (evtimer_pending(drop_timer_.get(), nullptr) && drop_epoch_ == epoch_) return;  // the first reason is the cause
  drop_epoch_ = epoch_;
  drop_reason_ = std::move(reason);
  dropping_ = true;
  const timeval now{0, 0};
  evtimer_add(drop_timer_.get(), &now);
}

void RedisBackend::connect_failed(const std::string& reason) {
  ctx_ = nullptr;
  connected_ = false;
  evtimer_del(connect_timer_.get());
  schedule_reconnect(reason);
}

void RedisBackend::session_ready() {
  evtimer_del(connect_timer_.get());
  backoff_ = kFirstBackoff;
  if (in_outage_) {
    const auto down_for = std::chrono::duration_cast<Millis>(Clock::now() - outage_since_);
    observability::LogEvent(spdlog::level::info, "token store: redis connection restored")
        .field("host", host_)
        .field("port", static_cast<int64_t>(port_))
        .field("failed_attempts", static_cast<int64_t>(failed_attempts_))
        .field("down_ms", static_cast<int64_t>(down_for.count()))
        .emit();
  } else if (!ever_ready_) {
    observability::LogEvent(spdlog::level::info, "token store: redis connected")
        .field("host", host_)
        .field("port", static_cast<int64_t>(port_))
        .field("db", static_cast<int64_t>(db_))
        .emit();
  }
  ever_ready_ = true;
  in_outage_ = false;
  failed_attempts_ = 0;
}

void RedisBackend::schedule_reconnect(const std::string& reason) {
  const auto now = Clock::now();
  ++failed_attempts_;
  if (!in_outage_) {
    in_outage_ = true;
    outage_since_ = outage_logged_at_ = now;
    observability::LogEvent(spdlog::level::warn, ever_ready_ ? "token store: redis connection lost; reconnecting"
                                                             : "token store: cannot connect to redis; retrying")
        .field("host", host_)
        .field("port", static_cast<int64_t>(port_))
        .field("error", reason)
        .emit();
  } else if (now - outage_logged_at_ >= kStillDownLogEvery) {
    outage_logged_at_ = now;
    observability::LogEvent(spdlog::level::warn, "token store: redis still unavailable")
        .field("host", host_)
        .field("port", static_cast<int64_t>(port_))
        .field("failed_attempts", static_cast<int64_t>(failed_attempts_))
        .field("down_s", static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(now - outage_since_).count()))
        .field("error", reason)
        .emit();
  } else {
    spdlog::debug("token store: redis reconnect attempt {} failed: {}", failed_attempts_, reason);
  }
  const timeval tv = to_timeval(backoff_);
  evtimer_add(reconnect_timer_.get(), &tv);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void RedisBackend::note_error_reply(Command command, std::string_view error) {
  const auto now = Clock::now();
  if (error_reply_logged_at_ != Clock::time_point{} && now - error_reply_logged_at_ < kErrorReplyLogEvery) return;
  error_reply_logged_at_ = now;
  observability::LogEvent(spdlog::level::warn, "token store: redis answered an error")
      .field("command", command_name(command))
      .field("error", error)
      .emit();
}

// Owner: hiredis owns `ctx`; after a failure it frees it once we return. ctx->data is non-null
// only while the backend is alive and wants this context (cleared before any free of ours).
void RedisBackend::on_connect(const redisAsyncContext* ctx, int status) noexcept {
  auto* self = static_cast<RedisBackend*>(ctx->data);
  if (self == nullptr || ctx != self->ctx_) return;
  try {
    if (status == REDIS_OK) {
      self->connected_ = true;
      spdlog::debug("token store: redis TCP connection open");
    } else {
      self->connect_failed(ctx->c.errstr[0] != '\0' ? ctx->c.errstr : "connect failed");
    }
  } catch (...) {
    spdlog::error("token store: redis connect handling failed");
  }
}

// Owner: hiredis, which frees `ctx` once we return (pending replies were already answered with
// NULL). Same ctx->data rule as on_connect.
void RedisBackend::on_disconnect(const redisAsyncContext* ctx, int /*status: errstr says more*/) noexcept {
  auto* self = static_cast<RedisBackend*>(ctx->data);
  if (self == nullptr || ctx != self->ctx_) return;
  try {
    self->connect_failed(ctx->c.errstr[0] != '\0' ? ctx->c.errstr : "connection closed");
  } catch (...) {
    spdlog::error("token store: redis disconnect handling failed");
  }
}

// Owner: the SetupOp comes back to us from hiredis and dies here; its link says whether the
// backend is still alive. A NULL reply is a lost connection, reported by on_connect/on_disconnect.
void RedisBackend::on_setup_reply(redisAsyncContext*, void* reply, void* privdata) noexcept {
  std::unique_ptr<SetupOp> setup(static_cast<SetupOp*>(privdata));
  RedisBackend* self = setup->link->backend;
  const auto* r = static_cast<const redisReply*>(reply);
  if (self == nullptr || r == nullptr || setup->epoch != self->epoch_) return;
  try {
    if (r->type == REDIS_REPLY_ERROR) {
      // Inside a hiredis callback: the context is freed from the top of the loop.
      self->drop_soon(std::string(setup->what) + " failed: " + std::string(r->str, r->len));
    } else if (setup->last) {
      self->session_ready();
    }
  } catch (...) {
    spdlog::error("token store: redis {} handling failed", setup->what);
  }
}

// Owner: the Op comes back to us from hiredis and dies here (with its timer). An Op that timed
// out was answered already; its late reply is dropped.
void RedisBackend::on_reply(redisAsyncContext*, void* reply, void* privdata) noexcept {
  OpPtr op(static_cast<Op*>(privdata));
  try {
    if (op->answered) return;
    const auto* r = static_cast<const redisReply*>(reply);
    if (r == nullptr) return answer(*op, StoreStatus::Unavailable);  // connection lost or freed
    if (r->type == REDIS_REPLY_ERROR) {
      if (RedisBackend* self = op->link->backend) self->note_error_reply(op->command, std::string_view(r->str, r->len));
      return answer(*op, StoreStatus::Unavailable);
    }
    const StoreStatus status = status_of(op->command, *r);
    if (op->command == Command::TakeTokens) return answer(*op, status, {}, verdict_of(*r).value_or(BucketVerdict{}));
    std::string value;
    if (status == StoreStatus::Ok && r->type == REDIS_REPLY_STRING) value.assign(r->str, r->len);
    answer(*op, status, std::move(value));
  } catch (...) {
    spdlog::error("token store: redis reply handling failed");
  }
}

// Owner: the timer belongs to the Op, which hiredis still owns (no reply yet), so the Op is
// alive here. A timeout means the connection is not trustworthy: it is dropped and re-opened.
void RedisBackend::on_op_timeout(evutil_socket_t, short, void* arg) noexcept {
  auto* op = static_cast<Op*>(arg);
  try {
    spdlog::debug("token store: redis {} timed out", command_name(op->command));
    answer(*op, StoreStatus::Unavailable);
    if (RedisBackend* self = op->link->backend) self->drop_soon("an operation timed out");
  } catch (...) {
    spdlog::error("token store: redis timeout handling failed");
  }
}

// Owner of `self`: the backend, which frees these timers in its destructor.
void RedisBackend::on_reconnect_timer(evutil_socket_t, short, void* self) noexcept {
  try {
    static_cast<RedisBackend*>(self)->connect();
  } catch (...) {
    spdlog::error("token store: redis reconnect failed");
  }
}

// Owner of `self`: the backend, as above. Not a hiredis callback, so the context may be freed.
void RedisBackend::on_connect_timeout(evutil_socket_t, short, void* self) noexcept {
  try {
    static_cast<RedisBackend*>(self)->drop_connection("connect timed out");
  } catch (...) {
    spdlog::error("token store: redis connect timeout handling failed");
  }
}

// Owner of `self`: the backend, as above. Drops the connection a hiredis callback asked to drop,
// unless it is already gone or replaced.
void RedisBackend::on_drop_timer(evutil_socket_t, short, void* self) noexcept {
  auto* backend = static_cast<RedisBackend*>(self);
  try {
    if (backend->ctx_ != nullptr && backend->epoch_ == backend->drop_epoch_) backend->drop_connection(backend->drop_reason_);
  } catch (...) {
    spdlog::error("token store: redis drop failed");
  }
}

}  // namespace

StoreBackendPtr make_redis_backend(const config::TokenStoreConfig& config, core::EventLoop& loop) {
  return std::make_unique<RedisBackend>(config, loop);
}

}  // namespace mcpgate::credentials
