// spawn implementation: three pipes and common/spawn with qmail's descriptor layout.
// Privilege: queue-bridge's user. Errors: returned, every descriptor made here is closed.
#include "queue-bridge/spawn.h"

#include <errno.h>
#include <fcntl.h>

#include <cstring>

#include "common/spawn.h"

namespace sppd::queue_bridge {

std::vector<std::string> queue_command(const std::vector<std::string>& configured,
                                       const std::vector<std::string>& env) {
  for (const auto& entry : env) {
    if (entry.compare(0, 11, "QMAILQUEUE=") == 0) return {entry.substr(11)};
  }
  return configured;
}

std::vector<std::string> queue_environment(std::vector<std::string> session_env) {
  return spawn::with_default_path(std::move(session_env));
}

std::optional<QueueChild> spawn_queue(const SpawnSpec& spec, std::string* why) {
  // Every end sits above error_fd, so laying out 0, 1 and error_fd clobbers none of them.
  auto message = spawn::make_pipe(spec.error_fd, why);
  if (!message) return std::nullopt;
  auto envelope = spawn::make_pipe(spec.error_fd, why);
  if (!envelope) return std::nullopt;
  auto error = spawn::make_pipe(spec.error_fd, why);
  if (!error) return std::nullopt;
  if (!spawn::set_nonblocking(envelope->write.get()) ||
      !spawn::set_nonblocking(error->read.get())) {
    *why = std::string("fcntl: ") + std::strerror(errno);
    return std::nullopt;
  }
  spawn::Program program;
  program.argv = spec.argv;
  program.env = spec.env;
  program.cwd = spec.qmail_home;
  // fd 2 stays: it is our log pipe. Everything else but these goes (fd 3 is our control
  // channel).
  program.descriptors = {
      {message->read.get(), 0}, {envelope->read.get(), 1}, {error->write.get(), spec.error_fd}};
  auto pid = spawn::start(program, why);
  if (!pid) return std::nullopt;
  // The child's ends close here, so EOF and EPIPE reach the right side.
  QueueChild child;
  child.pid = *pid;
  child.message_write = std::move(message->write);
  child.envelope_write = std::move(envelope->write);
  child.error_read = std::move(error->read);
  return child;
}

}  // namespace sppd::queue_bridge
