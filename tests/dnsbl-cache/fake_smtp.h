// A scripted SMTP server for the call-back tests: TCP on a loopback address (kernel-chosen
// port) in the test's libevent loop. It greets, answers HELO, MAIL and QUIT, answers RCPT from
// a table by mailbox (multi-line replies allowed), records every command line, and counts
// connections. silent = accept and never say anything (a host that hangs).
#pragma once

#include <arpa/inet.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/event.h"

namespace sppd::dnsbl_cache::dns_test {

class FakeSmtp {
 public:
  // port 0: the kernel chooses.
  explicit FakeSmtp(event_base* base, const std::string& ip = "127.0.0.1", int port = 0)
      : base_(base) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    listener_.reset(evconnlistener_new_bind(base, on_accept, this,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                            reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
    socklen_t len = sizeof(sa);
    getsockname(evconnlistener_get_fd(listener_.get()), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }

  int port() const { return port_; }

  std::string greeting = "220 fake.example ESMTP";
  std::string helo_reply = "250 fake.example";
  std::string mail_reply = "250 ok";
  std::map<std::string, std::string> rcpt_replies;  // mailbox -> reply ("\r\n" between lines)
  std::string default_rcpt_reply = "550 no such user";
  bool silent = false;
  int connections = 0;
  std::vector<std::string> received;  // every command line, in order

 private:
  struct Connection {
    FakeSmtp* server;
    BuffereventPtr bev;
  };
  struct ListenerFree {
    void operator()(evconnlistener* l) const { evconnlistener_free(l); }
  };

  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self) {
    auto* server = static_cast<FakeSmtp*>(self);
    ++server->connections;
    auto connection = std::make_unique<Connection>();
    connection->server = server;
    connection->bev.reset(bufferevent_socket_new(server->base_, fd, BEV_OPT_CLOSE_ON_FREE));
    bufferevent_setcb(connection->bev.get(), on_read, nullptr, on_event, connection.get());
    bufferevent_enable(connection->bev.get(), EV_READ);
    if (!server->silent) say(connection->bev.get(), server->greeting);
    server->connections_.push_back(std::move(connection));
  }

  static void say(bufferevent* bev, const std::string& reply) {
    std::string wire = reply + "\r\n";
    bufferevent_write(bev, wire.data(), wire.size());
  }

  static void on_read(bufferevent* bev, void* arg) {
    auto* connection = static_cast<Connection*>(arg);
    FakeSmtp* server = connection->server;
    size_t length = 0;
    while (char* raw = evbuffer_readln(bufferevent_get_input(bev), &length, EVBUFFER_EOL_CRLF)) {
      std::string line(raw, length);
      free(raw);
      server->received.push_back(line);
      if (server->silent) continue;
      if (line.rfind("HELO ", 0) == 0) {
        say(bev, server->helo_reply);
      } else if (line.rfind("MAIL FROM:", 0) == 0) {
        say(bev, server->mail_reply);
      } else if (line.rfind("RCPT TO:<", 0) == 0 && line.back() == '>') {
        std::string mailbox = line.substr(9, line.size() - 10);
        auto it = server->rcpt_replies.find(mailbox);
        say(bev, it == server->rcpt_replies.end() ? server->default_rcpt_reply : it->second);
      } else if (line == "QUIT") {
        say(bev, "221 fake.example");
      } else {
        say(bev, "502 unimplemented");
      }
    }
  }

  static void on_event(bufferevent*, short, void* arg) {
    auto* connection = static_cast<Connection*>(arg);
    connection->bev.reset();  // the client went away
  }

  event_base* base_;
  std::unique_ptr<evconnlistener, ListenerFree> listener_;
  int port_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
};

// A loopback TCP port nobody listens on (bound, then closed): connecting is refused.
inline int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

}  // namespace sppd::dnsbl_cache::dns_test
