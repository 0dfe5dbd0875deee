// helper::Service: the skeleton of every sppd helper (queue-bridge, pluginrunner, dnsbl-cache),
// as Postfix's multi_server; the program implements helper::Program, and startup() is the
// shared start of main(). Runs with the helper's (dropped) privileges. Errors: a malformed
// kNewClient is fatal (the master is trusted, so it is a bug); a malformed worker frame costs
// that worker its channel; start-up failures exit 1 (the master throttles). A helper may also
// take local clients (processes other than the workers) from a listening socket the master
// made; they are Clients too, marked worker = false, and the program decides what they may ask.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/channel.h"
#include "common/config.h"
#include "common/event.h"
#include "common/fd.h"
#include "common/log.h"

namespace sppd::helper {

// One worker's channel, or one local client's connection. The program keys its per-client
// state on id (never reused).
struct Client {
  uint64_t id = 0;
  std::string worker_pid;  // as kNewClient gave it; empty for a local client
  bool worker = true;      // false: accepted on the local socket (a plugin, an operator tool)
  std::string label;       // for log lines: "worker 1234" or "local client pid 99 uid 0"
  std::unique_ptr<ipc::Channel> channel;
};

// What a helper program implements. Service calls it from the event loop, and
// on_client_gone also from inside malformed().
class Program {
 public:
  virtual ~Program() = default;
  // A worker's (or local client's) frame; the type is the program's to check (it has no
  // descriptor).
  virtual void on_worker_frame(Client& client, ipc::Frame&& frame) = 0;
  // The worker's channel ended (closed, failed, or malformed): abandon its work. The channel
  // may no longer be used.
  virtual void on_client_gone(Client& client) = 0;
  // Units of work SIGTERM's drain waits for.
  virtual size_t in_flight() const = 0;
  // SIGHUP: applies a freshly read config, or throws to keep the current settings. Returns
  // what to append to the "configuration reloaded" log line (may be empty).
  virtual std::string reload(const config::Config& config) = 0;
  // SIGCHLD: reap children. Programs that start none keep this.
  virtual void on_sigchld() {}
};

// How a program stops on SIGTERM or when the master goes away.
struct DrainPolicy {
  int cap_seconds = 30;  // how long in-flight work may still run
  std::string work;      // a unit of it in log lines: "transaction(s)"
  std::string give_up;   // what the cap does to it: "their queue programs are killed"
};

// Owns the control channel on fd 3 (kNewClient brings worker channels; EOF means the master
// is gone, and drains), the table of worker channels, kServed, SIGHUP (reload; a broken
// config keeps the old settings), SIGTERM (drain: the program refuses new work, the loop
// ends when none is in flight or the cap passes) and the destruction of dead objects
// outside their own callbacks.
class Service {
 public:
  // control: the master's channel (fd 3); config_path is re-read on SIGHUP. The program
  // must outlive the Service: make the Service its last member, so it goes first.
  Service(event_base* base, std::string config_path, UniqueFd control, Program& program,
          DrainPolicy drain_policy);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Runs the event loop until drained; returns the process exit status.
  int run();
  // Stops taking work; the loop ends when none is in flight (at most the policy's cap).
  void drain(const std::string& why);
  // Re-reads the config file; keeps the current settings if it is broken.
  void reload();

  event_base* base() const { return base_; }
  bool draining() const { return draining_; }
  // The client of that id, or nullptr once its channel ended.
  Client* find_client(uint64_t id);
  // A worker broke the protocol: logs why and closes its channel (on_client_gone runs).
  void malformed(Client& client, const std::string& why);
  // The first unit of work was served: tells the master once (kServed).
  void served();
  // Call when a unit of work ended: a draining service exits once nothing is in flight.
  void check_drained();
  // Destroys object on the next loop pass: the caller may be running inside it.
  void destroy_later(std::shared_ptr<void> object);
  // Accepts connections on listener (a listening AF_UNIX SOCK_SEQPACKET socket, non-blocking)
  // as clients with worker = false, at most max_clients at once: more are closed at once and
  // the refusal is logged. Accepting stops when the service drains; what is still queued then
  // waits in the socket for the next process (the master keeps the socket).
  void accept_local_clients(UniqueFd listener, size_t max_clients);
  // Local clients connected now.
  size_t local_clients() const { return local_clients_; }

 private:
  void on_control_frame(ipc::Frame&& frame);
  void on_client_frame(uint64_t id, ipc::Frame&& frame);
  void close_client(uint64_t id, const std::string& why, log::Level level);
  // Makes fd a client's channel and logs "<label>: channel open".
  void add_client(UniqueFd fd, bool worker, std::string worker_pid, std::string label);
  void accept_local();
  void refuse_local(const std::string& label);

  static void on_local_listener(evutil_socket_t, short, void* self);
  static void on_accept_pause(evutil_socket_t, short, void* self);

  static void on_signal(evutil_socket_t signal, short, void* self);
  static void on_cleanup(evutil_socket_t, short, void* self);
  static void on_drain_cap(evutil_socket_t, short, void* self);

  event_base* base_;
  std::string config_path_;
  Program& program_;
  DrainPolicy drain_policy_;
  std::unique_ptr<ipc::Channel> control_;
  std::map<uint64_t, std::unique_ptr<Client>> clients_;
  std::vector<std::shared_ptr<void>> dead_;  // see destroy_later()
  std::vector<EventPtr> signal_events_;
  EventPtr cleanup_event_;
  EventPtr drain_cap_event_;
  // The local socket (accept_local_clients): its listener, a pause after accept() failed
  // for want of descriptors, and the refusals not yet logged.
  UniqueFd local_listener_;
  EventPtr local_accept_event_;
  EventPtr local_pause_event_;
  size_t max_local_clients_ = 0;
  size_t local_clients_ = 0;
  size_t refused_unlogged_ = 0;
  std::chrono::steady_clock::time_point refusal_logged_{};
  uint64_t next_client_id_ = 1;
  bool served_ = false;
  bool draining_ = false;
};

// What startup() hands to main(). config.path is absolute, so SIGHUP can re-read it after a
// chdir.
struct Startup {
  config::Config config;
  UniqueFd control;  // fd 3
  EventBasePtr base;
};

// The start of every helper's main(), for `PROGRAM --config PATH` (or --config=PATH):
// ignores SIGPIPE (a write to a gone peer fails with EPIPE instead of killing us; children
// inherit it, as under qmail-smtpd), reads the config, sets the log level, checks that fd 3
// is open and creates the event loop. Any failure is fatal.
Startup startup(int argc, char** argv, std::string_view program);

// Runs read() during start-up; whatever it throws is fatal (exit 1, the master throttles).
template <typename Read>
auto or_exit(Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const std::exception& e) {
    log::fatal(e.what());
  }
}

// A worker frame's env attributes (the session environment), if each is NAME=value.
std::optional<std::vector<std::string>> env_of(const ipc::Frame& frame);

}  // namespace sppd::helper
