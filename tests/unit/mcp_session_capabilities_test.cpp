// Session capabilities: sessions ended by DELETE are forgotten (scripts/soak found the map
// keeping every session ever initialised, up to its 100000 capacity, ~230 bytes each).
#include <doctest/doctest.h>

#include <string>

#include "mcp/session_capabilities.h"

using mcpgate::mcp::SessionCapabilities;

TEST_CASE("session capabilities: a forgotten session is gone and frees its place") {
  SessionCapabilities sessions(2);
  sessions.remember("s1", true);
  sessions.remember("s2", true);
  CHECK(sessions.size() == 2);
  sessions.forget("s1");
  CHECK(sessions.size() == 1);
  CHECK_FALSE(sessions.url_elicitation("s1"));
  CHECK(sessions.url_elicitation("s2"));
  // The freed place is taken by the next session: nothing is evicted.
  sessions.remember("s3", true);
  CHECK(sessions.size() == 2);
  CHECK(sessions.url_elicitation("s2"));
  CHECK(sessions.url_elicitation("s3"));
  // The order is still the oldest first once an entry in the middle went.
  sessions.remember("s4", false);
  CHECK_FALSE(sessions.url_elicitation("s2"));
  CHECK(sessions.url_elicitation("s3"));
  CHECK(sessions.size() == 2);
}

TEST_CASE("session capabilities: forgetting an unknown or already forgotten session is harmless") {
  SessionCapabilities sessions(3);
  sessions.forget("never-seen");
  sessions.remember("s1", true);
  sessions.forget("s1");
  sessions.forget("s1");
  CHECK(sessions.size() == 0);
  sessions.remember("s1", false);  // a session id seen again after its DELETE is new
  CHECK(sessions.size() == 1);
  CHECK_FALSE(sessions.url_elicitation("s1"));
}

TEST_CASE("session capabilities: churned sessions do not accumulate") {
  SessionCapabilities sessions;
  for (int i = 0; i < 10000; ++i) {
    const auto id = "session-" + std::to_string(i);
    sessions.remember(id, i % 2 == 0);
    if (i >= 100) sessions.forget("session-" + std::to_string(i - 100));  // 100 live at a time
  }
  CHECK(sessions.size() == 100);
  CHECK(sessions.url_elicitation("session-9998"));
  CHECK_FALSE(sessions.url_elicitation("session-100"));
}
