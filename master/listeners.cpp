// Binding listeners (contract in listeners.h). Runs as root in the master. A socket that
// cannot be bound is reported as "cannot listen on ADDRESS ([listener NAME]): reason".
#include "master/listeners.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace sppd::master {
namespace {

constexpr int kBacklog = 1024;

// The IPv4 or IPv6 socket address of host:port; false if host is not numeric.
bool make_sockaddr(const std::string& host, int port, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string address_text(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(v4.sin_port));
  }
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
  inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6.sin6_port));
}

BoundListener bind_one(const config::Listener& listener) {
  std::string address = canonical_address(listener.host, listener.port);
  auto fail = [&](const char* step) -> ListenError {
    return ListenError("cannot listen on " + address + " ([listener " + listener.name +
                       "]): " + step + ": " + std::strerror(errno));
  };
  sockaddr_storage sa;
  socklen_t len = 0;
  if (!make_sockaddr(listener.host, listener.port, &sa, &len)) {
    errno = EINVAL;
    throw fail("address");
  }
  // Non-blocking: every worker accept()s on the shared socket and most attempts lose the race.
  UniqueFd fd(socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw fail("socket");
  int on = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
    throw fail("SO_REUSEADDR");
  }
  // A v6 listener serves v6 only; "[::]:25" and "0.0.0.0:25" can then both be configured.
  if (sa.ss_family == AF_INET6 &&
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
    throw fail("IPV6_V6ONLY");
  }
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) < 0) throw fail("bind");
  if (listen(fd.get(), kBacklog) < 0) throw fail("listen");
  sockaddr_storage actual;
  socklen_t actual_len = sizeof(actual);
  std::string bound = address;
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&actual), &actual_len) == 0) {
    bound = address_text(actual);
  }
  return BoundListener{listener.name, address, bound, std::move(fd)};
}

}  // namespace

std::string canonical_address(const std::string& host, int port) {
  sockaddr_storage sa;
  socklen_t len = 0;
  if (!make_sockaddr(host, port, &sa, &len)) return host + ":" + std::to_string(port);
  return address_text(sa);
}

std::vector<int> plan_rebind(const std::vector<std::string>& bound,
                             const std::vector<std::string>& wanted) {
  std::vector<bool> taken(bound.size(), false);
  std::vector<int> plan;
  plan.reserve(wanted.size());
  for (const auto& address : wanted) {
    int keep = -1;
    for (size_t i = 0; i < bound.size(); ++i) {
      if (!taken[i] && bound[i] == address) {
        keep = static_cast<int>(i);
        taken[i] = true;
        break;
      }
    }
    plan.push_back(keep);
  }
  return plan;
}

ListenerSet ListenerSet::bind_all(const std::vector<config::Listener>& listeners) {
  ListenerSet none;
  return none.rebind(listeners);
}

ListenerSet ListenerSet::rebind(const std::vector<config::Listener>& listeners) {
  std::vector<std::string> bound, wanted;
  for (const auto& item : items_) bound.push_back(item.address);
  for (const auto& listener : listeners) {
    wanted.push_back(canonical_address(listener.host, listener.port));
  }
  std::vector<int> plan = plan_rebind(bound, wanted);

  // Bind every new address first: if one fails, the sockets bound so far close and this
  // set has not been touched.
  std::vector<BoundListener> fresh(listeners.size());
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (plan[i] < 0) fresh[i] = bind_one(listeners[i]);
  }
  ListenerSet result;
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (plan[i] >= 0) {
      BoundListener& kept = items_[static_cast<size_t>(plan[i])];
      fresh[i] = BoundListener{listeners[i].name, kept.address, kept.bound, std::move(kept.fd)};
    }
    result.items_.push_back(std::move(fresh[i]));
  }
  // What is left here is what the new config no longer wants.
  std::erase_if(items_, [](const BoundListener& item) { return !item.fd; });
  return result;
}

}  // namespace sppd::master
