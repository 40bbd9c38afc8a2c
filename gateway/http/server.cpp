#include "http/server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace mcpgate::http {
namespace {

// After accept() fails for want of descriptors or memory, accepting rests this long.
constexpr uint32_t kAcceptPauseMs = 100;

timeval to_timeval(uint32_t ms) { return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)}; }

bool response_has_no_body(int status, bool head_request) {
  return head_request || status < 200 || status == 204 || status == 304;
}

// A request that failed to parse as JSON-RPC-over-HTTP still gets a JSON-RPC
// shaped error when it looked like one (POST with a JSON media type).
std::optional<std::string> jsonrpc_id_for_failed_request(RequestParser& parser) {
  if (!parser.headers_done()) return std::nullopt;
  const auto& request = parser.request();
  const auto content_type = request.headers.get("Content-Type");
  if (request.method == "POST" && content_type && content_type->find("json") != std::string_view::npos)
    return std::string("null");
  return std::nullopt;
}

}  // namespace

std::string format_peer_address(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address->sa_family == AF_INET)
    evutil_inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  else if (address->sa_family == AF_INET6)
    evutil_inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text, sizeof text);
  return text;
}

// ---------------------------------------------------------------- Connection

Connection::Connection(core::EventLoop& loop, ConnectionSet& owner, bufferevent* bev, std::string peer_address,
                       bool tls, const ConnectionSettings& settings, ExchangeFactory factory)
    : loop_(loop),
      owner_(owner),
      bev_(bev),
      timer_(evtimer_new(loop.base(), &Connection::on_timer, this)),
      flush_event_(event_new(loop.base(), -1, 0, &Connection::on_flush, this)),
      peer_address_(std::move(peer_address)),
      tls_(tls),
      settings_(settings),
      factory_(std::move(factory)),
      parser_(settings.max_header_bytes, settings.max_body_bytes) {
  bufferevent_setcb(bev_, &Connection::on_read, &Connection::on_write, &Connection::on_event, this);
  // While an Exchange runs, unread input (pipelined requests) is capped here.
  bufferevent_setwatermark(bev_, EV_READ, 0, settings_.max_header_bytes + settings_.max_body_bytes + 4096);
  // on_write fires when the output drains to half the high-water mark: time to resume the upstream.
  bufferevent_setwatermark(bev_, EV_WRITE, settings_.output_high_water / 2, 0);
  // A client that stops reading for the idle period while output is pending is dropped.
  const timeval write_timeout = to_timeval(settings_.idle_timeout_ms);
  bufferevent_set_timeouts(bev_, nullptr, &write_timeout);
  // Plain connections write their output themselves (on_flush); the write event is enabled
  // only while the socket cannot take it all. TLS output is left to the OpenSSL bufferevent.
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  if (!tls_) bufferevent_disable(bev_, EV_WRITE);  // a new bufferevent starts with writing enabled
  arm_timer(settings_.idle_timeout_ms);
}

Connection::~Connection() {
  if (bev_ != nullptr) bufferevent_free(bev_);
  event_free(timer_);
  event_free(flush_event_);
}

void Connection::arm_timer(uint32_t ms) {
  const timeval timeout = to_timeval(ms);
  evtimer_add(timer_, &timeout);
}

// Owner: this Connection (alive until its deferred delete). Deferred callback, never nested in curl.
void Connection::on_read(bufferevent*, void* self) noexcept {
  auto* connection = static_cast<Connection*>(self);
  try {
    connection->process_input();
  } catch (const std::exception& e) {
    spdlog::error("request handling failed: {}", e.what());
    connection->close();
  }
}

void Connection::on_write(bufferevent*, void* self) noexcept {
  static_cast<Connection*>(self)->output_drained();
}

// Owner: this Connection (the event is freed with it). Runs once the callback that wrote has
// returned, so a response made in one go leaves in one writev, with no write event registered
// and removed for it. What the socket does not take now, and any write error, are left to
// libevent's write event, which ends in on_write or on_event as before.
void Connection::on_flush(int, short, void* self) noexcept {
  auto* connection = static_cast<Connection*>(self);
  connection->flush_scheduled_ = false;
  if (connection->closed_) return;
  evbuffer* output = bufferevent_get_output(connection->bev_);
  const evutil_socket_t fd = bufferevent_getfd(connection->bev_);
  // A socket bufferevent freezes the start of its output; its own write callback thaws it
  // around each write, as here.
  evbuffer_unfreeze(output, 1);
  while (evbuffer_get_length(output) > 0 && evbuffer_write(output, fd) > 0) {
  }
  evbuffer_freeze(output, 1);
  if (evbuffer_get_length(output) > 0) {
    bufferevent_enable(connection->bev_, EV_WRITE);
    return;
  }
  bufferevent_disable(connection->bev_, EV_WRITE);
  connection->output_drained();
}

