// HTTP/1.x request and header containers shared by the server and the proxy.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpgate::http {

// ASCII case-insensitive equality (header names, tokens), inline: it runs dozens of times a request.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + ('a' - 'A')) : a[i];
    const char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + ('a' - 'A')) : b[i];
    if (x != y) return false;
  }
  return true;
}

// RFC 9110 field-name: one or more tchar.
bool is_field_name(std::string_view name);
// A field value that cannot inject fields: visible characters, spaces and tabs; no CR, LF, NUL, DEL.
bool is_field_value(std::string_view value);
// Fields that frame or route the request (Host, Content-Length, Transfer-Encoding, Connection, ...):
// a value set there from outside would desynchronize the connection or redirect the request.
bool is_framing_header(std::string_view name);

// The percent-decoded value of the first `name` parameter of a URL query ('+' is a space);
// nullopt when absent or badly encoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

struct Header {
  std::string name;
  std::string value;
};

// Ordered header fields; names compared case-insensitively.
class HeaderList {
 public:
  void add(std::string name, std::string value);
  // Replaces every field named `name` with one field.
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);
  // First value of `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const;
  std::size_t count(std::string_view name) const;
  const std::vector<Header>& fields() const { return fields_; }
  std::vector<Header>& fields() { return fields_; }

 private:
  static constexpr std::size_t kUsualFieldCount = 12;
  std::vector<Header> fields_;
};

// The value of cookie `name` in the request's Cookie fields, if any.
std::optional<std::string> cookie_value(const HeaderList& headers, std::string_view name);

struct HttpRequest {
  std::string method;
  std::string target;  // as received: path + optional "?query"
  std::string path;    // target before '?'
  std::string query;   // after '?', without it; empty when none
  int version_minor = 1;  // HTTP/1.<minor>
  HeaderList headers;
  std::string body;
  bool keep_alive = true;
  bool expects_continue = false;
  std::size_t header_bytes = 0;  // request line + fields as received
};

// True when the path has a "." or ".." segment, literal or percent-encoded:
// such a path could climb out of the route's upstream path.
bool has_dot_segment(std::string_view path);

// `path` as a lenient server may read it, for checks only: percent-encoded unreserved
// characters, '/' and '\' decoded once, '\' taken for '/', ';' parameters dropped, runs of
// '/' merged. "/a/%61dmin", "/a//admin" and "/a/admin;x" all read as "/a/admin".
std::string lenient_path(std::string_view path);

}  // namespace mcpgate::http
