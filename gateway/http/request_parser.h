// Incremental HTTP/1.x request parser over a libevent input buffer, with the
// gateway's size limits enforced while reading (431 headers, 413 body).
#pragma once

#include <cstddef>
#include <string>

#include "http/message.h"

struct evbuffer;

namespace mcpgate::http {

struct ParseFailure {
  int status = 400;
  std::string reason;   // machine-readable, e.g. "headers_too_large"
  std::string message;  // for humans
};

class RequestParser {
 public:
  enum class Status { NeedMore, Complete, Failed };

  RequestParser(std::size_t max_header_bytes, std::size_t max_body_bytes);

  // Consumes what it can from `input`. After Complete, take_request() and reset().
  Status feed(evbuffer* input);
  // True once the header block has been read (the body may still be pending).
  bool headers_done() const { return state_ != State::RequestLine && state_ != State::Headers; }
  // True when nothing of a request has been consumed yet.
  bool idle() const { return state_ == State::RequestLine && request_.header_bytes == 0; }
  HttpRequest& request() { return request_; }
  const ParseFailure& failure() const { return failure_; }
  void reset();

 private:
  enum class State { RequestLine, Headers, FixedBody, ChunkSize, ChunkData, ChunkDataEnd, Trailers, Done, Error };

  Status fail(int status, std::string reason, std::string message);
  Status read_header_lines(evbuffer* input);
  Status parse_request_line(std::string_view line);
  Status parse_header_line(std::string_view line);
  Status finish_headers();
  Status read_fixed_body(evbuffer* input);
  Status read_chunked_body(evbuffer* input);

  std::size_t max_header_bytes_;
  std::size_t max_body_bytes_;
  State state_ = State::RequestLine;
  HttpRequest request_;
  ParseFailure failure_;
  std::size_t body_remaining_ = 0;  // fixed body or current chunk
  std::size_t header_fields_ = 0;
};

}  // namespace mcpgate::http
