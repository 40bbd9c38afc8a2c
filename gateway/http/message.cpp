#include "http/message.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cctype>

namespace mcpgate::http {

namespace {

constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> table{};
  for (unsigned char c = '0'; c <= '9'; ++c) table[c] = true;
  for (unsigned char c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (unsigned char c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) table[c] = true;
  return table;
}();

}  // namespace

bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) { return kTchar[c]; });
}

bool is_field_value(std::string_view value) {
  std::size_t at = 0;
#if defined(__SSE2__)
  // Sixteen bytes a step: every request's bearer token (~1 KiB) passes through here.
  const __m128i control_max = _mm_set1_epi8(0x1f);
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i del = _mm_set1_epi8(0x7f);
  for (; at + 16 <= value.size(); at += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(value.data() + at));
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(chunk, control_max), chunk);  // unsigned <= 0x1f
    const __m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(chunk, tab), control), _mm_cmpeq_epi8(chunk, del));
    if (_mm_movemask_epi8(bad) != 0) return false;
  }
#endif
  for (; at < value.size(); ++at) {
    const auto c = static_cast<unsigned char>(value[at]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

bool is_framing_header(std::string_view name) {
  for (std::string_view reserved : {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te",
                                    "trailer", "keep-alive", "proxy-connection"})
    if (iequals(name, reserved)) return true;
  return false;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%') {
      const int high = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t end = std::min(query.find('&'), query.size());
    const std::string_view pair = query.substr(0, end);
    const std::size_t equals = pair.find('=');
    if (pair.substr(0, equals) == name) return percent_decode(equals == std::string_view::npos ? "" : pair.substr(equals + 1));
    query.remove_prefix(std::min(end + 1, query.size()));
  }
  return std::nullopt;
}

std::optional<std::string> cookie_value(const HeaderList& headers, std::string_view name) {
  for (const auto& field : headers.fields()) {
    if (!iequals(field.name, "Cookie")) continue;
    std::string_view rest = field.value;
    while (!rest.empty()) {
      const std::size_t end = std::min(rest.find(';'), rest.size());
      std::string_view pair = rest.substr(0, end);
      while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
      while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
      const std::size_t equals = pair.find('=');
      if (equals != std::string_view::npos && pair.substr(0, equals) == name) return std::string(pair.substr(equals + 1));
      rest.remove_prefix(std::min(end + 1, rest.size()));
    }
  }
  return std::nullopt;
}

void HeaderList::add(std::string name, std::string value) {
  // Room for a usual message's fields at once, rather than growing 1, 2, 4, 8 (each a copy).
  if (fields_.capacity() == 0) fields_.reserve(kUsualFieldCount);
  fields_.push_back({std::move(name), std::move(value)});
}

void HeaderList::set(std::string_view name, std::string value) {
  remove(name);
  fields_.push_back({std::string(name), std::move(value)});
}

void HeaderList::remove(std::string_view name) {
  std::erase_if(fields_, [&](const Header& h) { return iequals(h.name, name); });
}

std::optional<std::string_view> HeaderList::get(std::string_view name) const {
  for (const auto& h : fields_)
    if (iequals(h.name, name)) return std::string_view(h.value);
  return std::nullopt;
}

std::size_t HeaderList::count(std::string_view name) const {
  return std::count_if(fields_.begin(), fields_.end(),
                       [&](const Header& h) { return iequals(h.name, name); });
}

bool has_dot_segment(std::string_view path) {
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && std::tolower(static_cast<unsigned char>(path[i + 1])) == '2' &&
        std::tolower(static_cast<unsigned char>(path[i + 2])) == 'e') {
      decoded.push_back('.');
      i += 2;
    } else if (path[i] == '%' && i + 2 < path.size() &&
               ((path[i + 1] == '2' && std::tolower(static_cast<unsigned char>(path[i + 2])) == 'f') ||
                (path[i + 1] == '5' && std::tolower(static_cast<unsigned char>(path[i + 2])) == 'c'))) {
      decoded.push_back('/');  // an encoded '/' or '\' separates segments for some upstreams
      i += 2;
    } else {
      decoded.push_back(path[i] == '\\' ? '/' : path[i]);
    }
  }
  std::size_t start = 0;
  while (start <= decoded.size()) {
    std::size_t end = decoded.find('/', start);
    if (end == std::string::npos) end = decoded.size();
    std::string_view segment(decoded.data() + start, end - start);
    segment = segment.substr(0, segment.find(';'));  // "..;x" is ".." to some servlet upstreams
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

std::string lenient_path(std::string_view path) {
  auto unreserved_or_slash = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' ||
           c == '\\';
  };
  std::string out;
  out.reserve(path.size());
  bool in_parameters = false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%' && i + 2 < path.size() && hex_value(path[i + 1]) >= 0 && hex_value(path[i + 2]) >= 0) {
      const char byte = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      if (unreserved_or_slash(byte)) {
        c = byte;
        i += 2;
      }
    }
    if (c == '\\') c = '/';
    if (c == '/') {
      in_parameters = false;
      if (out.empty() || out.back() != '/') out.push_back(c);
      continue;
    }
    if (c == ';') in_parameters = true;
    if (!in_parameters) out.push_back(c);
  }
  return out;
}

}  // namespace mcpgate::http
