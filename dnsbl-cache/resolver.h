// Resolver: c-ares 1.18 (classic API) driven by the process's libevent loop. One event per
// resolver socket (ARES_OPT_SOCK_STATE_CB), one timer re-armed from ares_timeout(). It asks
// any (name, type) and hands back the raw answer, so each record type (PTR now; A, TXT, MX
// for the DNSBL cache later) gets its own small parser on top (ptr_lookups.cpp).
// Created before privilege::drop (c-ares reads /etc/resolv.conf at init); after that it
// only needs UDP/TCP sockets. Set-up errors throw ResolverError.
#pragma once

#include <ares.h>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "common/event.h"

namespace sppd::dnsbl_cache {

struct ResolverError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ResolverOptions {
  // "IP:port" or "[IPv6]:port" (comma-separated for several); empty = /etc/resolv.conf.
  std::string servers;
  int timeout_ms = 2000;  // first try; c-ares doubles it on the next round
  int tries = 2;
};

class Resolver {
 public:
  // status is an ARES_* code; answer/length (the raw DNS message, possibly null) are valid
  // only during the call. Never called after the Resolver is gone.
  using AnswerHandler = std::function<void(int status, const unsigned char* answer, int length)>;

  Resolver(event_base* base, const ResolverOptions& options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Replaces the name servers ("" = back to those of /etc/resolv.conf read at start).
  // Throws ResolverError if servers is malformed; the old ones then stay.
  void set_servers(const std::string& servers);
  // Asks for (name, type) in class IN. handler may run before query() returns.
  void query(const std::string& name, int type, AnswerHandler handler);

 private:
  static void on_sock_state(void* self, ares_socket_t fd, int readable, int writable);
  static void on_socket_event(evutil_socket_t fd, short what, void* self);
  static void on_timer(evutil_socket_t, short, void* self);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* answer, int length);
  // Re-arms the timer for c-ares's next timeout, or stops it when nothing is pending.
  void update_timer();

  event_base* base_;
  ares_channel channel_ = nullptr;
  ares_addr_port_node* system_servers_ = nullptr;  // from resolv.conf, to restore on reload
  std::map<ares_socket_t, EventPtr> sockets_;
  EventPtr timer_;
};

}  // namespace sppd::dnsbl_cache
