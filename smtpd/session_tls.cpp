// TLS in the session: STARTTLS (RFC 3207) and implicit TLS (SMTPS), terminated here with
// libevent's OpenSSL bufferevents. Plaintext a client pipelined behind STARTTLS is thrown
// away, never read as a command (the CVE-2011-0411 class of injection). After the handshake
// the SMTP state starts over and the session exports sslserver's SSL_* variables.
#include <event2/bufferevent_ssl.h>
#include <unistd.h>

#include "common/log.h"
#include "smtpd/session.h"

namespace sppd::smtpd {

void Session::cmd_starttls(const std::string& arg) {
  if (tls_active_ || tls_handshaking_) {
    reply("503 5.5.1 TLS already active");
    return;
  }
  if (!settings_.tls) {
    reply("502 5.5.1 unimplemented");
    return;
  }
  if (!arg.empty()) {
    reply("501 5.5.4 Syntax error (no parameters allowed)");
    return;
  }
  // Whatever followed STARTTLS in this read was sent in plaintext: drop it unread, and read
  // nothing more in plaintext; the handshake starts once the 220 has gone out (on_write).
  evbuffer* input = bufferevent_get_input(client_.get());
  evbuffer_drain(input, evbuffer_get_length(input));
  starttls_pending_ = true;  // before the flush: the 220 goes through the bufferevent
  reply("220 2.0.0 ready for tls");
  flush();
  set_busy(true);
  pause_reading();
}

void Session::start_tls() {
  starttls_pending_ = false;
  // TLS directly on the socket (no filter layer): the plaintext bufferevent goes, keeping the
  // connection through a duplicate of its descriptor. Plaintext that arrived after the 220
  // can only be the client's TLS hello, still unread in the kernel.
  evbuffer* input = bufferevent_get_input(client_.get());
  evbuffer_drain(input, evbuffer_get_length(input));
  int fd = dup(bufferevent_getfd(client_.get()));
  SSL* ssl = fd >= 0 ? settings_.tls->new_session() : nullptr;
  client_.reset();
  bufferevent* tls =
      ssl ? bufferevent_openssl_socket_new(context_.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                           BEV_OPT_CLOSE_ON_FREE)
          : nullptr;
  if (!tls) {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) close(fd);
    finish("cannot start TLS");
    return;
  }
  client_.reset(tls);
  busy_ = false;
  reading_paused_ = false;
  tls_handshaking_ = true;
  bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
  bufferevent_setcb(tls, on_read, on_write, on_event, this);
  bufferevent_setwatermark(tls, EV_READ, 0, 256 * 1024);
  timeval timeout{settings_.timeoutsmtpd, 0};
  bufferevent_set_timeouts(tls, &timeout, &timeout);
  bufferevent_enable(tls, EV_READ | EV_WRITE);
  tls_timer_.reset(evtimer_new(context_.base, on_tls_timeout, this));
  timeval limit{settings_.listener.tls_handshake_timeout, 0};
  evtimer_add(tls_timer_.get(), &limit);
}

void Session::on_tls_timeout(evutil_socket_t, short, void* self) {
  static_cast<Session*>(self)->finish("TLS handshake timed out");
}

void Session::on_tls_established() {
  tls_handshaking_ = false;
  tls_active_ = true;
  tls_timer_.reset();
  TlsFacts facts = tls_facts(bufferevent_openssl_get_ssl(client_.get()));
  set_env("SSL_PROTOCOL", facts.protocol);
  set_env("SSL_CIPHER", facts.cipher);
  set_env("SSL_CIPHER_USEKEYSIZE", std::to_string(facts.use_bits));
  set_env("SSL_CIPHER_ALGKEYSIZE", std::to_string(facts.alg_bits));
  log::info("session ", id_, ": TLS established: ", facts.protocol, " ", facts.cipher);
  // RFC 3207: everything learnt before the handshake is forgotten, a plaintext login too
  // (else a man in the middle could log in first and ride the victim's TLS session);
  // the client says EHLO again.
  helo_.reset();
  esmtp_ = false;
  reset_transaction();
  forget_authentication();
}

std::string Session::received_protocol() const {
  // RFC 3848: ESMTPS / ESMTPA / ESMTPSA, with the cipher as the TLS patches wrote it.
  if (!tls_active_ && !authenticated_) return esmtp_ ? "ESMTP" : "SMTP";
  std::string protocol =
      std::string("ESMTP") + (tls_active_ ? "S" : "") + (authenticated_ ? "A" : "");
  if (tls_active_) {
    const std::string* cipher = env("SSL_CIPHER");
    protocol += " (" + (cipher ? *cipher : std::string("TLS")) + " encrypted" +
                (authenticated_ ? ", authenticated" : "") + ")";
  }
  return protocol;
}

}  // namespace sppd::smtpd
