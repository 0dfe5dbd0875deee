// Bridge implementation (contract in bridge.h): frame dispatch and validation, transaction
// bookkeeping, SIGCHLD reaping, SIGHUP reload, SIGTERM drain. Objects that end inside a
// callback (a worker channel, a transaction) are destroyed on the next loop pass, because
// the callback's caller may still be running on them.
#include "queue-bridge/bridge.h"

#include <signal.h>
#include <sys/wait.h>

#include <sstream>

#include "common/protocol.h"
#include "queue-bridge/spawn.h"

namespace sppd::queue_bridge {
namespace {

// qmail-queue's program and arguments: split on whitespace, no shell (BRIEF "Paths").
std::vector<std::string> split_command(const std::string& command) {
  std::istringstream words(command);
  std::vector<std::string> argv;
  std::string word;
  while (words >> word) argv.push_back(word);
  return argv;
}

}  // namespace

Settings settings_from(const config::Config& config) {
  const config::Service& service = config.service("queue-bridge");
  auto fail = [&](const std::string& what) {
    throw config::ConfigError(config.path + ":" + std::to_string(service.line) +
                              ": [service queue-bridge] " + what);
  };
  Settings settings;
  settings.qmail_home = config.qmail_home;
  settings.user = service.user;
  settings.qmail_queue = split_command(service.get("qmail_queue", "bin/qmail-queue"));
  if (settings.qmail_queue.empty()) fail("qmail_queue is empty");
  settings.queue_timeout = static_cast<int>(service.get_long("queue_timeout", 1200));
  if (settings.queue_timeout < 1) fail("queue_timeout must be at least 1 second");
  settings.error_fd = static_cast<int>(service.get_long("error_fd", 6));
  if (settings.error_fd < 3 || settings.error_fd > 255) fail("error_fd must be between 3 and 255");
  settings.log_level = log::level_named(config.log_level);
  return settings;
}

Bridge::Bridge(event_base* base, std::string config_path, Settings settings, UniqueFd control)
    : base_(base), config_path_(std::move(config_path)), settings_(std::move(settings)) {
  control_ = std::make_unique<ipc::Channel>(
      base_, std::move(control), [this](ipc::Frame&& frame) { on_control_frame(std::move(frame)); },
      [this](const std::string& why) { drain("control channel: " + why); });
  sigchld_event_.reset(evsignal_new(base_, SIGCHLD, on_signal, this));
  sighup_event_.reset(evsignal_new(base_, SIGHUP, on_signal, this));
  sigterm_event_.reset(evsignal_new(base_, SIGTERM, on_signal, this));
  for (auto* ev : {sigchld_event_.get(), sighup_event_.get(), sigterm_event_.get()}) {
    event_add(ev, nullptr);
  }
  cleanup_event_.reset(event_new(base_, -1, 0, on_cleanup, this));
  drain_cap_event_.reset(evtimer_new(base_, on_drain_cap, this));
}

Bridge::~Bridge() {
  // Unfinished transactions kill their queue programs (nothing is queued half-done).
  running_.clear();
  clients_.clear();
}

int Bridge::run() {
  event_base_dispatch(base_);
  return 0;
}

void Bridge::on_signal(evutil_socket_t signal, short, void* self) {
  auto* bridge = static_cast<Bridge*>(self);
  if (signal == SIGCHLD) bridge->reap_children();
  if (signal == SIGHUP) bridge->reload();
  if (signal == SIGTERM) bridge->drain("SIGTERM");
}

void Bridge::reload() {
  try {
    Settings fresh = settings_from(config::load(config_path_));
    if (fresh.user != settings_.user) {
      log::warn("reload: a new user = takes effect only when the master restarts queue-bridge");
    }
    settings_ = std::move(fresh);
    log::set_level(settings_.log_level);
    log::info("configuration reloaded from ", config_path_);
  } catch (const std::exception& e) {
    log::error("reload failed, keeping the old configuration: ", e.what());
  }
}

void Bridge::drain(const std::string& why) {
  if (draining_) return;
  draining_ = true;
  log::info("stopping (", why, "): ", running_.size(), " transaction(s) still running");
  timeval cap{kDrainCap, 0};
  evtimer_add(drain_cap_event_.get(), &cap);
  maybe_exit();
}

void Bridge::on_drain_cap(evutil_socket_t, short, void* self) {
  auto* bridge = static_cast<Bridge*>(self);
  log::warn("giving up on ", bridge->running_.size(), " transaction(s) after ", kDrainCap,
            " s; their queue programs are killed");
  event_base_loopexit(bridge->base_, nullptr);
}

void Bridge::maybe_exit() {
  // A short grace lets a result that met a full socket buffer still go out: a worker that
  // loses a result answers 451 for a message that was queued (a duplicate, not a loss).
  timeval grace{0, 100000};
  if (draining_ && running_.empty()) event_base_loopexit(base_, &grace);
}

void Bridge::schedule_cleanup() {
  if (!event_pending(cleanup_event_.get(), EV_TIMEOUT, nullptr)) {
    event_active(cleanup_event_.get(), EV_TIMEOUT, 0);
  }
}

void Bridge::on_cleanup(evutil_socket_t, short, void* self) {
  auto* bridge = static_cast<Bridge*>(self);
  bridge->dead_transactions_.clear();
  bridge->dead_clients_.clear();
}

Bridge::Client* Bridge::find_client(uint64_t client_id) {
  auto it = clients_.find(client_id);
  return it == clients_.end() ? nullptr : it->second.get();
}

void Bridge::on_control_frame(ipc::Frame&& frame) {
  if (frame.type != protocol::kNewClient) {
    // The master is trusted but may be newer than us: say so, do not die.
    log::warn("control channel: ignoring frame type ", frame.type);
    return;
  }
  const std::string* worker_pid = frame.get("worker_pid");
  if (!frame.fd || !worker_pid) {
    log::fatal("control channel: malformed kNewClient (needs a descriptor and worker_pid)");
  }
  auto client = std::make_unique<Client>();
  client->id = next_client_id_++;
  client->worker_pid = *worker_pid;
  uint64_t id = client->id;
  client->channel = std::make_unique<ipc::Channel>(
      base_, std::move(frame.fd), [this, id](ipc::Frame&& f) { on_worker_frame(id, std::move(f)); },
      [this, id](const std::string& why) { drop_client(id, why); });
  log::debug("worker ", client->worker_pid, ": channel open");
  clients_[id] = std::move(client);
}

void Bridge::on_worker_frame(uint64_t client_id, ipc::Frame&& frame) {
  Client* client = find_client(client_id);
  if (!client) return;
  if (frame.fd) return malformed(*client, "unexpected descriptor");
  if (frame.type == protocol::kQueueOpen) return open_transaction(*client, frame);
  if (frame.type != protocol::kQueueRecipients && frame.type != protocol::kQueueCommit &&
      frame.type != protocol::kQueueAbort) {
    return malformed(*client, "unexpected frame type " + std::to_string(frame.type));
  }

  auto request = client->requests.find(frame.request_id);
  if (request == client->requests.end()) {
    // The transaction ended (qmail-queue exited early, timeout): the worker had not seen
    // our result yet when it sent this.
    log::debug("worker ", client->worker_pid, ": ignoring frame type ", frame.type,
               " for finished request ", frame.request_id);
    return;
  }
  pid_t pid = request->second;
  Transaction& transaction = *running_.at(pid).transaction;

  if (frame.type == protocol::kQueueAbort) {
    log::info("qp ", pid, ": aborted by worker ", client->worker_pid);
    transaction.abort();
    dead_transactions_.push_back(std::move(running_.at(pid).transaction));
    running_.erase(pid);
    client->requests.erase(request);
    schedule_cleanup();
    maybe_exit();
    return;
  }
  if (transaction.committed()) {
    return malformed(*client, "request " + std::to_string(frame.request_id) + " already committed");
  }
  auto to = frame.all("to");
  if (frame.type == protocol::kQueueRecipients) {
    if (to.empty()) return malformed(*client, "recipients frame without any to");
    transaction.add_recipients(to);
    return;
  }
  auto from = frame.all("from");
  if (from.size() != 1) return malformed(*client, "commit needs exactly one from");
  transaction.commit(from.front(), to);
}

void Bridge::open_transaction(Client& client, const ipc::Frame& frame) {
  uint32_t request_id = frame.request_id;
  if (client.requests.count(request_id)) {
    return malformed(client, "request id " + std::to_string(request_id) + " already in use");
  }
  std::vector<std::string> env;
  for (auto entry : frame.all("env")) {
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return malformed(client, "env entry is not NAME=value");
    }
    env.emplace_back(entry);
  }
  if (draining_) {
    log::info("worker ", client.worker_pid, ": refusing a transaction while stopping");
    send_result(client, request_id, start_failure_verdict(), -1);
    return;
  }

