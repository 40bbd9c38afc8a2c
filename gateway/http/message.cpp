#include "http/message.h"

#include <algorithm>
#include <cctype>

namespace mcpgate::http {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

void HeaderList::add(std::string name, std::string value) {
  fields_.push_back({std::move(name), std::move(value)});
}

void HeaderList::set(std::string_view name, std::string value) {
  remove(name);
  fields_.push_back({std::string(name), std::move(value)});
}

void HeaderList::remove(std::string_view name) {
  std::erase_if(fields_, [&](const Header& h) { return iequals(h.name, name); });
}

std::optional<std::string_view> HeaderList::get(std::string_view name) const {
  for (const auto& h : fields_)
    if (iequals(h.name, name)) return std::string_view(h.value);
  return std::nullopt;
}

std::size_t HeaderList::count(std::string_view name) const {
  return std::count_if(fields_.begin(), fields_.end(),
                       [&](const Header& h) { return iequals(h.name, name); });
}

}  // namespace mcpgate::http
