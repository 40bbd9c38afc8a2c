// Cost per request of the session envelope on multi-endpoint routes: unwrap (every request
// carrying Mcp-Session-Id) and wrap (each response naming a new upstream session), AES-256-GCM
// through proxy::SessionEnvelope exactly as ProxyExchange calls it. Single-threaded, no I/O.
//
// Usage: mcpgate_session_envelope_bench [MAX_ITERATIONS=200000] [MAX_SECONDS=2]
#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_timing.h"
#include "credentials/token_sealer.h"
#include "proxy/session_envelope.h"

using namespace mcpgate;

int main(int argc, char** argv) {
  bench::Limits limits{200000, 2.0};
  if (argc > 1) limits.max_iterations = std::strtoull(argv[1], nullptr, 10);
  if (argc > 2) limits.max_seconds = std::strtod(argv[2], nullptr);
  if (limits.max_iterations == 0 || !(limits.max_seconds > 0)) {
    std::fprintf(stderr, "usage: mcpgate_session_envelope_bench [MAX_ITERATIONS] [MAX_SECONDS]\n");
    return 2;
  }
  config::SessionEnvelopeConfig keys;
  keys.keys.push_back({"k2", credentials::random_key()});
  keys.keys.push_back({"k1", credentials::random_key()});  // a rotation in progress: two keys to look through
  const auto envelope = proxy::make_session_envelope(keys, credentials::random_key());
  // What server-everything hands out (a UUID) on an endpoint of typical length.
  const proxy::SessionTarget target{"http://10.0.12.34:3001/mcp", "6f1c7a52-3c1e-4c8e-9d41-0d6e2d0c5b7e"};
  const std::string sealed = envelope->wrap("notes", target);

  const auto unwrap = bench::measure(limits, 64, [&] {
    auto opened = envelope->unwrap("notes", sealed);
    bench::keep(opened);
    if (!opened) std::abort();
  });
  const auto wrap = bench::measure(limits, 64, [&] {
    auto fresh = envelope->wrap("notes", target);
    bench::keep(fresh);
  });
  const std::string tampered = sealed.substr(0, sealed.size() - 1) + (sealed.back() == 'A' ? 'B' : 'A');
  const auto reject = bench::measure(limits, 64, [&] {
    auto opened = envelope->unwrap("notes", tampered);
    bench::keep(opened);
  });
  std::printf("mcpgate session envelope cost (single thread, %s)\n", OpenSSL_version(OPENSSL_VERSION));
  std::printf("runs: median of %d, each bounded by %llu iterations or %.1f s; envelope %zu bytes\n\n", bench::kRuns,
              static_cast<unsigned long long>(limits.max_iterations), limits.max_seconds, sealed.size());
  std::printf("| operation | µs per call |\n|---|---|\n");
  std::printf("| unwrap (each request with a session) | %.2f |\n", unwrap.ns_per_op / 1000);
  std::printf("| wrap (each new upstream session id) | %.2f |\n", wrap.ns_per_op / 1000);
  std::printf("| reject a tampered envelope | %.2f |\n", reject.ns_per_op / 1000);
  return 0;
}
