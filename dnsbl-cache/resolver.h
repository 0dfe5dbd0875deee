// Resolver: c-ares 1.18 (classic API) driven by the process's libevent loop. One event per
// resolver socket (ARES_OPT_SOCK_STATE_CB), one timer re-armed from ares_timeout(), one
// deadline timer per query. It asks any (name, type) with no search domains and hands back
// the raw answer, so each record type gets its own small parser on top (ptr_lookups.cpp,
// dnsbl_answer.cpp). Created before privilege::drop (c-ares reads /etc/resolv.conf at init);
// after that it only needs UDP/TCP sockets. Set-up errors throw ResolverError.
#pragma once

#include <ares.h>

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/event.h"

namespace sppd::dnsbl_cache {

struct ResolverError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ResolverOptions {
  // "IP:port" or "[IPv6]:port" (comma-separated for several); empty = /etc/resolv.conf.
  std::string servers;
  // How long one query may take in all ([service dnsbl-cache] lookup_timeout): c-ares tries
  // twice, a third of it and then (doubled) the rest, and a deadline cuts off whatever is
  // left over when resolv.conf lists several servers.
  int timeout_ms = 5000;
};

class Resolver {
 public:
  // status is an ARES_* code (ARES_ETIMEOUT when the deadline passed); answer/length (the raw
  // DNS message, possibly null) are valid only during the call. Called exactly once per
  // query, never after the Resolver is gone.
  using AnswerHandler = std::function<void(int status, const unsigned char* answer, int length)>;

  Resolver(event_base* base, const ResolverOptions& options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Replaces the name servers ("" = back to those of /etc/resolv.conf read at start); queries
  // out are asked again of the new ones, within their first deadline. Throws ResolverError
  // if servers is malformed; the old ones then stay.
  void set_servers(const std::string& servers);
  // Asks for (name, type) in class IN, name taken as fully qualified. handler may run before
  // query() returns.
  void query(const std::string& name, int type, AnswerHandler handler);
  int timeout_ms() const { return timeout_ms_; }

 private:
  struct Pending;  // one query: its handler and deadline, owned by c-ares until on_answer
  using PendingPtr = std::unique_ptr<Pending>;

  static void on_sock_state(void* self, ares_socket_t fd, int readable, int writable);
  static void on_socket_event(evutil_socket_t fd, short what, void* self);
  static void on_timer(evutil_socket_t, short, void* self);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* answer, int length);
  static void on_deadline(evutil_socket_t, short, void* pending);
  // Re-arms the timer for c-ares's next timeout, or stops it when nothing is pending.
  void update_timer();
  // Hands servers to c-ares; ARES_ENOTIMP means queries are out.
  int apply_servers(const std::string& servers);
  // Gives a query to c-ares (which owns it until on_answer).
  void send(PendingPtr pending);

  event_base* base_;
  int timeout_ms_;
  ares_channel channel_ = nullptr;
  ares_addr_port_node* system_servers_ = nullptr;  // from resolv.conf, to restore on reload
  std::string servers_;                            // in use ("" = system_servers_)
  std::vector<PendingPtr> cancelled_;              // taken back from c-ares to change servers
  std::map<ares_socket_t, EventPtr> sockets_;
  EventPtr timer_;
};

}  // namespace sppd::dnsbl_cache
