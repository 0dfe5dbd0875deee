// c-ares on libevent (contract in resolver.h). Runs in sppd-dnsbl-cache, unprivileged after
// start-up. DNS failures are answers (an ARES_* status to the handler), never exceptions.
#include "dnsbl-cache/resolver.h"

#include <arpa/nameser.h>

#include <memory>

namespace sppd::dnsbl_cache {

Resolver::Resolver(event_base* base, const ResolverOptions& options) : base_(base) {
  ares_options opts{};
  opts.sock_state_cb = &Resolver::on_sock_state;
  opts.sock_state_cb_data = this;
  opts.timeout = options.timeout_ms;
  opts.tries = options.tries;
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
  int status = servers.empty() ? ares_set_servers_ports(channel_, system_servers_)
                               : ares_set_servers_ports_csv(channel_, servers.c_str());
  if (status != ARES_SUCCESS) {
    throw ResolverError("bad resolver '" + servers + "': " + ares_strerror(status));
  }
}

void Resolver::query(const std::string& name, int type, AnswerHandler handler) {
  // c-ares owns the handler until on_answer takes it back.
  auto* arg = new AnswerHandler(std::move(handler));
  ares_query(channel_, name.c_str(), ns_c_in, type, &Resolver::on_answer, arg);
  update_timer();
}

void Resolver::on_answer(void* arg, int status, int, unsigned char* answer, int length) {
  std::unique_ptr<AnswerHandler> handler(static_cast<AnswerHandler*>(arg));
  // On destruction the objects the handler refers to may already be gone.
  if (status == ARES_EDESTRUCTION) return;
  (*handler)(status, answer, length);
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
