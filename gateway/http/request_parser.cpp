#include "http/request_parser.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace mcpgate::http {
namespace {

constexpr std::size_t kMaxHeaderFields = 100;
constexpr std::size_t kMaxChunkLine = 1024;

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Reads one CRLF- (or LF-) terminated line; null when no full line is buffered.
std::unique_ptr<char, decltype(&std::free)> read_line(evbuffer* input, std::size_t* length) {
  return {evbuffer_readln(input, length, EVBUFFER_EOL_CRLF), &std::free};
}

// A request target has no whitespace at all (RFC 9112 §3.2): a tab in a path would hide
// a dot segment ("/a/..\t") from the route checks.
bool has_whitespace_or_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

RequestParser::RequestParser(std::size_t max_header_bytes, std::size_t max_body_bytes)
    : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {}

void RequestParser::reset() {
  state_ = State::RequestLine;
  request_ = HttpRequest{};
  failure_ = ParseFailure{};
  body_remaining_ = 0;
  header_fields_ = 0;
}

RequestParser::Status RequestParser::fail(int status, std::string reason, std::string message) {
  state_ = State::Error;
  failure_ = {status, std::move(reason), std::move(message)};
  return Status::Failed;
}

RequestParser::Status RequestParser::feed(evbuffer* input) {
  for (;;) {
    const State state_before = state_;
    const std::size_t buffered_before = evbuffer_get_length(input);
    Status status = Status::NeedMore;
    switch (state_) {
      case State::RequestLine:
      case State::Headers:
        status = read_header_lines(input);
        break;
      case State::FixedBody:
        status = read_fixed_body(input);
        break;
      case State::ChunkSize:
      case State::ChunkData:
      case State::ChunkDataEnd:
      case State::Trailers:
        status = read_chunked_body(input);
        break;
      case State::Done:
        return Status::Complete;
      case State::Error:
        return Status::Failed;
    }
    if (status != Status::NeedMore) return status;
    // Stop once a state can make no progress with what is buffered.
    if (state_ == state_before && evbuffer_get_length(input) == buffered_before) return Status::NeedMore;
  }
}

// The header block is read where it lies: made contiguous once (a request that came in one
// read is already) and drained once, rather than copied out line by line.
RequestParser::Status RequestParser::read_header_lines(evbuffer* input) {
  const std::size_t buffered = evbuffer_get_length(input);
  std::size_t consumed = 0;
  // The next line must end before this point, or the block is too large whatever it holds.
  const auto line_limit = [&] {
    return std::min(buffered, consumed + (max_header_bytes_ - std::min(request_.header_bytes, max_header_bytes_)) + 2);
  };
  std::size_t window = 0;  // bytes made contiguous at `data`
  const char* data = nullptr;
  Status status = Status::NeedMore;
  while (status == Status::NeedMore && (state_ == State::RequestLine || state_ == State::Headers)) {
    const void* newline = consumed < window ? std::memchr(data + consumed, '\n', window - consumed) : nullptr;
    if (newline == nullptr && line_limit() > window) {  // the first look, or a stray line reset the count
      window = line_limit();
      data = reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(window)));
      continue;
    }
    if (newline == nullptr) {
      if (request_.header_bytes + (buffered - consumed) > max_header_bytes_)
        status = fail(431, "headers_too_large", "request header block exceeds the limit");
      break;
    }
    const std::size_t line_end = static_cast<std::size_t>(static_cast<const char*>(newline) - data);
    std::string_view line(data + consumed, line_end - consumed);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF, or a bare LF
    consumed = line_end + 1;
    request_.header_bytes += line.size() + 2;
    if (request_.header_bytes > max_header_bytes_) {
      status = fail(431, "headers_too_large", "request header block exceeds the limit");
    } else if (state_ == State::RequestLine) {
      if (line.empty() && request_.header_bytes <= 4) {  // tolerate a stray CRLF between requests
        request_.header_bytes = 0;
        continue;
      }
      status = parse_request_line(line);
    } else if (line.empty()) {
      status = finish_headers();
    } else {
      status = parse_header_line(line);
    }
  }
  evbuffer_drain(input, consumed);
  return status;
}

RequestParser::Status RequestParser::parse_request_line(std::string_view line) {
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? std::string_view::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "bad_request", "malformed request line");
  request_.method = line.substr(0, sp1);
  request_.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_field_name(request_.method)) return fail(400, "bad_request", "malformed request method");
  if (request_.target.empty() || request_.target[0] != '/' || has_whitespace_or_control_chars(request_.target))
    return fail(400, "bad_request", "request target must be an absolute path");
  if (version == "HTTP/1.1") {
    request_.version_minor = 1;
  } else if (version == "HTTP/1.0") {
    request_.version_minor = 0;
    request_.keep_alive = false;
  } else {
    return fail(version.rfind("HTTP/", 0) == 0 ? 505 : 400, "bad_request", "unsupported HTTP version");
  }
  const auto query_start = request_.target.find('?');
  request_.path = request_.target.substr(0, query_start);
  if (query_start != std::string::npos) request_.query = request_.target.substr(query_start + 1);
  const auto fragment = request_.query.find('#');
  if (fragment != std::string::npos) request_.query.resize(fragment);
  state_ = State::Headers;
  return Status::NeedMore;
}

