// What each 2025-era session declared in its initialize that the gateway needs later: URL
// elicitation support (so a missing account link is answered with -32042, not a plain
// error). Shared by the loops of one process; a bounded map under one short-held mutex,
// from which a session ended by DELETE is removed. Replicas do not share it: a session that
// moves answers with the plain error, still with the link.
#pragma once

#include <cstddef>
#include <iterator>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mcpgate::mcp {

class SessionCapabilities {
 public:
  explicit SessionCapabilities(std::size_t capacity = 100000) : capacity_(capacity) {}

  // Records a new session's declaration; the oldest sessions are forgotten past capacity.
  void remember(const std::string& session_id, bool url_elicitation);
  bool url_elicitation(const std::string& session_id) const;
  // Forgets a session that has ended (its DELETE succeeded); unknown ids are ignored.
  void forget(const std::string& session_id);
  // Sessions remembered now.
  std::size_t size() const;

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  struct Entry {
    bool url_elicitation;
    std::list<std::string>::iterator position;  // in order_
  };
  std::list<std::string> order_;  // oldest first
  std::unordered_map<std::string, Entry> sessions_;
};

}  // namespace mcpgate::mcp
