#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/file_watch.h"

namespace fs = std::filesystem;
using mcpgate::config::FileWatch;

namespace {

void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("file watch: in-place writes, a Kubernetes-style symlink swap, removal and return") {
  char pattern[] = "/tmp/mcpgate-watch-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  const fs::path dir = pattern;
  // dir/config.yaml -> ..data/config.yaml, ..data -> ..v1 (as a mounted ConfigMap looks)
  fs::create_directory(dir / "..v1");
  write(dir / "..v1" / "config.yaml", "one");
  fs::create_directory_symlink("..v1", dir / "..data");
  fs::create_symlink("..data/config.yaml", dir / "config.yaml");

  FileWatch watch({(dir / "config.yaml").string()});
  CHECK_FALSE(watch.changed());

  // The update: a new directory, a new ..data link renamed over the old one.
  fs::create_directory(dir / "..v2");
  write(dir / "..v2" / "config.yaml", "two");
  fs::create_directory_symlink("..v2", dir / "..data_tmp");
  fs::rename(dir / "..data_tmp", dir / "..data");
  CHECK(watch.changed());
  CHECK_FALSE(watch.changed());  // seen once

  // An in-place write of another length.
  write(dir / "..v2" / "config.yaml", "three!");
  CHECK(watch.changed());

  fs::remove(dir / "..v2" / "config.yaml");
  CHECK(watch.changed());  // gone
  CHECK_FALSE(watch.changed());
  write(dir / "..v2" / "config.yaml", "back");
  CHECK(watch.changed());
  fs::remove_all(dir);
}
