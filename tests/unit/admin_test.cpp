// Tests for the admin token comparison.
#include <doctest/doctest.h>

#include <string>

#include "admin/admin_exchange.h"

using mcpgate::admin::constant_time_equals;

TEST_CASE("admin: constant_time_equals compares whole strings") {
  CHECK(constant_time_equals("", ""));
  CHECK(constant_time_equals("Bearer s3cr3t", "Bearer s3cr3t"));
  CHECK_FALSE(constant_time_equals("Bearer s3cr3t", "Bearer s3cr3T"));
  CHECK_FALSE(constant_time_equals("Bearer s3cr3t", "bearer s3cr3t"));
  CHECK_FALSE(constant_time_equals("Xearer s3cr3t", "Bearer s3cr3t"));  // first byte differs
  CHECK_FALSE(constant_time_equals("Bearer s3cr3", "Bearer s3cr3t"));   // a prefix is not a match
  CHECK_FALSE(constant_time_equals("Bearer s3cr3t", "Bearer s3cr3"));
  CHECK_FALSE(constant_time_equals("Bearer s3cr3tx", "Bearer s3cr3t"));
  CHECK_FALSE(constant_time_equals("", "Bearer "));
  CHECK_FALSE(constant_time_equals("Bearer ", ""));
}

TEST_CASE("admin: constant_time_equals compares every byte, NULs included") {
  using namespace std::string_literals;
  CHECK(constant_time_equals("a\0b"s, "a\0b"s));
  CHECK_FALSE(constant_time_equals("a\0b"s, "a\0c"s));
  CHECK_FALSE(constant_time_equals("abc"s, "ab\0"s));
  CHECK_FALSE(constant_time_equals("\xff\xfe"s, "\xff\xff"s));
  const std::string long_token(4096, 'k');
  std::string almost = long_token;
  almost.back() = 'j';
  CHECK(constant_time_equals(long_token, std::string(4096, 'k')));
  CHECK_FALSE(constant_time_equals(long_token, almost));
}
