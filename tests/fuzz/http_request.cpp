// RequestParser fed as http/server.cpp feeds it: bytes arrive in an evbuffer in 1-3 reads; after
// Complete the connection answers, reset()s the parser and goes on with what is left (pipelining)
// unless the request ends the connection; after Failed the connection is closed.
//
// Input: [chunks/limits] [cut 1] [cut 2] <the bytes a client sends>
//   byte 0: bits 0-1 number of reads - 1 (3 counts as 1), bits 2-3 which limits (kLimits)
//
// Checked: every parsed request is within the limits and well-formed as the proxy relies on
// (token method, absolute path target, field names and values, one framing, Host), failures carry
// a known status, and the requests and failure are the same however the bytes were cut.
#include <event2/buffer.h>

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "http/message.h"
#include "http/request_parser.h"

namespace {

using mcpgate::fuzz::printable;
using mcpgate::http::HttpRequest;
using mcpgate::http::iequals;
using mcpgate::http::RequestParser;

struct Limits {
  std::size_t header_bytes;
  std::size_t body_bytes;
};
// Small limits so the 431 and 413 paths are reached by short inputs; the last is the default.
constexpr Limits kLimits[4] = {{256, 64}, {1024, 4096}, {64, 16}, {16384, 1048576}};

// What the connection saw: requests dispatched, then possibly the failure that closed it.
struct Outcome {
  std::vector<HttpRequest> requests;
  std::optional<int> failure_status;
  std::string failure_reason;
  std::string failure_message;
  bool closed = false;  // after a failure or a request without keep-alive
};

std::string describe(const HttpRequest& request) {
  std::string text = request.method + " " + request.target + " HTTP/1." + std::to_string(request.version_minor);
  for (const auto& field : request.headers.fields()) text += " | " + field.name + ": " + field.value;
  text += " | body " + std::to_string(request.body.size()) + " bytes, keep_alive " + std::to_string(request.keep_alive);
  return printable(text);
}

bool same_request(const HttpRequest& a, const HttpRequest& b) {
  if (a.method != b.method || a.target != b.target || a.path != b.path || a.query != b.query ||
      a.version_minor != b.version_minor || a.body != b.body || a.keep_alive != b.keep_alive ||
      a.expects_continue != b.expects_continue || a.header_bytes != b.header_bytes ||
      a.headers.fields().size() != b.headers.fields().size())
    return false;
  for (std::size_t i = 0; i < a.headers.fields().size(); ++i) {
    if (a.headers.fields()[i].name != b.headers.fields()[i].name ||
        a.headers.fields()[i].value != b.headers.fields()[i].value)
      return false;
  }
  return true;
}

void check_request(const HttpRequest& request, const Limits& limits) {
  const std::string what = describe(request);
  FUZZ_CHECK(request.header_bytes <= limits.header_bytes, what);
  FUZZ_CHECK(request.body.size() <= limits.body_bytes, what);
  FUZZ_CHECK(mcpgate::http::is_field_name(request.method), what);
  FUZZ_CHECK(!request.target.empty() && request.target[0] == '/', what);
  FUZZ_CHECK(mcpgate::http::is_field_value(request.target) && request.target.find(' ') == std::string::npos, what);
  FUZZ_CHECK(request.path == request.target.substr(0, request.target.find('?')), what);
  FUZZ_CHECK(request.query.find('#') == std::string::npos, what);
  FUZZ_CHECK(request.version_minor == 0 || request.version_minor == 1, what);
  FUZZ_CHECK(request.headers.fields().size() <= 100, what);
  for (const auto& field : request.headers.fields()) {
    FUZZ_CHECK(mcpgate::http::is_field_name(field.name), what);
    FUZZ_CHECK(mcpgate::http::is_field_value(field.value), what);
    const bool trimmed = field.value.empty() || (field.value.front() != ' ' && field.value.front() != '\t' &&
                                                 field.value.back() != ' ' && field.value.back() != '\t');
    FUZZ_CHECK(trimmed, what);
  }
  const auto& headers = request.headers;
  if (request.version_minor == 1) FUZZ_CHECK(headers.count("Host") == 1, what);
  FUZZ_CHECK(!(headers.count("Transfer-Encoding") > 0 && headers.count("Content-Length") > 0), what);
  FUZZ_CHECK(headers.count("Transfer-Encoding") <= 1 && headers.count("Content-Length") <= 1, what);
  if (auto length = headers.get("Content-Length")) FUZZ_CHECK(std::stoull(std::string(*length)) == request.body.size(), what);
  if (!headers.get("Content-Length") && !headers.get("Transfer-Encoding")) FUZZ_CHECK(request.body.empty(), what);
  for (const auto& field : headers.fields()) {
    if (!iequals(field.name, "Connection")) continue;
    std::string lowered = field.value;
    for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lowered.find("close") != std::string::npos) FUZZ_CHECK(!request.keep_alive, what);
  }
  if (request.version_minor == 0 && headers.get("Transfer-Encoding")) FUZZ_CHECK(!request.keep_alive, what);
  if (request.expects_continue) FUZZ_CHECK(headers.get("Expect") && iequals(*headers.get("Expect"), "100-continue"), what);
}

