#include "config/file_watch.h"

#include <sys/stat.h>

namespace mcpgate::config {

FileWatch::FileWatch(std::vector<std::string> paths) : paths_(std::move(paths)) {
  for (const auto& path : paths_) stamps_.push_back(stamp_of(path));
}

bool FileWatch::changed() {
  bool any = false;
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    const Stamp now = stamp_of(paths_[i]);
    if (now == stamps_[i]) continue;
    stamps_[i] = now;
    any = true;
  }
  return any;
}

FileWatch::Stamp FileWatch::stamp_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {};
  return {true, static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino), static_cast<uint64_t>(info.st_size),
          static_cast<int64_t>(info.st_mtim.tv_sec), static_cast<int64_t>(info.st_mtim.tv_nsec)};
}

std::vector<std::string> watched_files(const Config& config) {
  std::vector<std::string> files{config.source_path};
  if (config.server.tls) {
    files.push_back(config.server.tls->cert_file);
    files.push_back(config.server.tls->key_file);
  }
  return files;
}

}  // namespace mcpgate::config
