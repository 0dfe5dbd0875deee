// A DNS server for tests: UDP on 127.0.0.1 (kernel-chosen port) in the test's libevent loop,
// answering canned responses by name (or name and type), silent for unknown names (timeouts),
// and counting the queries it receives (to prove caching and coalescing).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <map>
#include <string>

#include "common/event.h"
#include "common/fd.h"
#include "dns_test_util.h"

namespace sppd::dnsbl_cache::dns_test {

struct CannedAnswer {
  int rcode = 0;
  std::vector<Record> answers;
  std::vector<Record> authority;
};

class FakeDns {
 public:
  explicit FakeDns(event_base* base) {
    fd_.reset(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    socklen_t len = sizeof(sa);
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    event_.reset(event_new(base, fd_.get(), EV_READ | EV_PERSIST, on_query, this));
    event_add(event_.get(), nullptr);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::map<std::string, CannedAnswer> answers;                        // by query name, lower-case
  std::map<std::pair<std::string, int>, CannedAnswer> typed_answers;  // (name, type), first
  int queries = 0;
  std::map<std::string, int> queries_for;  // by query name

 private:
  static void on_query(evutil_socket_t fd, short, void* self) {
    auto* dns = static_cast<FakeDns*>(self);
    unsigned char buffer[512];
    sockaddr_storage from;
    socklen_t from_len = sizeof(from);
    ssize_t n =
        recvfrom(fd, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 12) return;
    ++dns->queries;
    std::string qname;
    size_t pos = 12;
    while (pos < static_cast<size_t>(n) && buffer[pos] != 0) {
      size_t len = buffer[pos];
      if (!qname.empty()) qname += '.';
      qname.append(reinterpret_cast<char*>(buffer) + pos + 1, len);
      pos += len + 1;
    }
    uint16_t qtype = static_cast<uint16_t>(buffer[pos + 1] << 8 | buffer[pos + 2]);
    ++dns->queries_for[qname];
    const CannedAnswer* canned = nullptr;
    auto typed = dns->typed_answers.find({qname, qtype});
    auto it = dns->answers.find(qname);
    if (typed != dns->typed_answers.end()) {
      canned = &typed->second;
    } else if (it != dns->answers.end()) {
      canned = &it->second;
    } else {
      return;
    }
    uint16_t id = static_cast<uint16_t>(buffer[0] << 8 | buffer[1]);
    Bytes reply =
        make_response(id, canned->rcode, qname, qtype, canned->answers, canned->authority);
    sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
  }

  UniqueFd fd_;
  int port_ = 0;
  EventPtr event_;
};

}  // namespace sppd::dnsbl_cache::dns_test
