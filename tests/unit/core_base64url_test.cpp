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

TEST_CASE("base64url: every length round-trips, and a bad character anywhere is refused") {
  // Decoding works four characters at a time, then the tail: cover every tail at every length.
  std::string bytes;
  for (int length = 0; length < 70; ++length) {
    const std::string text = base64url_encode(bytes);
    CAPTURE(length);
    CHECK(base64url_decode(text) == std::optional<std::string>(bytes));
    for (std::size_t at = 0; at < text.size(); ++at) {
      for (char bad : {'=', '+', '/', ' ', '\0', '\x80'}) {
        std::string broken = text;
        broken[at] = bad;
        CAPTURE(at);
        CHECK_FALSE(base64url_decode(broken).has_value());
      }
    }
    bytes.push_back(static_cast<char>(length * 37 + 11));
  }
}
