# Shared by scripts/bench and scripts/soak: install what they need, build (or take) the Release
# gateway, raise the open-file limit, kill what they started. Sourced after scripts/lib/common.sh.
BENCH_DIR="$REPO_ROOT/scripts/lib/bench"

# Installing nginx or haproxy on Debian starts their system services (nginx on 0.0.0.0:80);
# the bench runs its own instances, so the packages are installed with service starts refused.
install_bench_debs() {
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod 755 "$policy" && created=1
  fi
  install_debs "$@" || { [ "$created" = 1 ] && as_root rm -f "$policy"; return 1; }
  [ "$created" = 1 ] && as_root rm -f "$policy"
  return 0
}

# npm packages of the bench only (scripts/lib/bench/package-lock.json), installed when it changed.
install_bench_node_modules() {
  ensure_node
  local stamp="$BENCH_DIR/node_modules/.mcpgate-bench-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$BENCH_DIR/package-lock.json"; then return 0; fi
  log "installing the bench's npm packages from scripts/lib/bench/package-lock.json"
  (cd "$BENCH_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$BENCH_DIR/package-lock.json" "$stamp"
}

# Sets MCPGATE_BIN (and BENCH_MCPGATE_COMMIT, what it was built from): the given binary, or a
# Release build in build-bench/ (not build/, which the tests build RelWithDebInfo).
bench_gateway() {
  if [ -n "${MCPGATE_BIN:-}" ]; then
    MCPGATE_BIN=$(realpath "$MCPGATE_BIN")
    [ -x "$MCPGATE_BIN" ] || { echo "MCPGATE_BIN=$MCPGATE_BIN is not an executable" >&2; exit 1; }
    : "${BENCH_MCPGATE_COMMIT:=given binary; repo HEAD $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}"
  else
    log "building a Release mcpgate into build-bench/"
    cmake -S "$REPO_ROOT" -B "$REPO_ROOT/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$REPO_ROOT/build-bench" --target mcpgate -- -j"$(nproc)"
    MCPGATE_BIN="$REPO_ROOT/build-bench/mcpgate"
    local commit
    if commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null); then
      git -C "$REPO_ROOT" diff --quiet HEAD -- gateway CMakeLists.txt 2>/dev/null || commit="$commit + uncommitted changes"
    else
      commit='?'
    fi
    : "${BENCH_MCPGATE_COMMIT:=$commit}"
  fi
  export MCPGATE_BIN BENCH_MCPGATE_COMMIT
}

# Raises the soft open-file limit as far as the hard one allows (and the hard one, where
# permitted); sets BENCH_NOFILE to the soft limit in force. Children inherit it. Call it
# directly, not in $(...): a subshell's limit is not the script's.
raise_nofile() {
  ulimit -Hn 65536 2>/dev/null || true
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  BENCH_NOFILE=$(ulimit -n)
  export BENCH_NOFILE
}

# kill_recorded FILE: kills every process listed in FILE as "pid starttime" (procs.mjs writes
# it) that still runs with that start time (a reused pid is left alone), with its group.
kill_recorded() {
  local file=$1 pid start now
  [ -f "$file" ] || return 0
  while read -r pid start; do
    [ -r "/proc/$pid/stat" ] || continue
    now=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
    [ "$now" = "$start" ] || continue
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done <"$file"
}
