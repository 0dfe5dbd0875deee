// Session lifecycle and I/O: connect (PTR lookup, tcprules, greeting), reading command
// lines with qmail's rules, buffering replies the way qmail-smtpd does for PIPELINING,
// timeouts and closing. Commands are in session_commands.cpp, DATA in session_data.cpp.
// Runs in the sandboxed worker.
#include "smtpd/session.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <string_view>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"

namespace sppd::smtpd {
namespace {
// Input buffered per session before libevent stops reading from the client: bounds memory
// for pipelining clients and for DATA while qmail-queue is slower than the client.
constexpr size_t kClientReadHighWater = 256 * 1024;
}  // namespace

Session::Session(uint64_t id, UniqueFd client, Endpoint remote, Endpoint local,
                 const ListenerSettings& settings, SessionContext context)
    : id_(id),
      settings_(settings),
      context_(std::move(context)),
      remote_(std::move(remote)),
      local_(std::move(local)) {
  if (settings_.listener.implicit_tls && settings_.tls) {
    // SMTPS: TLS from the first byte; the greeting waits in the buffer for the handshake.
    SSL* ssl = settings_.tls->new_session();
    client_.reset(bufferevent_openssl_socket_new(context_.base, client.release(), ssl,
                                                 BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE));
    bufferevent_openssl_set_allow_dirty_shutdown(client_.get(), 1);
    tls_handshaking_ = true;
    tls_timer_.reset(evtimer_new(context_.base, on_tls_timeout, this));
    timeval limit{settings_.listener.tls_handshake_timeout, 0};
    evtimer_add(tls_timer_.get(), &limit);
  } else {
    client_.reset(bufferevent_socket_new(context_.base, client.release(), BEV_OPT_CLOSE_ON_FREE));
  }
  bufferevent_setcb(client_.get(), on_read, on_write, on_event, this);
  bufferevent_setwatermark(client_.get(), EV_READ, 0, kClientReadHighWater);
  timeval timeout{settings_.timeoutsmtpd, 0};
  bufferevent_set_timeouts(client_.get(), &timeout, &timeout);

  // The environment tcpserver would export (spec §2.11); tcprules may override it later.
  set_env("PROTO", remote_.ipv6 ? "TCP6" : "TCP");
  set_env("TCPLOCALIP", local_.ip);
  set_env("TCPLOCALPORT", std::to_string(local_.port));
  if (!settings_.listener.local_host.empty())
    set_env("TCPLOCALHOST", settings_.listener.local_host);
  set_env("TCPREMOTEIP", remote_.ip);
  set_env("TCPREMOTEPORT", std::to_string(remote_.port));
}

Session::~Session() {
  if (lookup_request_ && context_.dns) context_.dns->cancel(*lookup_request_);
  if (queue_request_ && context_.queue) context_.queue->cancel(*queue_request_);
  if (plugin_request_ && context_.plugins) context_.plugins->cancel(*plugin_request_);
  if (verify_request_ && context_.plugins) context_.plugins->cancel(*verify_request_);
  if (auth_request_ && context_.authd) context_.authd->cancel(*auth_request_);
  if (rbl_request_ && context_.dns) context_.dns->cancel(*rbl_request_);
  if (client_request_ && context_.dns) context_.dns->cancel(*client_request_);
  if (sender_request_ && context_.dns) context_.dns->cancel(*sender_request_);
  reset_auth_exchange();
}

const std::string* Session::env(const std::string& name) const {
  for (const auto& [n, v] : env_) {
    if (n == name) return &v;
  }
  return nullptr;
}

void Session::set_env(const std::string& name, std::string value) {
  for (auto& [n, v] : env_) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  env_.emplace_back(name, std::move(value));
}

void Session::unset_env(const std::string& name) {
  std::erase_if(env_, [&name](const auto& entry) { return entry.first == name; });
}

void Session::start() {
  log::info("session ", id_, ": connect from ", remote_.ip, ":", remote_.port, " on ",
            settings_.listener.name);
  if (!settings_.control_error.empty()) {
    reply("421 4.3.0 unable to read controls");
    close_after_flush();
    return;
  }
  lookup_remote_host();
}

void Session::lookup_remote_host() {
  if (!settings_.listener.remote_host_lookup) {
    on_remote_host(std::nullopt);
    return;
  }
  ipc::Frame query(protocol::kDnsPtr, 0);
  query.add("ip", remote_.ip);
  lookup_request_ = context_.dns->request(std::move(query), [this](ipc::Frame* answer) {
    std::optional<std::string> host;
    if (answer && answer->type == protocol::kDnsPtrResult && answer->get_or("status", "") == "ok") {
      host = answer->get_or("name", "");
      if (host->empty()) host.reset();
    }
    on_remote_host(std::move(host));
  });
  if (!lookup_request_) {
    on_remote_host(std::nullopt);
    return;
  }
  // A slow resolver must not hold the greeting for long (tcpserver waits; we bound it).
  lookup_timer_.reset(evtimer_new(
      context_.base,
      [](evutil_socket_t, short, void* self) {
        static_cast<Session*>(self)->on_remote_host(std::nullopt);
      },
      this));
  timeval timeout{settings_.listener.remote_host_timeout, 0};
  evtimer_add(lookup_timer_.get(), &timeout);
}

void Session::on_remote_host(std::optional<std::string> host) {
  if (phase_ != Phase::kConnecting) return;
  if (lookup_request_) context_.dns->cancel(*lookup_request_);
  lookup_request_.reset();
  lookup_timer_.reset();
  if (host) set_env("TCPREMOTEHOST", *host);
  apply_rules_and_greet();
}

void Session::apply_rules_and_greet() {
  if (settings_.tcprules) {
    const std::string* host = env("TCPREMOTEHOST");
    auto rule = settings_.tcprules->match(remote_.ip,
                                          host ? std::optional<std::string>(*host) : std::nullopt);
    if (rule && !rule->allow) {
      // tcpserver drops a denied client without running qmail-smtpd: no greeting.
      finish("denied by tcprules");
      return;
    }
    if (rule) {
      for (const auto& [name, value] : rule->env) set_env(name, value);
    }
  }
  // tcpserver -c refused before running anything; MAXCONNIP may come from the rules above.
  check_client_limits([this] {
    // rblsmtpd ran between tcpserver and qmail-smtpd: its verdict comes before the plugins.
    if (!settings_.rbl.empty() && !settings_.listener.rbl_at_rcpt) {
      check_rbl([this] {
        if (rbl_block_) {
          start_rblsmtpd_conversation();
        } else {
          load_plugins();
        }
      });
      return;
    }
    load_plugins();  // then the [connection] plugins, then greet()
  });
}

void Session::greet(bool banner) {
  phase_ = Phase::kCommands;
  if (banner) {
    // SMTPGREETING (qmail-md, e.g. from tcprules) replaces control/smtpgreeting.
    const std::string* variable = env("SMTPGREETING");
    std::vector<std::string> lines =
        variable && !variable->empty() ? std::vector<std::string>{*variable} : settings_.greeting;
    std::string greeting;
    for (size_t i = 0; i + 1 < lines.size(); ++i) greeting += "220-" + lines[i] + "\r\n";
    greeting += "220 " + lines.back() + " ESMTP";
    reply(greeting);
  }
  flush();
  bufferevent_enable(client_.get(), EV_READ);
  process_input();
}

void Session::reply(std::string text) {
  log_reply(text);
  pending_replies_ += text;
  pending_replies_ += "\r\n";
}

void Session::flush() {
  if (pending_replies_.empty() || !client_) return;
  std::string_view unsent = pending_replies_;
  // In plaintext with nothing queued, replies go straight to the socket: the bufferevent
  // would arm a write event, wait a loop pass for it and disarm it again for every reply.
  // What does not fit (and any error, which libevent then reports) goes the usual way.
  // STARTTLS's 220 takes the usual way too: on_write starts the handshake.
  if (!tls_active_ && !tls_handshaking_ && !starttls_pending_ &&
      evbuffer_get_length(bufferevent_get_output(client_.get())) == 0) {
    ssize_t sent = ::send(bufferevent_getfd(client_.get()), unsent.data(), unsent.size(),
                          MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent > 0) unsent.remove_prefix(static_cast<size_t>(sent));
  }
  if (!unsent.empty()) bufferevent_write(client_.get(), unsent.data(), unsent.size());
  pending_replies_.clear();
}

void Session::set_busy(bool busy) {
  // Reading stops only if something arrives while busy (on_read, on_event): most clients
  // wait for the reply, and then a helper's round trip costs no event changes.
  busy_ = busy;
  if (busy || !reading_paused_ || !client_ || closing_) return;
  reading_paused_ = false;
  bufferevent_enable(client_.get(), EV_READ);
}

void Session::pause_reading() {
  reading_paused_ = true;
  bufferevent_disable(client_.get(), EV_READ);
}

void Session::process_input() {
  while (!busy_ && !closing_ && phase_ != Phase::kFinished && phase_ != Phase::kConnecting) {
    if (phase_ == Phase::kData) {
      feed_data();
      if (phase_ == Phase::kData) break;  // waiting for more input or for the pipe
      continue;
    }
    std::string line;
    if (!take_command_line(&line)) break;
    log_client_line(line);
    if (auth_stage_ != AuthStage::kNone) {
      auth_continue(line);  // a line of an AUTH exchange, not a command
      flush();
      OPENSSL_cleanse(line.data(), line.size());
      continue;
    }
    handle_command(line);
  }
  // qmail-smtpd flushes its reply buffer before every read: replies to a pipelined batch go
  // out together once the batch is consumed (RFC 2920).
  if (!busy_) flush();
}

bool Session::take_command_line(std::string* line) {
  evbuffer* input = bufferevent_get_input(client_.get());
  const size_t max_line = static_cast<size_t>(settings_.maxcmdlen);
  while (true) {
    size_t eol_length = 0;
    evbuffer_ptr eol = evbuffer_search_eol(input, nullptr, &eol_length, EVBUFFER_EOL_LF);
    if (eol.pos < 0) {
      // No LF yet. A line that can no longer fit is dropped as it arrives, so a client
      // cannot make us buffer an endless line (qmail-md's maxcmdlen).
      if (evbuffer_get_length(input) > max_line + 1) {
        evbuffer_drain(input, evbuffer_get_length(input));
        discarding_line_ = true;
      }
      return false;
    }
    size_t length = static_cast<size_t>(eol.pos);
    if (discarding_line_ || length > max_line + 1) {
      evbuffer_drain(input, length + 1);
      discarding_line_ = false;
      refuse_overlong_line();
      reset_auth_exchange();    // an overlong AUTH response ends the exchange
      if (busy_) return false;  // tarpitted: the next line waits for the reply
      continue;
    }
    line->resize(length);
    evbuffer_remove(input, line->data(), length);
    evbuffer_drain(input, 1);
    if (!line->empty() && line->back() == '\r') line->pop_back();  // one CR, as qmail
    if (line->size() > max_line) {
      refuse_overlong_line();
      line->clear();
      if (busy_) return false;
      continue;
    }
    return true;
  }
}

void Session::refuse_overlong_line() {
  // rblsmtpd reads lines of any length: a client it blocks gets the error line for them too.
  if (rbl_block_ && !settings_.listener.rbl_at_rcpt) {
    reply(rbl_block_->first + " " + rbl_block_->second);
  } else {
    tarpit("maxcmdlen " + std::to_string(settings_.maxcmdlen),
           decision_context(seen_mail_ ? sender_ : "", ""),
           [this] { reply("500 5.5.2 line too long"); });
  }
}

void Session::close_after_flush() {
  flush();
  closing_ = true;
  if (!client_) {
    finish("closed");
    return;
  }
  bufferevent_disable(client_.get(), EV_READ);
  if (evbuffer_get_length(bufferevent_get_output(client_.get())) == 0) finish("closed");
}

void Session::finish(const char* why) {
  if (phase_ == Phase::kFinished) return;
  phase_ = Phase::kFinished;
  if (queue_request_) abort_transaction();
  if (lookup_request_) context_.dns->cancel(*lookup_request_);
  lookup_request_.reset();
  lookup_timer_.reset();
  if (plugin_request_) context_.plugins->cancel(*plugin_request_);
  plugin_request_.reset();
  if (verify_request_) context_.plugins->cancel(*verify_request_);
  verify_request_.reset();
  if (auth_request_) context_.authd->cancel(*auth_request_);
  auth_request_.reset();
  reset_auth_exchange();
  if (rbl_request_) context_.dns->cancel(*rbl_request_);
  rbl_request_.reset();
  rbl_timer_.reset();
  release_client();
  tls_timer_.reset();
  message_pipe_.reset();
  if (closing_ && tls_active_ && client_) {
    // A TLS connection we end ourselves ends with close_notify (RFC 8446 §6.1); the replies
    // before it have all been written.
    if (SSL* ssl = bufferevent_openssl_get_ssl(client_.get())) SSL_shutdown(ssl);
  }
  client_.reset();  // closes the connection; safe inside libevent's own callback
  log::info("session ", id_, ": end (", why, ")");
  context_.on_finished(id_);
}

void Session::on_read(bufferevent*, void* self) {
  auto* session = static_cast<Session*>(self);
  if (session->busy_) {
    session->pause_reading();  // the rest waits in the kernel until the helper has answered
    return;
  }
  session->process_input();
}

void Session::on_write(bufferevent*, void* self) {
  auto* session = static_cast<Session*>(self);
  if (session->closing_) {
    session->finish("closed");
  } else if (session->starttls_pending_) {
    session->start_tls();
  }
}

void Session::on_event(bufferevent*, short what, void* self) {
  auto* session = static_cast<Session*>(self);
  if (what & BEV_EVENT_CONNECTED) {
    if (session->tls_handshaking_) session->on_tls_established();
    return;
  }
  if (session->tls_handshaking_ && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
    unsigned long code = bufferevent_get_openssl_error(session->client_.get());
    char reason[256] = "connection closed";
    if (code) ERR_error_string_n(code, reason, sizeof(reason));
    session->finish((std::string("TLS handshake failed: ") + reason).c_str());
    return;
  }
  if ((what & BEV_EVENT_READING) && session->busy_ && !session->closing_) {
    // EOF, an error or the read timeout while a helper works: libevent has stopped reading;
    // reading again once the answer is in sees the EOF or error again, after the input
    // before it, as when reading stopped at set_busy(true). No read timeout runs meanwhile.
    session->reading_paused_ = true;
    return;
  }
  if (what & BEV_EVENT_TIMEOUT) {
    if ((what & BEV_EVENT_READING) && !session->closing_) {
      // qmail-smtpd: a read timeout is answered, a write timeout is not.
      if (session->queue_request_) session->abort_transaction();
      session->pending_replies_.clear();
      session->reply("451 4.4.2 timeout");
      session->close_after_flush();
      return;
    }
    session->finish("write timeout");
    return;
  }
  if (what & BEV_EVENT_EOF) {
    session->finish(session->phase_ == Phase::kData ? "client gone during DATA" : "client closed");
    return;
  }
  if (what & BEV_EVENT_ERROR) session->finish("connection error");
}

}  // namespace sppd::smtpd
