// Tests for the in-place JSON reader: it must agree with jansson (the project's JSON library,
// and what the gateway used before) on what is JSON, so a body is never read two ways.
#include <doctest/doctest.h>
#include <jansson.h>

#include <string>
#include <vector>

#include "core/json_scan.h"

namespace js = mcpgate::core::json_scan;

namespace {

js::Verdict jansson_verdict(const std::string& text) {
  json_error_t error;
  json_t* root = json_loadb(text.data(), text.size(), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error);
  if (root != nullptr) {
    json_decref(root);
    return js::Verdict::Valid;
  }
  return json_error_code(&error) == json_error_duplicate_key ? js::Verdict::DuplicateKey : js::Verdict::Invalid;
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("json_scan: agrees with jansson on valid, invalid and duplicate-key texts") {
  const std::vector<std::string> valid = {
      "{}", "[]", " 1 ", "\"x\"", "-0.5e+10", "0", "-0", "1E-2", "true", "false", "null", "\t[ 1 , \"a\" ]\r\n",
      R"({"a":[1,{"b":null}],"c":"\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"})", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
      R"({"a":{"a":1}})", R"({"a":1,"b":{"c":1},"c":2})", R"([{"k":1},{"k":1}])", nested(2048),
      R"({"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10})"};
  const std::vector<std::string> invalid = {
      "", " ", "{", "}", "[", R"({"a"})", R"({"a":1,})", "[1,]", "01", "1.", ".5", "1e", "+1", "-", "--1",
      "\"\x01\"", R"("\u0000")", R"({"\u0000":1})", R"("\ud800")", R"("\udc00")", R"("\ud800\u0041")", R"("\q")",
      R"("\u12")", R"("\u12g4")", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
      "\"\xff\"", "\"\x80\"", "tru", "nulls", "[1] 2", R"({"a":1}})", "\"abc", nested(2049), "{1:2}", "['a']",
      std::string("\"a\0b\"", 5)};
  const std::vector<std::string> duplicates = {
      R"({"a":1,"a":2})", R"({"a":1,"\u0061":2})", R"([{"x":{"k":1,"k":1}}])",
      R"({"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":10})",
      R"({"a":{},"b":[],"c":"","b":1})"};
  for (const auto& text : valid) {
    CAPTURE(text);
    CHECK(js::Document(text).verdict() == js::Verdict::Valid);
    CHECK(jansson_verdict(text) == js::Verdict::Valid);
  }
  for (const auto& text : invalid) {
    CAPTURE(text);
    CHECK(js::Document(text).verdict() == js::Verdict::Invalid);
    CHECK(jansson_verdict(text) == js::Verdict::Invalid);
  }
  for (const auto& text : duplicates) {
    CAPTURE(text);
    CHECK(js::Document(text).verdict() == js::Verdict::DuplicateKey);
    CHECK(jansson_verdict(text) == js::Verdict::DuplicateKey);
  }
}

TEST_CASE("json_scan: numbers are checked for grammar only (where jansson refuses what JSON allows)") {
  // jansson cannot hold these; RFC 8259 allows them, and the gateway reads no numbers but ids.
  CHECK(js::Document("123456789012345678901234567890").verdict() == js::Verdict::Valid);
  CHECK(js::Document("1e999").verdict() == js::Verdict::Valid);
}

TEST_CASE("json_scan: walking validated text") {
  const std::string text = R"( {"a" : [1, "x]", {"b":"}"}] , "na\u006de":"t\u00e9\ud83d\ude00", "e":{}, "n":-1.5e3 } )";
  const js::Document doc(text);
  REQUIRE(doc.valid());
  const std::size_t root = doc.root();
  CHECK(doc.kind(root) == '{');
  CHECK(doc.end_of(root) == text.size() - 1);
  const std::size_t name = doc.find_member(root, "name");
  REQUIRE(name != std::string::npos);
  CHECK(doc.string_at(name) == "t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(doc.string_equals(name, "t\xc3\xa9\xf0\x9f\x98\x80"));
  CHECK_FALSE(doc.string_equals(name, "t"));
  CHECK(doc.find_member(root, "missing") == std::string::npos);
  const std::size_t number = doc.find_member(root, "n");
  CHECK(text.substr(number, doc.end_of(number) - number) == "-1.5e3");
  std::vector<std::string> elements;
  doc.for_each_element(doc.find_member(root, "a"), [&](std::size_t at, std::size_t end) {
    elements.push_back(text.substr(at, end - at));
    return true;
  });
  CHECK(elements == std::vector<std::string>{"1", "\"x]\"", R"({"b":"}"})"});
  std::vector<std::string> keys;
  doc.for_each_member(root, [&](std::size_t key_at, std::size_t) {
    keys.push_back(doc.string_at(key_at));
    return true;
  });
  CHECK(keys == std::vector<std::string>{"a", "name", "e", "n"});
  int members = 0;
  doc.for_each_member(doc.find_member(root, "e"), [&](std::size_t, std::size_t) { return ++members, true; });
  CHECK(members == 0);
  const js::Document empty_array("[ ]");
  empty_array.for_each_element(empty_array.root(), [&](std::size_t, std::size_t) { return ++members, true; });
  CHECK(members == 0);
}

TEST_CASE("json_scan: long strings, escapes and multi-byte text across the 16-byte steps") {
  // Every offset of a special byte relative to a step boundary, in checked and skipped scans.
  for (std::size_t pad = 0; pad < 40; ++pad) {
    CAPTURE(pad);
    const std::string filler(pad, 'x');
    const std::string text = "{\"k\":\"" + filler + "\\\"" + filler + "\xc3\xa9" + filler + "\",\"z\":1}";
    const js::Document doc(text);
    REQUIRE(doc.valid());
    CHECK(doc.string_at(doc.find_member(doc.root(), "k")) == filler + "\"" + filler + "\xc3\xa9" + filler);
    CHECK(doc.find_member(doc.root(), "z") == text.size() - 2);
    CHECK(js::Document("\"" + filler + "\x01" + filler + "\"").verdict() == js::Verdict::Invalid);
    CHECK(js::Document("\"" + filler + "\xc3" + "\"").verdict() == js::Verdict::Invalid);
  }
}