  SpawnSpec spec;
  spec.argv = queue_command(settings_.qmail_queue, env);
  spec.env = queue_environment(std::move(env));
  spec.qmail_home = settings_.qmail_home;
  spec.error_fd = settings_.error_fd;
  std::string why;
  auto child = spawn_queue(spec, &why);
  if (!child) {
    log::error("cannot start the queue program: ", why);
    send_result(client, request_id, start_failure_verdict(), -1);
    return;
  }

  pid_t pid = child->pid;
  UniqueFd message = std::move(child->message_write);
  auto transaction = std::make_unique<Transaction>(
      base_, std::move(*child), settings_.queue_timeout,
      [this, pid](const Verdict& verdict) { finish_transaction(pid, verdict); });
  running_[pid] = Running{client.id, request_id, std::move(transaction)};
  client.requests[request_id] = pid;
  log::debug("qp ", pid, ": started ", spec.argv[0], " for worker ", client.worker_pid);

  ipc::Frame reply(protocol::kQueueOpened, request_id);
  reply.add("pid", std::to_string(pid));
  // The channel owns the write end from here and closes it once sent: from then on only the
  // worker holds it, so qmail-queue sees EOF exactly when the worker closes it.
  reply.fd = std::move(message);
  client.channel->send(std::move(reply));
}

