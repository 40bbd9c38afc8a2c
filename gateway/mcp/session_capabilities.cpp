#include "mcp/session_capabilities.h"

namespace mcpgate::mcp {

void SessionCapabilities::remember(const std::string& session_id, bool url_elicitation) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = url_elicitation_.insert_or_assign(session_id, url_elicitation);
  if (!inserted) return;
  order_.push_back(session_id);
  while (order_.size() > capacity_) {
    url_elicitation_.erase(order_.front());
    order_.pop_front();
  }
}

bool SessionCapabilities::url_elicitation(const std::string& session_id) const {
  std::lock_guard lock(mutex_);
  auto found = url_elicitation_.find(session_id);
  return found != url_elicitation_.end() && found->second;
}

}  // namespace mcpgate::mcp