RequestParser::Status RequestParser::parse_header_line(std::string_view line) {
  if (line[0] == ' ' || line[0] == '\t')
    return fail(400, "bad_request", "obsolete header line folding is not accepted");
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "bad_request", "malformed header field");
  std::string_view name(line.data(), colon);
  if (!is_field_name(name)) return fail(400, "bad_request", "malformed header field name");
  std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_field_value(value)) return fail(400, "bad_request", "control character in header value");
  if (++header_fields_ > kMaxHeaderFields)
    return fail(431, "headers_too_large", "too many header fields");
  request_.headers.add(std::string(name), std::string(value));
  return Status::NeedMore;
}

RequestParser::Status RequestParser::finish_headers() {
  auto& headers = request_.headers;
  // Connection is a comma list, possibly over several fields; "close" wins over "keep-alive".
  bool close_requested = false;
  bool keep_alive_requested = false;
  for (const auto& field : headers.fields()) {
    if (!iequals(field.name, "Connection")) continue;
    std::string lowered(field.value);
    for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    close_requested |= lowered.find("close") != std::string::npos;
    keep_alive_requested |= lowered.find("keep-alive") != std::string::npos;
  }
  if (request_.version_minor == 0 && keep_alive_requested) request_.keep_alive = true;
  if (close_requested) request_.keep_alive = false;
  if (request_.version_minor == 1 && headers.count("Host") != 1)
    return fail(400, "bad_request", "exactly one Host header is required");
  if (auto expect = headers.get("Expect")) {
    if (!iequals(*expect, "100-continue")) return fail(417, "bad_request", "unsupported Expect value");
    request_.expects_continue = true;
  }
  const auto transfer_encoding = headers.get("Transfer-Encoding");
  const auto content_length_count = headers.count("Content-Length");
  if (transfer_encoding) {
    // A request with both framings is a smuggling vector: refuse it.
    if (content_length_count > 0) return fail(400, "bad_request", "both Transfer-Encoding and Content-Length");
    if (headers.count("Transfer-Encoding") != 1 || !iequals(trim_ows(*transfer_encoding), "chunked"))
      return fail(501, "bad_request", "only chunked transfer coding is supported");
    if (request_.version_minor == 0) request_.keep_alive = false;  // RFC 9112 §6.1: suspect framing
    state_ = State::ChunkSize;
    return Status::NeedMore;
  }
  if (content_length_count > 1) return fail(400, "bad_request", "multiple Content-Length headers");
  if (content_length_count == 1) {
    const std::string text(*headers.get("Content-Length"));
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
      return fail(400, "bad_request", "malformed Content-Length");
    body_remaining_ = std::stoull(text);
    if (body_remaining_ > max_body_bytes_)
      return fail(413, "body_too_large", "request body exceeds the limit");
    request_.body.reserve(body_remaining_);
    state_ = body_remaining_ > 0 ? State::FixedBody : State::Done;
    return state_ == State::Done ? Status::Complete : Status::NeedMore;
  }
  state_ = State::Done;
  return Status::Complete;
}

RequestParser::Status RequestParser::read_fixed_body(evbuffer* input) {
  const std::size_t available = evbuffer_get_length(input);
  const std::size_t take = std::min(available, body_remaining_);
  if (take > 0) {
    const std::size_t old_size = request_.body.size();
    request_.body.resize(old_size + take);
    evbuffer_remove(input, request_.body.data() + old_size, take);
    body_remaining_ -= take;
  }
  if (body_remaining_ > 0) return Status::NeedMore;
  state_ = State::Done;
  return Status::Complete;
}

RequestParser::Status RequestParser::read_chunked_body(evbuffer* input) {
  for (;;) {
    if (state_ == State::ChunkSize || state_ == State::ChunkDataEnd || state_ == State::Trailers) {
      std::size_t length = 0;
      auto line = read_line(input, &length);
      if (!line) {
        if (evbuffer_get_length(input) > kMaxChunkLine) return fail(400, "bad_request", "chunk line too long");
        return Status::NeedMore;
      }
      // The same limit for a line that arrived whole, so the outcome never depends on the reads.
      if (length > kMaxChunkLine) return fail(400, "bad_request", "chunk line too long");
      std::string_view text(line.get(), length);
      if (state_ == State::ChunkDataEnd) {
        if (!text.empty()) return fail(400, "bad_request", "malformed chunk terminator");
        state_ = State::ChunkSize;
        continue;
      }
      if (state_ == State::Trailers) {
        if (text.empty()) {
          state_ = State::Done;
          return Status::Complete;
        }
        request_.header_bytes += length + 2;
        if (request_.header_bytes > max_header_bytes_)
          return fail(431, "headers_too_large", "request trailers exceed the limit");
        continue;  // trailer fields are read and dropped
      }
      const auto size_text = text.substr(0, text.find(';'));
      if (size_text.empty() || size_text.size() > 15 ||
          size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos)
        return fail(400, "bad_request", "malformed chunk size");
      body_remaining_ = std::stoull(std::string(size_text), nullptr, 16);
      if (request_.body.size() + body_remaining_ > max_body_bytes_)
        return fail(413, "body_too_large", "request body exceeds the limit");
      state_ = body_remaining_ == 0 ? State::Trailers : State::ChunkData;
      continue;
    }
    // ChunkData
    const std::size_t take = std::min(evbuffer_get_length(input), body_remaining_);
    if (take == 0) return Status::NeedMore;
    const std::size_t old_size = request_.body.size();
    request_.body.resize(old_size + take);
    evbuffer_remove(input, request_.body.data() + old_size, take);
    body_remaining_ -= take;
    if (body_remaining_ == 0) state_ = State::ChunkDataEnd;
  }
}

}  // namespace mcpgate::http
