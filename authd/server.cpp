// Server implementation (contract in server.h): kAuthCheck validation, the check pipeline
// (decode, limiter, checkpassword, delay) and its one log line per check:
//   "<method> user=<name> ip=<remote_ip>: <status> (<detail>)" — never a password or response.
#include "authd/server.h"

#include <time.h>
#include <unistd.h>

#include <charconv>

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::authd {
namespace {

int64_t monotonic_seconds() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec;
}

FailureLimiter::Limits limits_of(const Settings& settings) {
  FailureLimiter::Limits limits;
  limits.max_failures = settings.max_failures;
  limits.window = settings.failure_window;
  return limits;
}

RunnerSettings runner_settings_of(const Settings& settings) {
  RunnerSettings runner;
  runner.command = settings.checkpassword;
  runner.cwd = settings.qmail_home;
  runner.timeout = settings.check_timeout;
  runner.concurrency = settings.concurrency;
  return runner;
}

void warn_if_not_runnable(const Settings& settings) {
  if (settings.checkpassword.empty()) {
    log::warn("no checkpassword configured: every AUTH attempt is answered temporarily failed");
  } else if (access(settings.checkpassword[0].c_str(), X_OK) != 0) {
    log::warn("checkpassword program ", settings.checkpassword[0],
              " is not executable by authd's user: AUTH will fail temporarily");
  }
}

// The single value of an attribute that must appear exactly once, or nullptr.
const std::string* only(const ipc::Frame& frame, std::string_view name) {
  return frame.all(name).size() == 1 ? frame.get(name) : nullptr;
}

// delay: a whole number of seconds; more than kMaxDelay is cut to it (a huge
// control/auth/delay is the admin's mistake, not a broken worker).
bool parse_delay(const std::string& text, int* delay) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  long long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool too_big = ec == std::errc::result_out_of_range || value > Server::kMaxDelay;
  *delay = too_big ? Server::kMaxDelay : static_cast<int>(value);
  return too_big || ec == std::errc();
}

}  // namespace

Server::Server(event_base* base, std::string config_path, Settings settings, UniqueFd control)
    : settings_(std::move(settings)),
      limiter_(limits_of(settings_)),
      runner_(base, runner_settings_of(settings_)),
      service_(
          base, std::move(config_path), std::move(control), *this,
          helper::DrainPolicy{kDrainCap, "check(s)", "their checkpassword programs are killed"}) {
  warn_if_not_runnable(settings_);
}

Server::~Server() = default;

size_t Server::in_flight() const { return runner_.running() + runner_.waiting() + delayed_.size(); }

std::string Server::reload(const config::Config& config) {
  Settings fresh = settings_from(config);
  if (fresh.user != settings_.user) {
    log::warn("reload: a new user = takes effect only when the master restarts authd");
  }
  settings_ = std::move(fresh);
  limiter_.set_limits(limits_of(settings_));
  runner_.set_settings(runner_settings_of(settings_));
  warn_if_not_runnable(settings_);
  return "";
}

void Server::on_worker_frame(helper::Client& client, ipc::Frame&& frame) {
  if (frame.type != protocol::kAuthCheck) {
    return service_.malformed(client, "unexpected frame type " + std::to_string(frame.type));
  }
  start_check(client, frame);
  // The client's base64 lines are as secret as what they decode to.
  for (auto& [name, value] : frame.attrs) {
    if (name == "response") wipe_string(&value);
  }
}