void Bridge::finish_transaction(pid_t pid, const Verdict& verdict) {
  auto it = running_.find(pid);
  if (it == running_.end()) return;
  Running done = std::move(it->second);
  running_.erase(it);
  dead_transactions_.push_back(std::move(done.transaction));
  schedule_cleanup();

  Client* client = find_client(done.client_id);
  // smtpd logs every accepted message; only failures are worth a second line from here.
  std::string line =
      log::concat("qp ", pid, " worker ", client ? client->worker_pid : std::string("(gone)"), ": ",
                  status_name(verdict.status), ": ", verdict.text);
  if (verdict.status == Status::kOk) {
    log::debug(line);
  } else {
    log::info(line);
  }
  if (client) {
    client->requests.erase(done.request_id);
    send_result(*client, done.request_id, verdict, pid);
  }
  if (!served_) {
    served_ = true;
    control_->send(ipc::Frame(protocol::kServed, 0));
  }
  maybe_exit();
}

void Bridge::send_result(Client& client, uint32_t request_id, const Verdict& verdict, pid_t pid) {
  ipc::Frame result(protocol::kQueueResult, request_id);
  result.add("status", status_name(verdict.status));
  result.add("text", verdict.text);
  if (pid > 0) result.add("pid", std::to_string(pid));
  client.channel->send(std::move(result));
}

void Bridge::malformed(Client& client, const std::string& why) {
  log::error("worker ", client.worker_pid, ": malformed request (", why, "); closing its channel");
  drop_client(client.id, "malformed request");
}

void Bridge::drop_client(uint64_t client_id, const std::string& why) {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return;
  std::unique_ptr<Client> client = std::move(it->second);
  clients_.erase(it);
  log::debug("worker ", client->worker_pid, ": channel closed (", why, ")");
  for (const auto& [request_id, pid] : client->requests) {
    auto running = running_.find(pid);
    if (running == running_.end()) continue;
    log::info("qp ", pid, ": aborted, worker ", client->worker_pid, " went away");
    running->second.transaction->abort();
    dead_transactions_.push_back(std::move(running->second.transaction));
    running_.erase(running);
  }
  client->requests.clear();
  client->channel->close();
  dead_clients_.push_back(std::move(client));
  schedule_cleanup();
  maybe_exit();
}

void Bridge::reap_children() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    auto it = running_.find(pid);
    if (it == running_.end()) {
      log::debug("reaped pid ", pid, " of an ended transaction");
      continue;
    }
    it->second.transaction->child_exited(status);
  }
}

}  // namespace sppd::queue_bridge
