// SMTP AUTH (RFC 4954) with the qmail AUTH patches' mechanisms and control files: PLAIN,
// LOGIN, CRAM-MD5, CRAM-SHA1, CRAM-RIPEMD, offered per qmail-md's bitmasks. The session
// never decodes credentials: the client's base64 lines go to authd, which alone sees a
// password, and are wiped here once sent. Success runs the [auth] plugins before 235.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <ctime>

#include "common/ascii.h"
#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {

struct Mechanism {
  const char* name;  // as in EHLO and the AUTH command
  int bit;           // qmail-md's control/auth/smtp(s) bit
};
// EHLO order as qmail-md prints it; DIGEST-MD5 (32) is historic (RFC 6331) and not offered.
constexpr Mechanism kMechanisms[] = {
    {"LOGIN", 1}, {"PLAIN", 2}, {"CRAM-MD5", 4}, {"CRAM-SHA1", 8}, {"CRAM-RIPEMD", 16}};

const Mechanism* find_mechanism(const std::string& name) {
  for (const auto& m : kMechanisms) {
    if (strcasecmp(m.name, name.c_str()) == 0) return &m;
  }
  return nullptr;
}

using ascii::lower;

std::string base64(const std::string& text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void wipe(std::string& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace

int Session::auth_methods_now() const {
  if (!settings_.auth_configured) return 0;
  if (settings_.listener.require_tls && !tls_active_) return 0;
  return (tls_active_ ? settings_.auth_methods_tls : settings_.auth_methods_plain) & 31;
}

std::string Session::auth_keyword() const {
  int mask = auth_methods_now();
  if (!mask || authenticated_) return "";
  std::string keyword = "AUTH";
  for (const auto& m : kMechanisms) {
    if (mask & m.bit) keyword += std::string(" ") + m.name;
  }
  return keyword;
}

void Session::cmd_auth(const std::string& arg) {
  if (!settings_.auth_configured) {
    reply("503 5.3.3 auth not available");
    return;
  }
  if (authenticated_) {
    reply("503 5.5.1 you're already authenticated");
    return;
  }
  if (seen_mail_) {
    reply("503 5.5.1 no auth during mail transaction");
    return;
  }
  size_t space = arg.find(' ');
  std::string name = arg.substr(0, space);
  std::string initial;
  if (space != std::string::npos) {
    size_t start = arg.find_first_not_of(' ', space);
    if (start != std::string::npos) initial = arg.substr(start);
  }
  const Mechanism* mechanism = find_mechanism(name);
  if (!mechanism) {
    reply("504 5.5.4 auth type unimplemented");
    return;
  }
  if (!(auth_methods_now() & mechanism->bit)) {
    // Offered under TLS but not here: say that encryption is what is missing (RFC 4954 538).
    bool with_tls = settings_.tls && !tls_active_ && (settings_.auth_methods_tls & mechanism->bit);
    reply(with_tls ? "538 5.7.11 encryption required for requested authentication mechanism"
                   : "504 5.5.4 auth type unimplemented");
    return;
  }
  auth_method_ = lower(mechanism->name);
  auth_responses_.clear();
  if (auth_method_ == "plain") {
    if (!initial.empty()) {
      auth_responses_.push_back(initial == "=" ? "" : initial);  // "=": empty (RFC 4954)
      submit_auth();
      return;
    }
    auth_stage_ = AuthStage::kPlain;
    reply("334 ");
  } else if (auth_method_ == "login") {
    if (!initial.empty()) {
      auth_responses_.push_back(initial);
      auth_stage_ = AuthStage::kLoginPassword;
      reply("334 UGFzc3dvcmQ6");  // "Password:"
    } else {
      auth_stage_ = AuthStage::kLoginUser;
      reply("334 VXNlcm5hbWU6");  // "Username:"
    }
  } else {
    if (!initial.empty()) {
      reply("501 5.5.2 malformed auth input");
      return;
    }
    // As the qmail AUTH patches: <random.time@host>; unpredictable, so it cannot be replayed.
    unsigned char random[8];
    RAND_bytes(random, sizeof(random));
    char hex[17];
    for (size_t i = 0; i < sizeof(random); ++i) snprintf(hex + 2 * i, 3, "%02x", random[i]);
    auth_challenge_ =
        "<" + std::string(hex) + "." + std::to_string(time(nullptr)) + "@" + settings_.me + ">";
    auth_stage_ = AuthStage::kCram;
    reply("334 " + base64(auth_challenge_));
  }
}

void Session::auth_continue(const std::string& line) {
  if (line == "*") {
    reset_auth_exchange();
    reply("501 5.0.0 auth exchange canceled");
    return;
  }
  auth_responses_.push_back(line);
  if (auth_stage_ == AuthStage::kLoginUser) {
    auth_stage_ = AuthStage::kLoginPassword;
    reply("334 UGFzc3dvcmQ6");
    return;
  }
  submit_auth();
}

void Session::set_auth_env(const std::string& name, const std::string& value) {
  const std::string* before = env(name);
  env_before_auth_.emplace_back(name, before ? std::optional<std::string>(*before) : std::nullopt);
  set_env(name, value);
}

void Session::forget_authentication() {
  // Undo in reverse order, so a variable set twice gets its very first value back (e.g. a
  // RELAYCLIENT that tcprules gave the client before it logged in).
  for (auto it = env_before_auth_.rbegin(); it != env_before_auth_.rend(); ++it) {
    if (it->second) {
      set_env(it->first, *it->second);
    } else {
      unset_env(it->first);
    }
  }
  env_before_auth_.clear();
  authenticated_ = false;
}

void Session::reset_auth_exchange() {
  for (auto& response : auth_responses_) wipe(response);
  auth_responses_.clear();
  auth_challenge_.clear();
  auth_stage_ = AuthStage::kNone;
}

void Session::submit_auth() {
  auth_stage_ = AuthStage::kNone;
  ipc::Frame check(protocol::kAuthCheck, 0);
  check.add("method", auth_method_);
  for (auto& response : auth_responses_) check.add("response", response);
  if (!auth_challenge_.empty()) check.add("challenge", auth_challenge_);
  check.add("remote_ip", remote_.ip);
  check.add("local_port", std::to_string(local_.port));
  check.add("delay", std::to_string(settings_.auth_delay));
  reset_auth_exchange();
  auth_request_ = context_.authd->request(std::move(check),
                                          [this](ipc::Frame* frame) { on_auth_result(frame); });
  if (!auth_request_) {
    reply("454 4.7.0 temporary authentication failure");
    return;
  }
  set_busy(true);
}

void Session::on_auth_result(ipc::Frame* frame) {
  if (auth_request_) context_.authd->cancel(*auth_request_);
  auth_request_.reset();
  if (phase_ == Phase::kFinished) return;
  std::string status = frame ? frame->get_or("status", "temp") : "temp";
  if (status != "ok") {
    if (status == "bad") {
      reply("535 5.7.8 authentication failed");
    } else if (status == "malformed") {
      reply("501 5.5.2 malformed auth input");
    } else {
      reply("454 4.7.0 temporary authentication failure");
    }
    log::info("session ", id_, ": AUTH ", auth_method_, " ", status,
              frame ? "" : " (authd unavailable)");
    set_busy(false);
    process_input();
    return;
  }
  std::string user = frame->get_or("user", "");
  // qmail-spp's [auth] hook: the plugins see who logged in, before the 235.
  set_auth_env("SMTPAUTHUSER", user);
  set_auth_env("SMTPAUTHMETHOD", auth_method_);
  set_busy(false);
  run_plugins('a', [this, user](PluginVerdict verdict) {
    if (verdict == PluginVerdict::kRefused || verdict == PluginVerdict::kClosing) {
      // DECISIONS.md: a refused AUTH leaves no trace that later plugins could trust.
      forget_authentication();
      return;
    }
    authenticated_ = true;
    set_auth_env("RELAYCLIENT", "");      // as every qmail AUTH patch: authenticated users relay
    set_auth_env("TCPREMOTEINFO", user);  // and appear as user@ip in the Received line
    log::info("session ", id_, ": authenticated ", user, " with ", auth_method_);
    reply("235 2.7.0 ok, go ahead");
  });
  process_input();
}

}  // namespace sppd::smtpd
