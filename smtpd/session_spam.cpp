// qmail-md's anti-spam machinery in the session (spec qmail-protocols.md §6, DECISIONS.md):
// pattern files chosen per client (NO_<NAME>, <NAME>=path), tarpitting as a timer (a
// tarpitted session stops reading, every other session goes on), the limits that depend on
// the environment (TARPITCOUNT, TARPITDELAY, NO_TARPITTING, MAXRCPT), SMTPGREETING, and the
// smtp_in/smtp_out log with the TARPIT: decision lines. Runs in the sandboxed worker.
#include <strings.h>

#include <cctype>
#include <cstdlib>

#include "common/log.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {

std::string upper(const std::string& text) {
  std::string out = text;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// A number from the environment; fallback when unset or not a number.
long env_number(const std::string* value, long fallback) {
  if (!value || value->empty()) return fallback;
  char* end = nullptr;
  long number = std::strtol(value->c_str(), &end, 10);
  return *end == '\0' ? number : fallback;
}

}  // namespace

const PatternFile* Session::pattern_file(const std::string& name) const {
  const std::string variable = upper(name);
  if (env("NO_" + variable)) return nullptr;
  const SpamControls& spam = settings_.spam;
  const std::string* chosen = env(variable);
  if (!chosen || chosen->empty()) return spam.pattern_file(spam.control_dir + name);
  std::string path = spam.resolve(*chosen);
  if (!spam.pattern_files.contains(path)) {
    // Only files named in tcprules are read before the sandbox; a plugin's S cannot add one.
    log::warn("session ", id_, ": ", variable, "=", *chosen,
              " was not read when the worker started (name it in tcprules); no ", name, " check");
    return nullptr;
  }
  return spam.pattern_file(path);
}

std::optional<PatternFile::Match> Session::pattern_match(const std::string& name,
                                                         const std::string& subject) const {
  const PatternFile* file = pattern_file(name);
  if (!file) return std::nullopt;
  return file->match(subject);
}

long Session::tarpit_delay() const {
  if (env("NO_TARPITTING")) return 0;
  return env_number(env("TARPITDELAY"), settings_.spam.tarpitdelay);
}

long Session::tarpit_count() const {
  if (env("NO_TARPITTING")) return 0;
  return env_number(env("TARPITCOUNT"), settings_.spam.tarpitcount);
}

long Session::maxrcpt() const { return env_number(env("MAXRCPT"), settings_.spam.maxrcpt); }

const std::string& Session::greeting_name() const {
  const std::string* greeting = env("SMTPGREETING");
  return greeting && !greeting->empty() ? *greeting : settings_.me;
}

std::string Session::decision_context(const std::string& sender,
                                      const std::string& recipient) const {
  std::string text = "<" + sender + ">";
  if (!recipient.empty()) text += " to <" + recipient + ">";
  return text + " | helo(" + helo_.value_or("") + ")";
}

void Session::tarpit(const std::string& why, const std::string& context,
                     std::function<void()> then) {
  log::info("session ", id_, ": TARPIT: ", context, " | ", why);
  delay_reply(tarpit_delay(), std::move(then));
}

void Session::delay_reply(long seconds, std::function<void()> then) {
  if (seconds <= 0) {
    then();
    return;
  }
  tarpit_then_ = std::move(then);
  tarpit_timer_.reset(evtimer_new(context_.base, on_tarpit_timer, this));
  timeval wait{seconds, 0};
  evtimer_add(tarpit_timer_.get(), &wait);
  set_busy(true);
}

void Session::on_tarpit_timer(evutil_socket_t, short, void* self) {
  auto* session = static_cast<Session*>(self);
  if (session->phase_ == Phase::kFinished) return;
  auto then = std::move(session->tarpit_then_);
  session->tarpit_then_ = nullptr;
  session->set_busy(false);
  if (then) then();
  session->process_input();
}

const std::string* Session::blacklisted() const {
  const std::string* trap = env("BLACKLISTED");
  return trap && !trap->empty() && !authenticated_ ? trap : nullptr;
}

void Session::add_recipient(std::string recipient) {
  for (const std::string& known : recipients_) {
    if (known == recipient) return;  // one copy per address, as qmail-queue would deliver
  }
  recipients_.push_back(std::move(recipient));
}

std::vector<std::string> Session::envelope_recipients() const {
  std::vector<std::string> envelope = recipients_;
  auto same = [](const std::string& a, const std::string& b) {
    return a.size() == b.size() && strncasecmp(a.c_str(), b.c_str(), a.size()) == 0;
  };
  for (const auto& [watched, copy] : settings_.spam.bigbrother) {
    bool involved = same(sender_, watched);
    for (const std::string& recipient : recipients_)
      involved = involved || same(recipient, watched);
    if (!involved) continue;
    bool present = false;
    for (const std::string& recipient : envelope) present = present || same(recipient, copy);
    if (present) continue;
    log::info("session ", id_, ": bigbrother: mail from <", sender_, "> involves <", watched,
              ">, copy to <", copy, ">");
    envelope.push_back(copy);
  }
  return envelope;
}

void Session::log_client_line(const std::string& line) const {
  if (!settings_.spam.log_smtp_in) return;
  if (auth_stage_ != AuthStage::kNone) {
    log::info("session ", id_, ": C: <authentication data hidden>");
    return;
  }
  // "AUTH PLAIN <base64>" carries a password: log the mechanism only.
  if (line.size() >= 4 && strncasecmp(line.c_str(), "auth", 4) == 0 &&
      (line.size() == 4 || line[4] == ' ')) {
    size_t mechanism_end = line.find(' ', 5);
    if (mechanism_end != std::string::npos) {
      log::info("session ", id_, ": C: ", line.substr(0, mechanism_end), " <hidden>");
      return;
    }
  }
  log::info("session ", id_, ": C: ", line);
}

void Session::log_reply(const std::string& text) const {
  if (!settings_.spam.log_smtp_out) return;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find("\r\n", start);
    if (end == std::string::npos) end = text.size();
    log::info("session ", id_, ": S: ", text.substr(start, end - start));
    start = end + 2;
  }
}

}  // namespace sppd::smtpd
