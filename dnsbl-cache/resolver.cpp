// c-ares on libevent (contract in resolver.h). Runs in sppd-dnsbl-cache, unprivileged after
// start-up. DNS failures are answers (an ARES_* status to the handler), never exceptions.
#include "dnsbl-cache/resolver.h"

#include <arpa/nameser.h>

#include <algorithm>
#include <memory>

#include "common/config.h"

namespace sppd::dnsbl_cache {

struct Resolver::Pending {
  Resolver* resolver;
  std::string name;
  int type;
  AnswerHandler handler;
  EventPtr deadline;
  bool answered = false;  // the deadline ran the handler; c-ares's answer is dropped
};

Resolver::Resolver(event_base* base, const ResolverOptions& options)
    : base_(base), timeout_ms_(std::max(options.timeout_ms, 3)) {
  ares_options opts{};
  opts.sock_state_cb = &Resolver::on_sock_state;
  opts.sock_state_cb_data = this;
  // Two tries, the second twice as long as the first (c-ares doubles per round): the whole
  // budget with one server. A lost UDP packet costs a third of it, not all of it.
  opts.timeout = timeout_ms_ / 3;
  opts.tries = 2;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int status = ares_init_options(&channel_, &opts, mask);
  if (status != ARES_SUCCESS) {
    throw ResolverError(std::string("cannot initialise the resolver: ") + ares_strerror(status));
  }
  ares_get_servers_ports(channel_, &system_servers_);
  timer_.reset(evtimer_new(base_, on_timer, this));
  if (!options.servers.empty()) {
    try {
      set_servers(options.servers);
    } catch (...) {
      ares_free_data(system_servers_);
      ares_destroy(channel_);
      throw;
    }
  }
}

Resolver::~Resolver() {
  // ares_destroy calls every pending handler with ARES_EDESTRUCTION (dropped in on_answer)
  // and closes its sockets through on_sock_state.
  ares_destroy(channel_);
  ares_free_data(system_servers_);
}

void Resolver::set_servers(const std::string& servers) {
  // Checked first: once queries are taken back from c-ares, the change must not fail.
  for (size_t start = 0; !servers.empty() && start <= servers.size();) {
    size_t comma = std::min(servers.find(',', start), servers.size());
    std::string host;
    int port = 0;
    if (!config::split_address(servers.substr(start, comma - start), &host, &port)) {
      throw ResolverError("bad resolver '" + servers + "': expected IP:port or [IPv6]:port");
    }
    start = comma + 1;
  }
  if (servers == servers_) return;
  int status = apply_servers(servers);
  if (status == ARES_ENOTIMP) {
    // c-ares 1.18 changes no servers under running queries: take them back (on_answer keeps
    // them in cancelled_), change, and send them again.
    ares_cancel(channel_);
    status = apply_servers(servers);
    std::vector<PendingPtr> resend = std::move(cancelled_);
    cancelled_.clear();
    for (PendingPtr& pending : resend) send(std::move(pending));
    update_timer();
  }
  if (status != ARES_SUCCESS) {
    throw ResolverError("bad resolver '" + servers + "': " + ares_strerror(status));
  }
}

int Resolver::apply_servers(const std::string& servers) {
  int status = servers.empty() ? ares_set_servers_ports(channel_, system_servers_)
                               : ares_set_servers_ports_csv(channel_, servers.c_str());
  if (status == ARES_SUCCESS) servers_ = servers;
  return status;
}

void Resolver::query(const std::string& name, int type, AnswerHandler handler) {
  auto pending = std::make_unique<Pending>(Pending{this, name, type, std::move(handler), {}});
  pending->deadline.reset(evtimer_new(base_, on_deadline, pending.get()));
  timeval deadline{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  evtimer_add(pending->deadline.get(), &deadline);
  send(std::move(pending));
  update_timer();
}

void Resolver::send(PendingPtr pending) {
  // c-ares owns the query's state until on_answer takes it back (which c-ares always calls,
  // at the latest from ares_destroy). ares_query, unlike ares_search, applies no search
  // domains: a DNSBL name under a resolv.conf "search" would ask the wrong zone.
  std::string name = pending->name;  // on_answer may free pending inside ares_query
  int type = pending->type;
  ares_query(channel_, name.c_str(), ns_c_in, type, &Resolver::on_answer, pending.release());
}

void Resolver::on_answer(void* arg, int status, int, unsigned char* answer, int length) {
  PendingPtr pending(static_cast<Pending*>(arg));
  // On destruction the objects the handler refers to may already be gone.
  if (status == ARES_EDESTRUCTION || pending->answered) return;
  // Only set_servers() cancels; it sends the query again.
  if (status == ARES_ECANCELLED) {
    Resolver* resolver = pending->resolver;
    resolver->cancelled_.push_back(std::move(pending));
    return;
  }
  pending->answered = true;
  pending->handler(status, answer, length);
}

void Resolver::on_deadline(evutil_socket_t, short, void* arg) {
  // c-ares still holds the query (it ends with its own tries); only its answer is dropped.
  auto* pending = static_cast<Pending*>(arg);
  pending->answered = true;
  AnswerHandler handler = std::move(pending->handler);
  handler(ARES_ETIMEOUT, nullptr, 0);
}

void Resolver::on_sock_state(void* self, ares_socket_t fd, int readable, int writable) {
  auto* resolver = static_cast<Resolver*>(self);
  if (!readable && !writable) {
    resolver->sockets_.erase(fd);
    return;
  }
  short what =
      static_cast<short>(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
  EventPtr event(event_new(resolver->base_, fd, what, on_socket_event, resolver));
  event_add(event.get(), nullptr);
  // Replacing frees the socket's previous event (safe even from inside its own callback).
  resolver->sockets_[fd] = std::move(event);
}

void Resolver::on_socket_event(evutil_socket_t fd, short what, void* self) {
  auto* resolver = static_cast<Resolver*>(self);
  ares_process_fd(resolver->channel_, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                  (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
  resolver->update_timer();
}

void Resolver::on_timer(evutil_socket_t, short, void* self) {
  auto* resolver = static_cast<Resolver*>(self);
  ares_process_fd(resolver->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  resolver->update_timer();
}

void Resolver::update_timer() {
  timeval storage;
  timeval* next = ares_timeout(channel_, nullptr, &storage);
  if (next) {
    evtimer_add(timer_.get(), next);
  } else {
    evtimer_del(timer_.get());
  }
}

}  // namespace sppd::dnsbl_cache
