// Bridge implementation (contract in bridge.h): worker frame validation, transaction
// bookkeeping, SIGCHLD reaping, settings on SIGHUP. A transaction that ends inside a callback
// is destroyed on the next loop pass (helper::Service::destroy_later), because the callback's
// caller may still be running on it.
#include "queue-bridge/bridge.h"

#include <sys/wait.h>

#include <optional>
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

std::string clamds_detail(const std::set<std::string>& clamds) {
  std::string detail;
  for (const std::string& address : clamds) detail += (detail.empty() ? "" : " ") + address;
  return detail.empty() ? "" : ", clamd " + detail;
}

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
  settings.clamd_connect_timeout = static_cast<int>(service.get_long("clamd_connect_timeout", 5));
  if (settings.clamd_connect_timeout < 1 || settings.clamd_connect_timeout > 300) {
    fail("clamd_connect_timeout must be between 1 and 300 seconds");
  }
  settings.clamds = configured_clamds(config);
  return settings;
}

Bridge::Bridge(event_base* base, std::string config_path, Settings settings, UniqueFd control)
    : base_(base),
      settings_(std::move(settings)),
      service_(base, std::move(config_path), std::move(control), *this,
               {kDrainCap, "transaction(s)", "their queue programs are killed"}) {}

Bridge::~Bridge() {
  // Unfinished transactions kill their queue programs (nothing is queued half-done).
  running_.clear();
  requests_.clear();
}

std::string Bridge::reload(const config::Config& config) {
  Settings fresh = settings_from(config);
  if (fresh.user != settings_.user) {
    log::warn("reload: a new user = takes effect only when the master restarts queue-bridge");
  }
  settings_ = std::move(fresh);
  return clamds_detail(settings_.clamds);
}

void Bridge::on_worker_frame(helper::Client& client, ipc::Frame&& frame) {
  if (frame.type == protocol::kQueueOpen) return open_transaction(client, frame);
  if (frame.type != protocol::kQueueRecipients && frame.type != protocol::kQueueCommit &&
      frame.type != protocol::kQueueAbort) {
    return service_.malformed(client, "unexpected frame type " + std::to_string(frame.type));
  }

  auto request = requests_.find({client.id, frame.request_id});
  if (request == requests_.end()) {
    // The transaction ended (qmail-queue exited early, timeout): the worker had not seen
    // our result yet when it sent this.
    log::debug("worker ", client.worker_pid, ": ignoring frame type ", frame.type,
               " for finished request ", frame.request_id);
    return;
  }
  pid_t pid = request->second;
  Running& running = running_.at(pid);
  Transaction& transaction = *running.transaction;

  if (frame.type == protocol::kQueueAbort) {
    log::info("qp ", pid, ": aborted by worker ", client.worker_pid);
    abort_transaction(pid);
    service_.check_drained();
    return;
  }
  if (running.clamd) {
    return service_.malformed(client, "request " + std::to_string(frame.request_id) +
                                          " sent recipients before its pipe was handed over");
  }
  if (transaction.committed()) {
    return service_.malformed(client,
                              "request " + std::to_string(frame.request_id) + " already committed");
  }
  auto to = frame.all("to");
  if (frame.type == protocol::kQueueRecipients) {
    if (to.empty()) return service_.malformed(client, "recipients frame without any to");
    transaction.add_recipients(to);
    return;
  }
  auto from = frame.all("from");
  if (from.size() != 1) return service_.malformed(client, "commit needs exactly one from");
  transaction.commit(from.front(), to);
}

