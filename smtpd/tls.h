// TLS for smtpd: one OpenSSL server context per listener, loaded before the sandbox (the
// key never has to be read again), and the facts a session exports about its TLS link.
// TLS 1.2 is the minimum; a peer that closes without close_notify is treated as EOF
// (libevent 2.1 + OpenSSL 3 would otherwise report an error, architecture-anchors §4.2).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace sppd::smtpd {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

class TlsContext {
 public:
  // Loads the certificate chain and key; throws std::runtime_error with OpenSSL's reason.
  TlsContext(const std::string& certificate, const std::string& key);
  // A new server-side SSL for one connection (owned by the caller or its bufferevent).
  SSL* new_session() const;

 private:
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
};

// What sslserver exports about a TLS session (ucspi-ssl): SSL_PROTOCOL ("TLSv1.3"),
// SSL_CIPHER, SSL_CIPHER_USEKEYSIZE, SSL_CIPHER_ALGKEYSIZE.
struct TlsFacts {
  std::string protocol;
  std::string cipher;
  int use_bits = 0;
  int alg_bits = 0;
};
TlsFacts tls_facts(const SSL* ssl);

// Primes OpenSSL (library init, random generator) while files may still be opened.
void prepare_tls_library();

}  // namespace sppd::smtpd
