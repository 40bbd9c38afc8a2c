// Notices when files change, as stat() sees them through symlinks (device, inode, size, mtime):
// an in-place write, an atomic rename and a Kubernetes ConfigMap symlink swap all count. For the
// control thread only: stat() is disk I/O and never runs on an event loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace mcpgate::config {

class FileWatch {
 public:
  explicit FileWatch(std::vector<std::string> paths);
  // True when a file's stamp differs from what the previous call (or the constructor) saw.
  bool changed();

 private:
  struct Stamp {
    bool exists = false;
    uint64_t device = 0, inode = 0, size = 0;
    int64_t mtime_s = 0, mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  static Stamp stamp_of(const std::string& path);

  std::vector<std::string> paths_;
  std::vector<Stamp> stamps_;
};

// What a running gateway reloads on: its config file and the TLS certificate and key.
std::vector<std::string> watched_files(const Config& config);

}  // namespace mcpgate::config
