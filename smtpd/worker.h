// Worker: one sppd-smtpd process. Accepts clients on the listeners the master handed
// down (up to sessions_per_worker at a time, max_use in its life), owns their Sessions and
// the links to the helpers, and drains on SIGTERM, on max_use or when the master is gone.
// Runs sandboxed (chroot, unprivileged, seccomp) once constructed.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "common/channel.h"
#include "common/config.h"
#include "common/event.h"
#include "smtpd/dnsbl_table_client.h"
#include "smtpd/helper_link.h"
#include "smtpd/helper_pool.h"
#include "smtpd/session.h"
#include "smtpd/settings.h"

namespace sppd::smtpd {

struct InheritedListener {
  std::string name;
  UniqueFd fd;
};

class Worker {
 public:
  // Loads every listener's settings (control files, tcprules): call before the sandbox.
  Worker(event_base* base, const config::Config& config, std::vector<InheritedListener> listeners,
         UniqueFd control);
  ~Worker();
  // Runs until drained. Returns the process exit status.
  int run();

 private:
  struct Listening {
    Worker* owner = nullptr;
    UniqueFd fd;
    std::unique_ptr<ListenerSettings> settings;
    EventPtr accept_event;
  };

  static void on_accept(evutil_socket_t fd, short, void* self);
  void accept_from(Listening& listening);
  void on_control_frame(ipc::Frame&& frame);
  void session_finished(uint64_t id);
  void reap_sessions();
  void update_accepting();
  void drain(const char* why);

  event_base* base_;
  int capacity_;
  int max_use_;
  uint64_t sessions_started_ = 0;
  bool draining_ = false;
  bool accepting_ = false;
  bool served_reported_ = false;
  std::vector<std::unique_ptr<Listening>> listeners_;
  std::unique_ptr<ipc::Channel> control_;
  HelperPool queue_;
  HelperLink dns_;
  DnsblTableClient dnsbl_table_{base_, dns_};  // after dns_, which it uses
  HelperPool plugins_;
  HelperLink authd_;
  std::string log_tag_;
  std::map<uint64_t, std::unique_ptr<Session>> sessions_;
  std::vector<uint64_t> finished_;
  EventPtr reap_event_;
  EventPtr term_event_;
};

}  // namespace sppd::smtpd
