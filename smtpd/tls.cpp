// TlsContext and TLS facts (see tls.h). Loaded as root or the invoking user before the
// sandbox; used inside it only through the SSL objects it creates.
#include "smtpd/tls.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace sppd::smtpd {
namespace {

std::string openssl_error(const std::string& what) {
  unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return what + ": " + text;
}

}  // namespace

TlsContext::TlsContext(const std::string& certificate, const std::string& key)
    : ctx_(SSL_CTX_new(TLS_server_method())) {
  if (!ctx_) throw std::runtime_error(openssl_error("cannot create a TLS context"));
  SSL_CTX* ctx = ctx_.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // No compression (CRIME), server cipher order, and a peer's missing close_notify is EOF.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle sessions give their buffers back
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()) != 1) {
    throw std::runtime_error(openssl_error("cannot load the certificate " + certificate));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error(openssl_error("cannot load the key " + key));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw std::runtime_error(openssl_error("key " + key + " does not match " + certificate));
  }
}

SSL* TlsContext::new_session() const { return SSL_new(ctx_.get()); }

TlsFacts tls_facts(const SSL* ssl) {
  TlsFacts facts;
  facts.protocol = SSL_get_version(ssl);
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  if (cipher) {
    facts.cipher = SSL_CIPHER_get_name(cipher);
    facts.use_bits = SSL_CIPHER_get_bits(cipher, &facts.alg_bits);
  }
  return facts;
}

void prepare_tls_library() {
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr);
  unsigned char seed[16];
  RAND_bytes(seed, sizeof(seed));  // opens whatever the generator needs, now
}

}  // namespace sppd::smtpd
