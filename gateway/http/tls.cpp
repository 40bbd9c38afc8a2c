#include "http/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace mcpgate::http {
namespace {

std::string openssl_reason() {
  const unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

// Selects http/1.1 when the client offers it; no overlap means no ALPN (the
// client may still speak HTTP/1.1) rather than a failed handshake.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  static const unsigned char kHttp11[] = "\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TlsContextPtr make_server_tls_context(const std::string& cert_file, const std::string& key_file) {
  TlsContextPtr context(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free);
  if (!context) throw std::runtime_error("TLS: cannot create context: " + openssl_reason());
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: ECDHE with AEAD only. TLS 1.3 suites are all modern; OpenSSL's defaults stay.
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") != 1)
    throw std::runtime_error("TLS: cipher list rejected: " + openssl_reason());
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    throw std::runtime_error("TLS: cannot load certificate '" + cert_file + "': " + openssl_reason());
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS: cannot load private key '" + key_file + "': " + openssl_reason());
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw std::runtime_error("TLS: private key '" + key_file + "' does not match the certificate: " + openssl_reason());
  SSL_CTX_set_alpn_select_cb(ctx, &select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  return context;
}

}  // namespace mcpgate::http
