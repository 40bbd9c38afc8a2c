// Logging: one asynchronous stdout logger (the loops never wait on a slow pipe),
// JSON lines or text, with anything token-like masked in every line.
#pragma once

#include <spdlog/common.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace mcpgate::observability {

// Installs the default logger; safe to call again on reload (level and format change).
void setup_logging(const config::LogConfig& log);

// Replaces bearer credentials, JWTs and secret-named query/form values with "***".
std::string mask_secrets(std::string_view text);

// Escapes `text` for use inside a JSON string literal.
std::string json_escape(std::string_view text);

// One structured log line: LogEvent(info, "access").field("route", r).emit().
class LogEvent {
 public:
  LogEvent(spdlog::level::level_enum level, std::string_view message);
  LogEvent& field(std::string_view key, std::string_view value);
  LogEvent& field(std::string_view key, const char* value) { return field(key, std::string_view(value)); }
  LogEvent& field(std::string_view key, int64_t value);
  LogEvent& field(std::string_view key, double value);
  void emit();
  // To the audit stream: the same output, under the logger name "audit", always at info.
  void emit_audit();

 private:
  spdlog::level::level_enum level_;
  std::string fields_;
};

}  // namespace mcpgate::observability
