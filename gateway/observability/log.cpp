#include "observability/log.h"

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cctype>
#include <cstdio>

namespace mcpgate::observability {
namespace {

// Marks a message whose text is already JSON fields (from LogEvent).
constexpr char kStructuredMarker = '\x1e';

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' ||
         c == '/' || c == '=';
}

bool ieq_prefix(std::string_view text, std::size_t at, std::string_view word) {
  if (text.size() - at < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[at + i])) != word[i]) return false;
  return true;
}

bool is_secret_key(std::string_view key) {
  static constexpr std::array<std::string_view, 9> kWords = {"token", "secret", "password", "passwd", "session",
                                                             "code", "key", "sig", "auth"};
  std::string lowered;
  for (char c : key) lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (auto word : kWords)
    if (lowered.find(word) != std::string::npos) return true;
  return false;
}

class MessageFlag : public spdlog::custom_flag_formatter {
 public:
  explicit MessageFlag(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    const bool structured = !text.empty() && text.front() == kStructuredMarker;
    if (structured) text.remove_prefix(1);
    // LogEvent fields were masked before escaping; plain messages are masked here.
    std::string line = structured ? std::string(text) : mask_secrets(text);
    if (json_ && !structured) line = "\"msg\":\"" + json_escape(line) + "\"";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<MessageFlag>(json_); }

 private:
  bool json_;
};

}  // namespace

namespace {
// The audit stream: stdout like the rest, told apart by its logger name. Made with the main one.
std::shared_ptr<spdlog::logger> g_audit;
}  // namespace

void setup_logging(const config::LogConfig& log) {
  static std::shared_ptr<spdlog::logger> logger = [] {
    // Every slot of the queue (~400 bytes) is resident from the start: 8192 lines (over a second
    // of access and audit lines at full load) cost 3.2 MiB, where 16384 was a third of idle RSS.
    spdlog::init_thread_pool(8192, 1);
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    // A full queue drops the oldest line rather than stall an event loop.
    auto async = std::make_shared<spdlog::async_logger>("mcpgate", sink, spdlog::thread_pool(),
                                                        spdlog::async_overflow_policy::overrun_oldest);
    g_audit = std::make_shared<spdlog::async_logger>("audit", sink, spdlog::thread_pool(),
                                                     spdlog::async_overflow_policy::overrun_oldest);
    spdlog::set_default_logger(async);
    spdlog::flush_every(std::chrono::seconds(1));
    return async;
  }();
  const bool json = log.format == config::LogFormat::Json;
  for (const auto& target : {logger, g_audit}) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<MessageFlag>('*', json);
    formatter->set_pattern(json ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n",%*})"
                                : "%Y-%m-%dT%H:%M:%S.%eZ %l %n %*");
    target->set_formatter(std::move(formatter));
    target->flush_on(spdlog::level::warn);
  }
  logger->set_level(spdlog::level::from_str(log.level));
  g_audit->set_level(spdlog::level::info);  // audit records do not depend on the log level
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out.append(escaped);
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

// Works on raw text (before JSON escaping), so a masked span never eats an escape.
std::string mask_secrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    // "Bearer xyz" / "Basic xyz" (any run of spaces or tabs): keep the scheme, hide the credential.
    bool masked_scheme = false;
    for (std::string_view scheme : {"bearer", "basic"}) {
      const std::size_t after = i + scheme.size();
      if (!ieq_prefix(text, i, scheme) || after >= text.size() || (text[after] != ' ' && text[after] != '\t') ||
          (i > 0 && std::isalnum(static_cast<unsigned char>(text[i - 1]))))
        continue;
      std::size_t start = after;
      while (start < text.size() && (text[start] == ' ' || text[start] == '\t')) ++start;
      std::size_t end = start;
      while (end < text.size() && is_token_char(text[end])) ++end;
      out.append(text.substr(i, start - i));
      if (end > start) out.append("***");
      i = end;
      masked_scheme = true;
      break;
    }
    if (masked_scheme) continue;
    // A JWT anywhere: eyJ... with dots.
    if (text.compare(i, 3, "eyJ") == 0) {
      std::size_t end = i;
      int dots = 0;
      while (end < text.size() && is_token_char(text[end])) dots += text[end++] == '.';
      if (dots >= 1) {
        out.append("***");
        i = end;
        continue;
      }
    }
    // key=value where the key names a secret; a quoted value is masked to its closing quote.
    if (text[i] == '=' && i > 0) {
      std::size_t key_start = i;
      while (key_start > 0 && (std::isalnum(static_cast<unsigned char>(text[key_start - 1])) ||
                               text[key_start - 1] == '_' || text[key_start - 1] == '-'))
        --key_start;
      if (is_secret_key(text.substr(key_start, i - key_start))) {
        out.push_back('=');
        std::size_t end = i + 1;
        if (end < text.size() && (text[end] == '"' || text[end] == '\'')) {
          const char quote = text[end];
          const std::size_t close = text.find(quote, end + 1);
          end = close == std::string_view::npos ? text.size() : close + 1;
          out.push_back(quote);
          out.append("***");
          if (close != std::string_view::npos) out.push_back(quote);
        } else {
          while (end < text.size() && text[end] != '&' && text[end] != '"' && text[end] != ' ' &&
                 text[end] != ',' && text[end] != ';' && text[end] != '\'')
            ++end;
          if (end > i + 1) out.append("***");
        }
        i = end;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

LogEvent::LogEvent(spdlog::level::level_enum level, std::string_view message) : level_(level) {
  fields_.push_back(kStructuredMarker);
  fields_.append("\"msg\":\"").append(json_escape(mask_secrets(message))).append("\"");
}

LogEvent& LogEvent::field(std::string_view key, std::string_view value) {
  fields_.append(",\"").append(key).append("\":\"").append(json_escape(mask_secrets(value))).append("\"");
  return *this;
}

LogEvent& LogEvent::field(std::string_view key, int64_t value) {
  fields_.append(",\"").append(key).append("\":").append(std::to_string(value));
  return *this;
}

LogEvent& LogEvent::field(std::string_view key, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  fields_.append(",\"").append(key).append("\":").append(text);
  return *this;
}

void LogEvent::emit() { spdlog::default_logger_raw()->log(level_, fields_); }

void LogEvent::emit_audit() {
  if (g_audit) g_audit->log(spdlog::level::info, fields_);
}

}  // namespace mcpgate::observability
