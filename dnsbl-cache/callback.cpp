// The call-back client (contract in callback.h). Runs in sppd-dnsbl-cache. Every reply comes
// from a host the spammer may control: lines are bounded (kMaxLine bytes, kMaxReplyLines per
// reply, anything longer ends the conversation), made printable before they reach a log, and
// each address has one deadline for the whole conversation, so no remote host can hold a
// call-back longer than callback_timeout.
#include "dnsbl-cache/callback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "common/log.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr size_t kMaxLine = 1000;  // RFC 5321 §4.5.3.1.5 says 512; be lenient, not unbounded
constexpr size_t kMaxReplyLines = 100;
constexpr size_t kMaxShownLine = 400;  // of a reply line kept for the log

bool is_atext(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr || c >= 0x80;
}

bool is_dot_string(const std::string& local) {
  if (local.empty() || local.front() == '.' || local.back() == '.') return false;
  if (local.find("..") != std::string::npos) return false;
  for (unsigned char c : local) {
    if (c != '.' && !is_atext(c)) return false;
  }
  return true;
}

// A remote reply line as it may appear in our log: printable ASCII, bounded.
std::string shown(const std::string& line) {
  std::string out;
  for (char c : line.substr(0, kMaxShownLine)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte >= 0x7f ? '?' : c);
  }
  if (line.size() > kMaxShownLine) out += "...";
  return out;
}

bool valid_reply_line(const std::string& line) {
  if (line.size() < 3) return false;
  for (int i = 0; i < 3; ++i) {
    if (line[i] < '0' || line[i] > '9') return false;
  }
  return line.size() == 3 || line[3] == ' ' || line[3] == '-';
}

const char* stage_name(int stage) {
  static const char* const kNames[] = {"greeting", "HELO", "MAIL FROM:<>", "RCPT TO", "QUIT"};
  return kNames[stage];
}

}  // namespace

std::string callback_path(const std::string& sender) {
  size_t at = sender.rfind('@');
  if (at == std::string::npos || at + 1 == sender.size()) return "";
  for (unsigned char c : sender) {
    if (c < 0x20 || c == 0x7f) return "";  // nothing may end the command line early
  }
  std::string local = sender.substr(0, at);
  std::string domain = sender.substr(at + 1);
  if (is_dot_string(local)) return local + "@" + domain;
  std::string quoted = "\"";
  for (char c : local) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  return quoted + "\"@" + domain;
}

Callback::Callback(event_base* base, std::vector<std::string> addresses, std::string helo,
                   std::string sender, const CallbackOptions& options, Done done)
    : base_(base),
      addresses_(std::move(addresses)),
      helo_(std::move(helo)),
      sender_(std::move(sender)),
      path_(callback_path(sender_)),
      options_(options),
      done_(std::move(done)),
      timer_(evtimer_new(base, on_timer, this)) {}

Callback::~Callback() = default;

void Callback::start() {
  // The first connection is made from the loop, so done never runs inside start().
  arm_timer(std::chrono::milliseconds(0));
}

void Callback::arm_timer(std::chrono::milliseconds after) {
  auto ms = after.count();
  timeval when{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  evtimer_add(timer_.get(), &when);
}

void Callback::next_address() {
  if (path_.empty()) {
    failures_.push_back("<" + shown(sender_) + "> cannot be asked for in RCPT TO");
    next_ = addresses_.size();
  }
  while (next_ < addresses_.size()) {
    current_ = addresses_[next_++];
    sockaddr_storage storage{};
    socklen_t size = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, current_.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(options_.port));
      size = sizeof(*v4);
    } else if (inet_pton(AF_INET6, current_.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(options_.port));
      size = sizeof(*v6);
    } else {
      failures_.push_back(current_ + ": not an IP address");
      continue;
    }
    connection_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
    if (!connection_) {
      failures_.push_back(current_ + ": out of memory");
      continue;
    }
    bufferevent_setcb(connection_.get(), on_read, nullptr, on_event, this);
    stage_ = Stage::kGreeting;
    lines_.clear();
    if (bufferevent_socket_connect(connection_.get(), reinterpret_cast<sockaddr*>(&storage),
                                   static_cast<int>(size)) < 0) {
      failures_.push_back(
          current_ + ": cannot connect: " + evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
      connection_.reset();
      continue;
    }
    bufferevent_enable(connection_.get(), EV_READ);
    arm_timer(options_.timeout);
    return;
  }
  // Nothing left to try: report from the loop (on_timer), never from inside a callback of
  // the connection that may still be on the stack.
  next_ = addresses_.size() + 1;
  arm_timer(std::chrono::milliseconds(0));
}

