// The HTTP/1.1 server side: a listener per event loop and one Connection per
// accepted socket. A Connection parses requests, hands each complete one to an
// Exchange, and writes the Exchange's response (fixed or streamed) with
// backpressure. Connections and Exchanges die through EventLoop::defer_delete.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/event_loop.h"
#include "http/message.h"
#include "http/replies.h"
#include "http/request_parser.h"

struct bufferevent;
struct evconnlistener;
struct event;
struct sockaddr;
typedef struct ssl_ctx_st SSL_CTX;

namespace mcpgate::http {

class Connection;

// One request/response in flight on a Connection. Owned by the Connection;
// destroyed via defer_delete once the response is finished or the client is gone.
class Exchange : public core::Deletable {
 public:
  // Called once the whole request has been read. May respond before returning.
  virtual void start() = 0;
  // The client's output buffer drained below the low-water mark.
  virtual void on_client_drained() {}
  // The client went away (or the connection failed): cancel all work, write nothing.
  virtual void on_client_closed() = 0;
  // The gateway is shutting down: end long-lived streams cleanly.
  virtual void on_shutdown() {}
};

using ExchangeFactory = std::function<std::unique_ptr<Exchange>(Connection&)>;

struct ConnectionSettings {
  std::size_t max_header_bytes = 16384;
  std::size_t max_body_bytes = 1048576;
  uint32_t idle_timeout_ms = 60000;
  uint32_t request_timeout_ms = 30000;
  std::size_t output_high_water = 262144;
};

class ConnectionSet;

class Connection : public core::Deletable {
 public:
  Connection(core::EventLoop& loop, ConnectionSet& owner, bufferevent* bev, std::string peer_address,
             bool tls, const ConnectionSettings& settings, ExchangeFactory factory);
  ~Connection() override;

  HttpRequest& request() { return parser_.request(); }
  const std::string& peer_address() const { return peer_address_; }
  bool is_tls() const { return tls_; }
  core::EventLoop& loop() { return loop_; }

  // Starts the response. Without `content_length` the body is streamed (chunked
  // for HTTP/1.1, close-delimited for HTTP/1.0).
  void send_head(int status, const HeaderList& headers, std::optional<std::size_t> content_length);
  void send_body(const char* data, std::size_t length);
  // Ends the response; the Exchange is released and the connection reads the next request.
  void finish_response();
  // Head + body + finish in one call, for replies the gateway writes itself.
  void send_response(int status, HeaderList headers, const std::string& body);
  // A gateway error, JSON-RPC shaped when `jsonrpc_id` is set.
  void send_error(const GatewayError& error, const std::optional<std::string>& jsonrpc_id,
                  const HeaderList& extra_headers = {});
  // Answers `error` before reading any request, then closes.
  void reject(const GatewayError& error);
  // Drops the connection without completing the response (the client sees a truncated body).
  void abort();

  bool head_sent() const { return head_sent_; }
  bool over_high_water() const;
  std::size_t bytes_written() const { return body_bytes_written_; }
  // Ends the connection after the current response (shutdown); closes it now when idle.
  void close_when_idle();
  void shutdown();

 private:
  static void on_read(bufferevent*, void* self) noexcept;
  static void on_write(bufferevent*, void* self) noexcept;
  static void on_event(bufferevent*, short what, void* self) noexcept;
  static void on_timer(int, short, void* self) noexcept;
  static void on_flush(int, short, void* self) noexcept;

  void process_input();
  void dispatch_request();
  void close();
  void arm_timer(uint32_t ms);
  void release_exchange();
  // Output was added: write it once the current callback is done (see on_flush).
  void schedule_flush();
  // The output is below its low-water mark (on_write) or empty (on_flush).
  void output_drained();

  core::EventLoop& loop_;
  ConnectionSet& owner_;
  bufferevent* bev_;
  event* timer_;
  event* flush_event_;  // activated by schedule_flush(); never tied to the socket
  std::string peer_address_;
  bool tls_;
  ConnectionSettings settings_;
  ExchangeFactory factory_;
  RequestParser parser_;
  std::unique_ptr<Exchange> exchange_;
  bool request_started_ = false;
  bool continue_sent_ = false;
  bool head_sent_ = false;
  bool chunked_ = false;
  bool keep_alive_ = true;
  bool is_head_request_ = false;
  bool close_after_flush_ = false;
  bool closing_when_idle_ = false;
  bool closed_ = false;
  bool flush_scheduled_ = false;
  std::size_t body_bytes_written_ = 0;
};

// The connections of one event loop. Lives on that loop's thread.
class ConnectionSet {
 public:
  ConnectionSet(core::EventLoop& loop, std::atomic<int64_t>& process_connections);
  ~ConnectionSet();
  void add(std::unique_ptr<Connection> connection);
  // Called by a Connection that has closed; its destruction is deferred.
  void remove(Connection* connection);
  std::size_t size() const { return connections_.size(); }
  // Closes idle connections and marks busy ones to close after their response.
  void shutdown();

 private:
  core::EventLoop& loop_;
  std::atomic<int64_t>& process_connections_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
};

// Accepts connections on one loop. Several loops may bind the same address (SO_REUSEPORT).
class Listener {
 public:
  struct Options {
    std::string host;
    uint16_t port = 0;
    std::size_t max_connections = 0;  // 0: unlimited
    // SO_REUSEPORT: the worker loops share one port. A listener of one loop only leaves it off, so
    // a second process on its port fails to start instead of silently taking half the connections.
    bool share_port = true;
  };
  using TlsContextSource = std::function<std::shared_ptr<SSL_CTX>()>;
  using SettingsSource = std::function<ConnectionSettings()>;

  // Binds immediately; throws std::runtime_error with the reason when it cannot.
  Listener(core::EventLoop& loop, ConnectionSet& connections, const Options& options,
           TlsContextSource tls, SettingsSource settings, ExchangeFactory factory,
           std::atomic<int64_t>& process_connections);
  ~Listener();
  void stop_accepting();
  uint16_t bound_port() const;

 private:
  static void on_accept(evconnlistener*, int fd, sockaddr* address, int length, void* self) noexcept;
  static void on_accept_error(evconnlistener*, void* self) noexcept;
  static void on_accept_resume(int, short, void* self) noexcept;

  core::EventLoop& loop_;
  ConnectionSet& connections_;
  Options options_;
  TlsContextSource tls_;
  SettingsSource settings_;
  ExchangeFactory factory_;
  std::atomic<int64_t>& process_connections_;
  evconnlistener* listener_ = nullptr;
  event* resume_timer_ = nullptr;  // re-enables accepting after a failed accept()
  bool accept_failing_ = false;    // since the last failed accept(), none succeeded
};

std::string format_peer_address(const sockaddr* address);

}  // namespace mcpgate::http
