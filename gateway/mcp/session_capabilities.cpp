#include "mcp/session_capabilities.h"

namespace mcpgate::mcp {

void SessionCapabilities::remember(const std::string& session_id, bool url_elicitation) {
  std::lock_guard lock(mutex_);
  if (auto found = sessions_.find(session_id); found != sessions_.end()) {
    found->second.url_elicitation = url_elicitation;
    return;
  }
  order_.push_back(session_id);
  sessions_.emplace(session_id, Entry{url_elicitation, std::prev(order_.end())});
  while (order_.size() > capacity_) {
    sessions_.erase(order_.front());
    order_.pop_front();
  }
}

bool SessionCapabilities::url_elicitation(const std::string& session_id) const {
  std::lock_guard lock(mutex_);
  auto found = sessions_.find(session_id);
  return found != sessions_.end() && found->second.url_elicitation;
}

void SessionCapabilities::forget(const std::string& session_id) {
  std::lock_guard lock(mutex_);
  auto found = sessions_.find(session_id);
  if (found == sessions_.end()) return;
  order_.erase(found->second.position);
  sessions_.erase(found);
}

std::size_t SessionCapabilities::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace mcpgate::mcp