void check_failure(const RequestParser& parser) {
  const auto& failure = parser.failure();
  const int status = failure.status;
  FUZZ_CHECK(status == 400 || status == 413 || status == 417 || status == 431 || status == 501 || status == 505,
             std::to_string(status) + " " + failure.reason);
  FUZZ_CHECK(!failure.reason.empty() && !failure.message.empty(), failure.reason);
}

Outcome run_connection(const std::vector<std::string_view>& reads, const Limits& limits) {
  std::unique_ptr<evbuffer, decltype(&evbuffer_free)> input(evbuffer_new(), &evbuffer_free);
  RequestParser parser(limits.header_bytes, limits.body_bytes);
  Outcome outcome;
  for (std::string_view read : reads) {
    if (outcome.closed) break;
    evbuffer_add(input.get(), read.data(), read.size());
    // Connection::process_input, then finish_response's re-trigger while input is left.
    for (;;) {
      const std::size_t before = evbuffer_get_length(input.get());
      const auto status = parser.feed(input.get());
      FUZZ_CHECK(evbuffer_get_length(input.get()) <= before, "feed() added input");
      if (status == RequestParser::Status::NeedMore) {
        // What the server asks of a waiting parser.
        (void)parser.idle();
        if (parser.headers_done()) (void)parser.request().expects_continue;
        break;
      }
      if (status == RequestParser::Status::Failed) {
        check_failure(parser);
        outcome.failure_status = parser.failure().status;
        outcome.failure_reason = parser.failure().reason;
        outcome.failure_message = parser.failure().message;
        if (parser.headers_done()) (void)parser.request().headers.get("Content-Type");
        // A failed parser stays failed.
        FUZZ_CHECK(parser.feed(input.get()) == RequestParser::Status::Failed, "a failed parser recovered");
        outcome.closed = true;
        break;
      }
      // Complete: the request is dispatched; a second feed before reset() must say Complete again.
      FUZZ_CHECK(parser.headers_done(), "Complete before the headers were read");
      check_request(parser.request(), limits);
      FUZZ_CHECK(parser.feed(input.get()) == RequestParser::Status::Complete, "Complete was not sticky");
      outcome.requests.push_back(parser.request());
      if (!parser.request().keep_alive) {
        outcome.closed = true;
        break;
      }
      parser.reset();
      FUZZ_CHECK(parser.idle(), "reset() left the parser busy");
      if (evbuffer_get_length(input.get()) == 0) break;
    }
  }
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpgate::fuzz::Input input(data, size);
  const uint8_t control = input.byte();
  const uint8_t cut1 = input.byte();
  const uint8_t cut2 = input.byte();
  const std::string_view stream = input.rest();
  const Limits& limits = kLimits[(control >> 2) & 3];
  const unsigned reads = (control & 3) == 3 ? 1 : (control & 3) + 1;

  const Outcome chunked = run_connection(mcpgate::fuzz::split_chunks(stream, reads, cut1, cut2), limits);
  if (mcpgate::fuzz::debug()) {
    std::fprintf(stderr, "%u read(s): %zu request(s)%s%s\n", reads, chunked.requests.size(),
                 chunked.failure_status ? ", then " : "", chunked.failure_message.c_str());
    for (const auto& request : chunked.requests) std::fprintf(stderr, "  %s\n", describe(request).c_str());
  }
  if (reads == 1) return 0;
  // The same bytes in one read: the parser is incremental, so nothing may depend on the cuts.
  const Outcome whole = run_connection({stream}, limits);
  FUZZ_CHECK(chunked.requests.size() == whole.requests.size(),
             std::to_string(chunked.requests.size()) + " requests in " + std::to_string(reads) + " reads, " +
                 std::to_string(whole.requests.size()) + " in one; failures: " + chunked.failure_message + " / " +
                 whole.failure_message);
  for (std::size_t i = 0; i < whole.requests.size(); ++i)
    FUZZ_CHECK(same_request(chunked.requests[i], whole.requests[i]),
               describe(chunked.requests[i]) + "  vs  " + describe(whole.requests[i]));
  // Input that ends mid-request leaves both waiting; otherwise both failed the same way.
  FUZZ_CHECK(chunked.failure_status == whole.failure_status && chunked.failure_reason == whole.failure_reason,
             "in " + std::to_string(reads) + " reads: " + chunked.failure_message + ", in one: " + whole.failure_message);
  return 0;
}