void Bridge::open_transaction(helper::Client& client, const ipc::Frame& frame) {
  RequestKey key{client.id, frame.request_id};
  if (requests_.count(key)) {
    return service_.malformed(client,
                              "request id " + std::to_string(frame.request_id) + " already in use");
  }
  std::optional<std::vector<std::string>> env = helper::env_of(frame);
  if (!env) return service_.malformed(client, "env entry is not NAME=value");
  const std::string* clamd = frame.get("clamd");
  if (service_.draining()) {
    log::info("worker ", client.worker_pid, ": refusing a transaction while stopping");
    send_result(client, frame.request_id, start_failure_verdict(), -1);
    return;
  }

  SpawnSpec spec;
  spec.argv = queue_command(settings_.qmail_queue, *env);
  spec.env = queue_environment(std::move(*env));
  spec.qmail_home = settings_.qmail_home;
  spec.error_fd = settings_.error_fd;
  std::string why;
  auto child = spawn_queue(spec, &why);
  if (!child) {
    log::error("cannot start the queue program: ", why);
    send_result(client, frame.request_id, start_failure_verdict(), -1);
    return;
  }

  pid_t pid = child->pid;
  UniqueFd message = std::move(child->message_write);
  auto transaction = std::make_unique<Transaction>(
      base_, std::move(*child), settings_.queue_timeout,
      [this, pid](const Verdict& verdict) { finish_transaction(pid, verdict); });
  Running& running = running_[pid];
  running = Running{key, std::move(transaction), nullptr, UniqueFd()};
  requests_[key] = pid;
  log::debug("qp ", pid, ": started ", spec.argv[0], " for worker ", client.worker_pid);

  if (!clamd) return send_opened(client, frame.request_id, pid, std::move(message));
  if (!settings_.clamds.contains(*clamd)) {
    // Only a control/clamd may be connected to: a worker must not make us its connect().
    log::warn("worker ", client.worker_pid, ": clamd ", *clamd,
              " is in no listener's control/clamd: not connecting");
    send_scanner(client, frame.request_id, UniqueFd(),
                 "clamd " + *clamd + ": not in queue-bridge's control/clamd files (reload?)");
    return send_opened(client, frame.request_id, pid, std::move(message));
  }
  // qmail-queue is running meanwhile; its pipe waits here until the scanner is settled.
  running.message = std::move(message);
  running.clamd =
      std::make_unique<ClamdConnect>(base_, *clamd, settings_.clamd_connect_timeout,
                                     [this, pid](UniqueFd socket, const std::string& why) {
                                       clamd_connected(pid, std::move(socket), why);
                                     });
}

void Bridge::clamd_connected(pid_t pid, UniqueFd socket, const std::string& why) {
  auto it = running_.find(pid);
  if (it == running_.end()) return;
  Running& running = it->second;
  // Inside its own callback: destroyed on the next loop pass.
  service_.destroy_later(std::shared_ptr<ClamdConnect>(std::move(running.clamd)));
  helper::Client* client = service_.find_client(running.key.first);
  if (!client) return;  // on_client_gone aborts the transaction
  if (!socket) log::info("worker ", client->worker_pid, ": qp ", pid, ": ", why);
  send_scanner(*client, running.key.second, std::move(socket), why);
  send_opened(*client, running.key.second, pid, std::move(running.message));
}

void Bridge::send_scanner(helper::Client& client, uint32_t request_id, UniqueFd socket,
                          const std::string& why) {
  ipc::Frame scanner(protocol::kQueueScanner, request_id);
  if (socket) {
    scanner.add("status", "ok");
    scanner.fd = std::move(socket);  // the channel closes our copy once it is sent
  } else {
    scanner.add("status", "unavailable");
    scanner.add("text", why);
  }
  client.channel->send(std::move(scanner));
}

void Bridge::send_opened(helper::Client& client, uint32_t request_id, pid_t pid, UniqueFd message) {
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
  RequestKey key = it->second.key;
  service_.destroy_later(std::move(it->second.transaction));
  running_.erase(it);
  requests_.erase(key);

  helper::Client* client = service_.find_client(key.first);
  // smtpd logs every accepted message; only failures are worth a second line from here.
  std::string line =
      log::concat("qp ", pid, " worker ", client ? client->worker_pid : std::string("(gone)"), ": ",
                  status_name(verdict.status), ": ", verdict.text);
  if (verdict.status == Status::kOk) {
    log::debug(line);
  } else {
    log::info(line);
  }
  if (client) send_result(*client, key.second, verdict, pid);
  service_.served();
  service_.check_drained();
}

void Bridge::abort_transaction(pid_t pid) {
  auto it = running_.find(pid);
  if (it == running_.end()) return;
  it->second.transaction->abort();
  requests_.erase(it->second.key);
  service_.destroy_later(std::move(it->second.transaction));
  running_.erase(it);
}

void Bridge::send_result(helper::Client& client, uint32_t request_id, const Verdict& verdict,
                         pid_t pid) {
  ipc::Frame result(protocol::kQueueResult, request_id);
  result.add("status", status_name(verdict.status));
  result.add("text", verdict.text);
  if (pid > 0) result.add("pid", std::to_string(pid));
  client.channel->send(std::move(result));
}

void Bridge::on_client_gone(helper::Client& client) {
  for (auto it = requests_.lower_bound({client.id, 0});
       it != requests_.end() && it->first.first == client.id;) {
    pid_t pid = (it++)->second;  // abort_transaction() erases the entry
    log::info("qp ", pid, ": aborted, worker ", client.worker_pid, " went away");
    abort_transaction(pid);
  }
}

void Bridge::on_sigchld() {
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