void Server::start_check(helper::Client& client, ipc::Frame& frame) {
  Check check;
  check.key = {client.id, frame.request_id};
  const std::string* method_attr = only(frame, "method");
  const std::string* remote_ip = only(frame, "remote_ip");
  const std::string* delay = only(frame, "delay");
  std::optional<Method> method = method_attr ? method_named(*method_attr) : std::nullopt;
  if (!method || !remote_ip || remote_ip->empty() || !delay) {
    return service_.malformed(client, "kAuthCheck needs one known method, remote_ip and delay");
  }
  if (!parse_delay(*delay, &check.delay)) {
    return service_.malformed(client, "delay is not a number of seconds");
  }
  const std::string* challenge = only(frame, "challenge");
  if (is_cram(*method) && !challenge) {
    return service_.malformed(client, "a CRAM check needs its challenge");
  }
  if (open_requests_.count(check.key)) {
    return service_.malformed(
        client, "request id " + std::to_string(frame.request_id) + " is already in use");
  }
  check.method = *method;
  check.remote_ip = *remote_ip;
  open_requests_.insert(check.key);
  auto fail = [&](const char* status, const std::string& why) {
    log::info(method_name(check.method), " user=", check.user.empty() ? "?" : check.user,
              " ip=", check.remote_ip, ": ", status, " (", why, ")");
    answer(check.key, status, "", why);
  };

  if (service_.draining()) return fail("temp", "authd is stopping");
  if (settings_.checkpassword.empty()) return fail("temp", "no checkpassword configured");
  std::string why;
  std::optional<Credentials> credentials =
      decode_credentials(check.method, frame.all("response"), challenge ? *challenge : "", &why);
  if (!credentials) return fail("malformed", why);
  check.user = credentials->user;
  if (auto blocked = limiter_.blocked(check.remote_ip, check.user, monotonic_seconds())) {
    return fail("temp", "checkpassword not run: " + *blocked);
  }
  std::string timestamp = "<" + std::to_string(getpid()) + "." + std::to_string(time(nullptr)) +
                          "." + std::to_string(++checks_) + "@authd>";
  std::optional<Secret> input = checkpassword_input(*credentials, settings_.cram_order, timestamp);
  credentials->secret.wipe();
  if (!input) return fail("malformed", "credentials longer than checkpassword's 512 bytes");
  // What a checkpassword may look at besides fd 3: vchkpw checks TCPLOCALPORT for SMTP.
  std::vector<std::string> env = {"TCPREMOTEIP=" + check.remote_ip};
  if (const std::string* port = frame.get("local_port"); port && !port->empty()) {
    env.push_back("TCPLOCALPORT=" + *port);
  }
  runner_.submit(std::move(*input), std::move(env),
                 [this, check](const Outcome& outcome) { on_outcome(check, outcome); });
}

void Server::on_outcome(const Check& check, const Outcome& outcome) {
  const char* status = outcome.verdict == Verdict::kOk     ? "ok"
                       : outcome.verdict == Verdict::kTemp ? "temp"
                                                           : "bad";
  log::info(method_name(check.method), " user=", check.user, " ip=", check.remote_ip, ": ", status,
            " (checkpassword ", outcome.detail, ")");
  switch (outcome.verdict) {
    case Verdict::kOk:
      limiter_.record_success(check.user);
      return answer(check.key, "ok", check.user, "");
    case Verdict::kTemp:
      return answer(check.key, "temp", "", "checkpassword " + outcome.detail);
    case Verdict::kMisuse:
      log::error("checkpassword exited 2 for ", check.user,
                 ": it says its input was malformed (check cram_order and its command line)");
      [[fallthrough]];
    case Verdict::kBad:
      limiter_.record_failure(check.remote_ip, check.user, monotonic_seconds());
      return hold_failure(check, "checkpassword " + outcome.detail);
  }
}

void Server::hold_failure(const Check& check, const std::string& text) {
  if (check.delay == 0 || !open_requests_.count(check.key)) {
    return answer(check.key, "bad", "", text);
  }
  auto delayed = std::make_shared<Delayed>();
  delayed->server = this;
  delayed->key = check.key;
  delayed->text = text;
  delayed->timer.reset(evtimer_new(service_.base(), on_delay_over, delayed.get()));
  timeval wait{check.delay, 0};
  evtimer_add(delayed->timer.get(), &wait);
  delayed_[check.key] = std::move(delayed);
}

void Server::on_delay_over(evutil_socket_t, short, void* arg) {
  auto* delayed = static_cast<Delayed*>(arg);
  Server* server = delayed->server;
  RequestKey key = delayed->key;
  std::string text = delayed->text;
  auto it = server->delayed_.find(key);
  if (it == server->delayed_.end()) return;
  // This callback runs on the Delayed's own timer: free it on the next loop pass.
  server->service_.destroy_later(std::move(it->second));
  server->delayed_.erase(it);
  server->answer(key, "bad", "", text);
}

void Server::answer(const RequestKey& key, const char* status, const std::string& user,
                    const std::string& text) {
  // A worker that went away meanwhile gets nothing (its requests were forgotten).
  if (open_requests_.erase(key) == 1) {
    if (helper::Client* client = service_.find_client(key.first)) {
      ipc::Frame result(protocol::kAuthResult, key.second);
      result.add("status", status);
      if (!user.empty()) result.add("user", user);
      if (!text.empty()) result.add("text", text);
      client->channel->send(std::move(result));
    }
  }
  service_.served();
  service_.check_drained();
}

void Server::on_client_gone(helper::Client& client) {
  // Running checks go on (their failures still count); their answers and held failures
  // for this worker are dropped.
  for (auto it = open_requests_.begin(); it != open_requests_.end();) {
    it = it->first == client.id ? open_requests_.erase(it) : std::next(it);
  }
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->first.first != client.id) {
      ++it;
      continue;
    }
    event_del(it->second->timer.get());
    service_.destroy_later(std::move(it->second));
    it = delayed_.erase(it);
  }
}

}  // namespace sppd::authd
