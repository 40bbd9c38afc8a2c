// Server TLS context: TLS 1.2+ only, forward-secret AEAD ciphers, ALPN http/1.1.
#pragma once

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace mcpgate::http {

using TlsContextPtr = std::shared_ptr<SSL_CTX>;

// Loads the certificate chain and key. Reads files: call it off the event loops.
// Throws std::runtime_error naming the file and OpenSSL's reason.
TlsContextPtr make_server_tls_context(const std::string& cert_file, const std::string& key_file);

}  // namespace mcpgate::http