void Connection::schedule_flush() {
  if (tls_ || closed_ || flush_scheduled_) return;
  flush_scheduled_ = true;
  event_active(flush_event_, 0, 0);
}

void Connection::output_drained() {
  if (closed_) return;
  const std::size_t pending = evbuffer_get_length(bufferevent_get_output(bev_));
  if (close_after_flush_) {
    if (pending == 0) close();
    return;
  }
  if (exchange_) exchange_->on_client_drained();
}

void Connection::on_event(bufferevent*, short what, void* self) noexcept {
  auto* connection = static_cast<Connection*>(self);
  if (what == BEV_EVENT_CONNECTED) return;  // a TLS handshake finished
  if (what & BEV_EVENT_TIMEOUT)
    spdlog::debug("closing connection from {}: client stopped reading", connection->peer_address_);
  connection->close();
}

void Connection::on_timer(int, short, void* self) noexcept {
  auto* connection = static_cast<Connection*>(self);
  if (connection->closed_ || connection->exchange_) return;
  if (!connection->request_started_) {
    connection->close();  // idle keep-alive connection
    return;
  }
  connection->keep_alive_ = false;
  connection->send_error({408, "request_timeout", "the request was not received in time"},
                         jsonrpc_id_for_failed_request(connection->parser_));
}

