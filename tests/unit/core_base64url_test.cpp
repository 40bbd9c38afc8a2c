// Tests for base64url without padding (RFC 4648 §5), strict on decode (RFC 7515 §2).
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "core/base64url.h"

using mcpgate::core::base64url_decode;
using mcpgate::core::base64url_encode;

TEST_CASE("base64url: encode without padding") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_encode(std::string("\0\0\0", 3)) == "AAAA");
}

TEST_CASE("base64url: decode round-trips and refuses anything non-canonical") {
  for (const std::string& bytes : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                                   std::string("\xfb\xff\x00\x01", 4)}) {
    CAPTURE(bytes);
    CHECK(base64url_decode(base64url_encode(bytes)) == std::optional<std::string>(bytes));
  }
  CHECK(base64url_decode("-_8") == std::optional<std::string>("\xfb\xff"));
  for (const char* bad : {"Zm9v=", "Zg==", "Zm+v", "Zm/v", "Zm9 v", "Z", "Zm9vY", "Zh", "Zm9", "-_9"}) {
    CAPTURE(bad);  // "Zh", "Zm9", "-_9": non-zero spare bits (a second spelling of "f", "fo", "\xfb\xff")
    CHECK_FALSE(base64url_decode(bad).has_value());
  }
}
