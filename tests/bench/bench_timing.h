// Timing for the in-process microbenchmarks (tests/bench): bounded runs, median of kRuns.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace mcpgate::bench {

constexpr int kRuns = 5;

// Keeps `value` alive as far as the optimizer can tell (as benchmark::DoNotOptimize).
template <typename T>
inline void keep(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

struct Sample {
  double ns_per_op = 0;
  uint64_t iterations = 0;
};

struct Limits {
  uint64_t max_iterations = 20000;
  double max_seconds = 2.0;
};

// One run of `op`: `batch` calls between clock reads, until max_iterations or
// max_seconds, whichever first.
template <typename Op>
Sample run_once(const Limits& limits, uint64_t batch, Op&& op) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = std::chrono::duration<double>(limits.max_seconds);
  const auto start = Clock::now();
  auto now = start;
  uint64_t done = 0;
  while (done < limits.max_iterations && now - start < deadline) {
    const uint64_t n = std::min(batch, limits.max_iterations - done);
    for (uint64_t i = 0; i < n; ++i) op();
    done += n;
    now = Clock::now();
  }
  return {std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(done), done};
}

// Median ns/op of kRuns timed runs, after one shorter untimed warm-up run.
template <typename Op>
Sample measure(const Limits& limits, uint64_t batch, Op&& op) {
  run_once(Limits{std::max<uint64_t>(limits.max_iterations / 10, 1), limits.max_seconds / 10}, batch, op);
  std::vector<Sample> samples;
  for (int run = 0; run < kRuns; ++run) samples.push_back(run_once(limits, batch, op));
  std::sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) { return a.ns_per_op < b.ns_per_op; });
  return samples[kRuns / 2];
}

}  // namespace mcpgate::bench
