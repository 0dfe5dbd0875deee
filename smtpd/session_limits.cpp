// Per-client connection limits in the session (Postfix's anvil, tcpserver -c): after the
// tcprules (which may set MAXCONNIP / MAXCONNRATE) and before the DNSBL checks, the plugins
// and the greeting, a session with limits asks dnsbl-cache, which counts the clients of every
// worker (protocol.h kClientConnect); a refused client gets one 421 line and is closed. The
// counted session says when it ends, and re-announces itself when dnsbl-cache restarts.
// dnsbl-cache unavailable or silent: the client is admitted (fail open) and the log says so.
#include <chrono>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {
// dnsbl-cache answers from memory at once: a verdict this late means it is stuck.
constexpr int kClientVerdictTimeout = 3;  // seconds
}  // namespace

ipc::Frame Session::client_connect_frame() const {
  ipc::Frame frame(protocol::kClientConnect, 0);
  frame.add("ip", remote_.ip);
  frame.add("listener", settings_.listener.name);
  frame.add("max_connections", std::to_string(client_limits_.max_connections));
  frame.add("max_rate", std::to_string(client_limits_.max_rate));
  frame.add("rate_window", std::to_string(client_limits_.rate_window));
  frame.add("session", std::to_string(id_));
  return frame;
}

void Session::check_client_limits(std::function<void()> then) {
  std::string problem;
  client_limits_ =
      client_limits(settings_.listener, env("MAXCONNIP"), env("MAXCONNRATE"), &problem);
  if (!problem.empty()) log::warn("session ", id_, ": tcprules for ", remote_.ip, ": ", problem);
  if (!client_limits_.any()) {
    then();
    return;
  }
  client_counted_ = true;  // from here on dnsbl-cache may count it: say when it ends
  client_announced_at_ = std::chrono::steady_clock::now();
  client_then_ = std::move(then);
  client_request_ = context_.dns->request(client_connect_frame(), [this](ipc::Frame* frame) {
    on_client_verdict(frame, frame ? "" : "dnsbl-cache went away");
  });
  if (!client_request_) {
    on_client_verdict(nullptr, "dnsbl-cache unavailable");
    return;
  }
  set_busy(true);
  client_timer_.reset(evtimer_new(
      context_.base,
      [](evutil_socket_t, short, void* self) {
        static_cast<Session*>(self)->on_client_verdict(nullptr, "no answer from dnsbl-cache");
      },
      this));
  timeval limit{kClientVerdictTimeout, 0};
  evtimer_add(client_timer_.get(), &limit);
}

void Session::on_client_verdict(ipc::Frame* frame, const char* failure) {
  bool was_waiting = client_request_.has_value();
  if (client_request_) context_.dns->cancel(*client_request_);
  client_request_.reset();
  client_timer_.reset();
  if (phase_ == Phase::kFinished) return;
  if (was_waiting) set_busy(false);
  std::string verdict;
  if (frame && frame->type == protocol::kClientVerdict) verdict = frame->get_or("verdict", "");
  if (verdict == "too_many" || verdict == "too_fast") {
    client_counted_ = false;  // dnsbl-cache does not count a refused connection
    const bool rate = verdict == "too_fast";
    log::info("session ", id_, ": refused ", remote_.ip, " on ", settings_.listener.name, ": ",
              rate ? frame->get_or("rate", "?") : frame->get_or("connections", "?"),
              rate ? " connections in " + std::to_string(client_limits_.rate_window) + " s"
                   : std::string(" concurrent connections"),
              ", limit ", rate ? client_limits_.max_rate : client_limits_.max_connections);
    reply(client_refusal(verdict, remote_.ip, client_limits_));
    close_after_flush();
    return;
  }
  if (verdict != "ok") {
    log::warn("session ", id_, ": ", *failure ? failure : "unexpected answer from dnsbl-cache",
              ": ", remote_.ip, " admitted without its connection limits (fail open)");
  }
  auto then = std::move(client_then_);
  client_then_ = nullptr;
  if (then) then();
}

bool Session::reannounce_client() {
  // A session still waiting for its verdict was asked on the new channel (the old one's
  // requests ended before it was replaced), so it is counted already.
  if (phase_ == Phase::kFinished || !client_counted_ || client_request_) return false;
  ipc::Frame frame = client_connect_frame();
  frame.add("reannounce", "yes");
  auto age = std::chrono::steady_clock::now() - client_announced_at_;
  frame.add("age", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()));
  return context_.dns->send(0, std::move(frame));  // no answer: it is never refused
}

void Session::release_client() {
  if (client_request_) context_.dns->cancel(*client_request_);
  client_request_.reset();
  client_timer_.reset();
  if (!client_counted_) return;
  client_counted_ = false;
  ipc::Frame frame(protocol::kClientDisconnect, 0);
  frame.add("session", std::to_string(id_));
  context_.dns->send(0, std::move(frame));  // a dnsbl-cache that is gone released it already
}

}  // namespace sppd::smtpd