void Callback::on_timer(evutil_socket_t, short, void* self) {
  auto* callback = static_cast<Callback*>(self);
  if (callback->next_ > callback->addresses_.size()) {
    CallbackOutcome outcome;
    if (callback->have_verdict_) {
      outcome = std::move(callback->outcome_);
    } else {
      for (const std::string& failure : callback->failures_) {
        outcome.detail += (outcome.detail.empty() ? "" : "; ") + failure;
      }
      if (outcome.detail.empty()) outcome.detail = "no address to call";
    }
    Done done = std::move(callback->done_);
    done(outcome);  // may destroy the Callback: nothing may follow
    return;
  }
  if (!callback->connection_) {
    callback->next_address();
  } else if (callback->stage_ == Stage::kQuit) {
    callback->finish_address();  // no 221 in time: the verdict stands anyway
  } else {
    callback->give_up(std::string("timed out waiting for the ") +
                          stage_name(static_cast<int>(callback->stage_)) + " reply",
                      false);
  }
}

void Callback::on_read(bufferevent* bev, void* self) {
  auto* callback = static_cast<Callback*>(self);
  // Several replies may have arrived at once; stop when the connection changed (finished,
  // or a new address connected: its input is its own).
  while (callback->connection_.get() == bev) {
    evbuffer* input = bufferevent_get_input(bev);
    size_t length = 0;
    char* raw = evbuffer_readln(input, &length, EVBUFFER_EOL_CRLF);
    if (!raw) {
      if (evbuffer_get_length(input) > kMaxLine) callback->give_up("reply line too long", false);
      return;
    }
    std::string line(raw, length);
    free(raw);
    if (line.size() > kMaxLine || !valid_reply_line(line)) {
      callback->give_up("not an SMTP reply: " + shown(line), false);
      return;
    }
    callback->lines_.push_back(shown(line));
    if (line.size() > 3 && line[3] == '-') {
      if (callback->lines_.size() > kMaxReplyLines) callback->give_up("reply too long", false);
      continue;
    }
    callback->on_reply();
  }
}

void Callback::on_reply() {
  char kind = lines_.back()[0];  // the final line's code decides (RFC 5321 §4.2.1)
  std::string first = lines_.front();
  switch (stage_) {
    case Stage::kGreeting:
      if (kind != '2') return give_up("greeting: " + first, true);
      send("HELO " + helo_);
      stage_ = Stage::kHelo;
      break;
    case Stage::kHelo:
      if (kind != '2') return give_up("HELO: " + first, true);
      send("MAIL FROM:<>");
      stage_ = Stage::kMail;
      break;
    case Stage::kMail:
      // A host that refuses the null sender breaks RFC 5321 §4.5.5, but says nothing about
      // the mailbox: no verdict.
      if (kind != '2') return give_up("MAIL FROM:<>: " + first, true);
      send("RCPT TO:<" + path_ + ">");
      stage_ = Stage::kRcpt;
      break;
    case Stage::kRcpt:
      if (kind == '2') return decided(CallbackOutcome::Kind::kAccepted);
      if (kind == '5') return decided(CallbackOutcome::Kind::kRejected);
      return give_up("RCPT TO: " + first, true);  // 4xx: greylisting, a full disk, ...
    case Stage::kQuit:
      return finish_address();
  }
  lines_.clear();
}

void Callback::decided(CallbackOutcome::Kind kind) {
  have_verdict_ = true;
  outcome_.kind = kind;
  outcome_.address = current_;
  outcome_.reply = lines_;
  say_quit();
}

void Callback::give_up(const std::string& why, bool quit) {
  failures_.push_back(current_ + ": " + why);
  if (quit && connection_) {
    say_quit();
  } else {
    finish_address();
  }
}

void Callback::say_quit() {
  send("QUIT");
  stage_ = Stage::kQuit;
  lines_.clear();
  arm_timer(options_.quit_grace);
}

void Callback::finish_address() {
  connection_.reset();  // safe inside the bufferevent's own callback
  evtimer_del(timer_.get());
  if (have_verdict_) next_ = addresses_.size();
  next_address();
}

void Callback::send(const std::string& line) {
  std::string wire = line + "\r\n";
  bufferevent_write(connection_.get(), wire.data(), wire.size());
}

void Callback::on_event(bufferevent*, short what, void* self) {
  auto* callback = static_cast<Callback*>(self);
  if (what & BEV_EVENT_CONNECTED) return;  // the greeting comes next
  if (callback->stage_ == Stage::kQuit) return callback->finish_address();
  std::string stage = stage_name(static_cast<int>(callback->stage_));
  if (what & BEV_EVENT_EOF) {
    callback->give_up("connection closed before the " + stage + " reply", false);
  } else {
    callback->give_up(std::string(callback->stage_ == Stage::kGreeting && callback->lines_.empty()
                                      ? "cannot connect: "
                                      : "connection failed: ") +
                          evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()),
                      false);
  }
}

}  // namespace sppd::dnsbl_cache
