# Shared by scripts/quickstart and scripts/test: install what is missing, build.
# Sourced, not run. Works as root on Debian 12 (uses sudo when not root).

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DEPS=(build-essential cmake ninja-build pkg-config libevent-dev libcurl4-openssl-dev libssl-dev
            libcjose-dev libjansson-dev libyaml-cpp-dev libspdlog-dev doctest-dev libhiredis-dev redis-server
            openssl curl ca-certificates)
# Only scripts/test needs these: the browser the connect-flow test drives (tests/integration/credentials-browser.test.mjs).
TEST_DEPS=(chromium)
# scripts/fuzz and scripts/test's fuzz smoke: Debian's clang 14 and its compiler-rt (libFuzzer,
# the sanitizer runtimes). Not in BUILD_DEPS: the release build and the container image need neither.
FUZZ_DEPS=(clang libclang-rt-14-dev)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages in "$@" that are not installed yet.
install_debs() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Node.js >= 20 runs the MCP servers and SDK clients; Debian 12's own nodejs is 18.
ensure_node() {
  if ! command -v node >/dev/null 2>&1; then install_debs nodejs npm; fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "Node.js >= 20 is required (found $(node --version)); install a Node 20 package and re-run." >&2
    exit 1
  fi
}

# npm packages pinned by package-lock.json, installed only when the lockfile changed.
install_node_modules() {
  ensure_node
  local stamp="$REPO_ROOT/node_modules/.mcpgate-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$REPO_ROOT/package-lock.json"; then return 0; fi
  log "installing npm packages from package-lock.json"
  (cd "$REPO_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$REPO_ROOT/package-lock.json" "$stamp"
}

# build_gateway DIR [cmake args...] [-- targets...]: configures and builds into $REPO_ROOT/DIR
# (the given targets, or all of the default ones). Later cmake args override earlier ones.
build_gateway() {
  local dir="$REPO_ROOT/$1"
  shift
  local args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift && targets=(--target "$@")
  log "building into ${dir#$REPO_ROOT/}${targets[*]:+ (${targets[*]:1})}"
  # -g1 keeps line tables (backtraces and sanitizer reports name file:line) and drops the
  # local-variable debug info, which costs a third of the compile time.
  cmake -S "$REPO_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" "${args[@]}" >/dev/null
  cmake --build "$dir" "${targets[@]}" -- -j"$(nproc)"
}