void Connection::process_input() {
  if (closed_ || exchange_ || close_after_flush_) return;
  evbuffer* input = bufferevent_get_input(bev_);
  if (!request_started_ && evbuffer_get_length(input) > 0) {
    request_started_ = true;
    arm_timer(settings_.request_timeout_ms);
  }
  switch (parser_.feed(input)) {
    case RequestParser::Status::NeedMore:
      if (parser_.headers_done() && parser_.request().expects_continue && !continue_sent_) {
        continue_sent_ = true;
        bufferevent_write(bev_, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        schedule_flush();
      }
      return;
    case RequestParser::Status::Failed: {
      const auto& failure = parser_.failure();
      keep_alive_ = false;  // the byte stream's framing is unknown now
      send_error({failure.status, failure.reason, failure.message}, jsonrpc_id_for_failed_request(parser_));
      return;
    }
    case RequestParser::Status::Complete:
      dispatch_request();
      return;
  }
}

void Connection::dispatch_request() {
  evtimer_del(timer_);
  request_started_ = false;
  auto& request = parser_.request();
  is_head_request_ = request.method == "HEAD";
  keep_alive_ = request.keep_alive && !closing_when_idle_;
  head_sent_ = false;
  chunked_ = false;
  body_bytes_written_ = 0;
  exchange_ = factory_(*this);
  // start() may finish the response (and release the Exchange) before it returns.
  exchange_->start();
}

void Connection::send_head(int status, const HeaderList& headers, std::optional<std::size_t> content_length) {
  if (closed_ || head_sent_) return;
  head_sent_ = true;
  const bool no_body = response_has_no_body(status, is_head_request_);
  std::string head;
  head.reserve(256);
  head.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(status_text(status)).append("\r\n");
  for (const auto& field : headers.fields()) head.append(field.name).append(": ").append(field.value).append("\r\n");
  if (content_length && status != 204 && status != 304) {
    head.append("Content-Length: ").append(std::to_string(*content_length)).append("\r\n");
  } else if (!no_body) {
    if (parser_.request().version_minor >= 1) {
      chunked_ = true;
      head.append("Transfer-Encoding: chunked\r\n");
    } else {
      keep_alive_ = false;  // HTTP/1.0: the body ends when the connection closes
    }
  }
  if (!keep_alive_)
    head.append("Connection: close\r\n");
  else if (parser_.request().version_minor == 0)
    head.append("Connection: keep-alive\r\n");
  head.append("\r\n");
  bufferevent_write(bev_, head.data(), head.size());
  schedule_flush();
  if (no_body) is_head_request_ = true;  // from here on, body bytes are dropped
}

void Connection::send_body(const char* data, std::size_t length) {
  if (closed_ || !head_sent_ || is_head_request_ || length == 0) return;
  if (chunked_) {
    char size_line[32];
    const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", length);
    bufferevent_write(bev_, size_line, static_cast<std::size_t>(n));
    bufferevent_write(bev_, data, length);
    bufferevent_write(bev_, "\r\n", 2);
  } else {
    bufferevent_write(bev_, data, length);
  }
  schedule_flush();
  body_bytes_written_ += length;
}

void Connection::finish_response() {
  if (closed_) return;
  if (!head_sent_) {
    abort();
    return;
  }
  if (chunked_) {
    bufferevent_write(bev_, "0\r\n\r\n", 5);
    schedule_flush();
  }
  release_exchange();
  if (!keep_alive_ || closing_when_idle_) {
    close_after_flush_ = true;
    bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
    if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) close();
    return;
  }
  parser_.reset();
  continue_sent_ = false;
  head_sent_ = false;
  chunked_ = false;
  arm_timer(settings_.idle_timeout_ms);
  if (evbuffer_get_length(bufferevent_get_input(bev_)) > 0)
    bufferevent_trigger(bev_, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void Connection::send_response(int status, HeaderList headers, const std::string& body) {
  send_head(status, headers, body.size());
  send_body(body.data(), body.size());
  finish_response();
}

void Connection::send_error(const GatewayError& error, const std::optional<std::string>& jsonrpc_id,
                            const HeaderList& extra_headers) {
  if (closed_) return;
  if (head_sent_) {  // too late for a status: the client sees a truncated response
    abort();
    return;
  }
  HeaderList headers = extra_headers;
  headers.add("Content-Type", "application/json");
  headers.add("Cache-Control", "no-store");
  send_response(error.status, std::move(headers), error_body(error, jsonrpc_id));
}

void Connection::abort() { close(); }

void Connection::reject(const GatewayError& error) {
  keep_alive_ = false;
  send_error(error, std::nullopt);
}

bool Connection::over_high_water() const {
  return closed_ || evbuffer_get_length(bufferevent_get_output(bev_)) >= settings_.output_high_water;
}

void Connection::release_exchange() {
  if (exchange_) loop_.defer_delete(std::move(exchange_));
}

void Connection::close_when_idle() {
  closing_when_idle_ = true;
  if (!exchange_ && !head_sent_ && parser_.idle()) close();
}

void Connection::shutdown() {
  close_when_idle();
  if (!closed_ && exchange_) exchange_->on_shutdown();
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  evtimer_del(timer_);
  event_del(flush_event_);
  if (exchange_) {
    auto exchange = std::move(exchange_);
    exchange->on_client_closed();
    loop_.defer_delete(std::move(exchange));
  }
  bufferevent_free(bev_);  // allowed from inside its own callbacks: libevent defers the free
  bev_ = nullptr;
  owner_.remove(this);
}

// ------------------------------------------------------------- ConnectionSet

ConnectionSet::ConnectionSet(core::EventLoop& loop, std::atomic<int64_t>& process_connections)
    : loop_(loop), process_connections_(process_connections) {}

ConnectionSet::~ConnectionSet() {
  process_connections_ -= static_cast<int64_t>(connections_.size());
}

void ConnectionSet::add(std::unique_ptr<Connection> connection) {
  ++process_connections_;
  Connection* key = connection.get();
  connections_.emplace(key, std::move(connection));
}

void ConnectionSet::remove(Connection* connection) {
  auto found = connections_.find(connection);
  if (found == connections_.end()) return;
  --process_connections_;
  loop_.defer_delete(std::move(found->second));
  connections_.erase(found);
}

void ConnectionSet::shutdown() {
  std::vector<Connection*> snapshot;
  snapshot.reserve(connections_.size());
  for (auto& entry : connections_) snapshot.push_back(entry.first);
  for (Connection* connection : snapshot) connection->shutdown();  // deferred deletes keep each alive
}

// ------------------------------------------------------------------ Listener

Listener::Listener(core::EventLoop& loop, ConnectionSet& connections, const Options& options,
                   TlsContextSource tls, SettingsSource settings, ExchangeFactory factory,
                   std::atomic<int64_t>& process_connections)
    : loop_(loop),
      connections_(connections),
      options_(options),
      tls_(std::move(tls)),
      settings_(std::move(settings)),
      factory_(std::move(factory)),
      process_connections_(process_connections) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  if (int rc = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw std::runtime_error("cannot resolve listen address '" + options_.host + "': " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, &freeaddrinfo);
  const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
                         (options_.share_port ? LEV_OPT_REUSEABLE_PORT : 0u);
  listener_ = evconnlistener_new_bind(loop_.base(), &Listener::on_accept, this, flags, 1024, found->ai_addr,
                                      static_cast<int>(found->ai_addrlen));
  if (listener_ == nullptr)
    throw std::runtime_error("cannot listen on " + options_.host + ":" + port + ": " + std::strerror(errno));
  evconnlistener_set_error_cb(listener_, &Listener::on_accept_error);
  resume_timer_ = evtimer_new(loop_.base(), &Listener::on_accept_resume, this);
}

Listener::~Listener() {
  stop_accepting();
  if (resume_timer_ != nullptr) event_free(resume_timer_);
}

void Listener::stop_accepting() {
  if (resume_timer_ != nullptr) evtimer_del(resume_timer_);
  if (listener_ != nullptr) {
    evconnlistener_free(listener_);
    listener_ = nullptr;
  }
}

uint16_t Listener::bound_port() const {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (listener_ == nullptr || getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return 0;
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

// Out of descriptors (EMFILE, ENFILE) or kernel memory, accept() fails and the connection stays
// queued, so the listener would be woken again at once: without a pause it spins, and libevent
// logs a warning per wake-up. Owner: the Listener, as for on_accept.
void Listener::on_accept_error(evconnlistener*, void* self) noexcept {
  auto* listener = static_cast<Listener*>(self);
  const int error = EVUTIL_SOCKET_ERROR();
  if (!listener->accept_failing_)
    spdlog::warn("cannot accept connections on {}:{}: {}; retrying every {} ms", listener->options_.host,
                 listener->bound_port(), evutil_socket_error_to_string(error), kAcceptPauseMs);
  listener->accept_failing_ = true;
  if (listener->listener_ == nullptr) return;
  evconnlistener_disable(listener->listener_);
  const timeval pause = to_timeval(kAcceptPauseMs);
  evtimer_add(listener->resume_timer_, &pause);
}

void Listener::on_accept_resume(int, short, void* self) noexcept {
  auto* listener = static_cast<Listener*>(self);
  if (listener->listener_ != nullptr) evconnlistener_enable(listener->listener_);
}

// Owner: the Listener, alive while its evconnlistener exists. The new socket is
// owned by the bufferevent (BEV_OPT_CLOSE_ON_FREE) and that by the Connection.
void Listener::on_accept(evconnlistener*, int fd, sockaddr* address, int, void* self) noexcept {
  auto* listener = static_cast<Listener*>(self);
  listener->accept_failing_ = false;
  try {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto tls_context = listener->tls_ ? listener->tls_() : nullptr;
    const int options = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    bufferevent* bev = nullptr;
    if (tls_context) {
      SSL* ssl = SSL_new(tls_context.get());
      bev = ssl ? bufferevent_openssl_socket_new(listener->loop_.base(), fd, ssl, BUFFEREVENT_SSL_ACCEPTING, options)
                : nullptr;
      if (bev != nullptr) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
      bev = bufferevent_socket_new(listener->loop_.base(), fd, options);
    }
    if (bev == nullptr) {
      evutil_closesocket(fd);
      return;
    }
    const bool over_limit = listener->options_.max_connections > 0 &&
                            listener->process_connections_.load() >= static_cast<int64_t>(listener->options_.max_connections);
    auto connection = std::make_unique<Connection>(listener->loop_, listener->connections_, bev,
                                                   format_peer_address(address), tls_context != nullptr,
                                                   listener->settings_(), listener->factory_);
    Connection* raw = connection.get();
    listener->connections_.add(std::move(connection));
    if (over_limit) raw->reject({503, "too_many_connections", "the gateway is at its connection limit"});
  } catch (const std::exception& e) {
    spdlog::error("accepting a connection failed: {}", e.what());
  }
}

}  // namespace mcpgate::http
