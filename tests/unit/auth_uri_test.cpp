// Tests for the canonical resource URI used to compare a token's audience with
// a route's resource (RFC 8707, MCP authorization).
#include <doctest/doctest.h>

#include "auth/uri.h"

using mcpgate::auth::canonical_resource_uri;

TEST_CASE("uri: scheme and host are lowercased, the path is not") {
  CHECK(canonical_resource_uri("HTTPS://MCP.Example.COM/Notes") == "https://mcp.example.com/Notes");
  CHECK(canonical_resource_uri("https://mcp.example.com/notes") == "https://mcp.example.com/notes");
}

TEST_CASE("uri: default ports are dropped, others kept") {
  CHECK(canonical_resource_uri("https://mcp.example.com:443/notes") == "https://mcp.example.com/notes");
  CHECK(canonical_resource_uri("http://mcp.example.com:80/notes") == "http://mcp.example.com/notes");
  CHECK(canonical_resource_uri("https://mcp.example.com:80/notes") == "https://mcp.example.com:80/notes");
  CHECK(canonical_resource_uri("http://mcp.example.com:443") == "http://mcp.example.com:443");
  CHECK(canonical_resource_uri("https://mcp.example.com:8443/") == "https://mcp.example.com:8443");
  CHECK(canonical_resource_uri("https://mcp.example.com:/x") == "https://mcp.example.com/x");
}

TEST_CASE("uri: one trailing slash and the fragment are dropped") {
  CHECK(canonical_resource_uri("https://mcp.example.com/") == "https://mcp.example.com");
  CHECK(canonical_resource_uri("https://mcp.example.com") == "https://mcp.example.com");
  CHECK(canonical_resource_uri("https://mcp.example.com/notes/") == "https://mcp.example.com/notes");
  CHECK(canonical_resource_uri("https://mcp.example.com/notes//") == "https://mcp.example.com/notes/");
  CHECK(canonical_resource_uri("https://mcp.example.com/notes#top") == "https://mcp.example.com/notes");
  CHECK(canonical_resource_uri("https://mcp.example.com/notes/#top") == "https://mcp.example.com/notes");
  CHECK(canonical_resource_uri("HTTPS://MCP.Example.com:443/notes/") == "https://mcp.example.com/notes");
}

TEST_CASE("uri: the query is kept, the path before it trimmed") {
  CHECK(canonical_resource_uri("https://mcp.example.com/notes/?tenant=A") == "https://mcp.example.com/notes?tenant=A");
  CHECK(canonical_resource_uri("https://MCP.example.com?x=Y#f") == "https://mcp.example.com?x=Y");
}

TEST_CASE("uri: IPv6 literals, userinfo and non-URIs") {
  CHECK(canonical_resource_uri("https://[::1]:443/mcp") == "https://[::1]/mcp");
  CHECK(canonical_resource_uri("https://[::1]:8443/mcp") == "https://[::1]:8443/mcp");
  CHECK(canonical_resource_uri("https://[FE80::1]/mcp") == "https://[fe80::1]/mcp");
  CHECK(canonical_resource_uri("https://User@Host.example:443/") == "https://User@host.example");
  CHECK(canonical_resource_uri("notes-client") == "notes-client");
  CHECK(canonical_resource_uri("urn:example:Notes") == "urn:example:Notes");
  CHECK(canonical_resource_uri("") == "");
  CHECK(canonical_resource_uri("1http://x/") == "1http://x/");
}
