// dnsbl_latency: what one DNSBL verdict costs a worker, three ways, against a running
// dnsbl-cache on its local socket ([service dnsbl-cache] socket): a shared-memory hit
// (DnsblTableReader on the descriptor kDnsblTable hands out, the key built from the text
// address as a session does), a socket hit (a kDnsblQuery round trip dnsbl-cache answers from
// its cache) and a miss (a kDnsblQuery about an address nobody asked before, which goes to the
// DNS server). Used by bench/dnsbl.py (bench/README.md); prints one line per kind:
//   shm_hit n=200000 p50_us=0.21 p99_us=0.40 mean_us=0.23
// Any failure (no socket, no table, a verdict that should be there and is not) exits 1 with
// a message on stderr.
//   dnsbl_latency --socket PATH --zone ZONE --hit-ip IP [--hits N] [--socket-hits N]
//                 [--misses N] [--miss-net A.B]   (misses ask A.B.x.y, x.y counting up)
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/dnsbl_table.h"
#include "common/fd.h"
#include "common/frame.h"
#include "common/protocol.h"

namespace {

using Clock = std::chrono::steady_clock;
using sppd::UniqueFd;
namespace ipc = sppd::ipc;
namespace protocol = sppd::protocol;

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "dnsbl_latency: " << why << "\n";
  std::exit(1);
}

// A blocking SOCK_SEQPACKET connection to dnsbl-cache's local socket. Hand-written rather
// than dnsbl-cache's LocalClient, whose per-question poll and 64 KiB buffer would be measured
// too: here a round trip is what a worker's channel pays, encode + sendmsg + dnsbl-cache +
// recvmsg + decode.
class Connection {
 public:
  explicit Connection(const std::string& path)
      : fd_(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) fail("socket path too long: " + path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    if (!fd_ || connect(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      fail("cannot connect to " + path + ": " + std::strerror(errno));
    }
  }

  ipc::Frame ask(ipc::Frame&& request) {
    request.request_id = ++last_id_;
    std::optional<std::string> bytes = ipc::encode(request);
    if (!bytes || send(fd_.get(), bytes->data(), bytes->size(), MSG_NOSIGNAL) < 0) {
      fail(std::string("cannot send a question: ") + std::strerror(errno));
    }
    iovec iov{buffer_, sizeof(buffer_)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_.get(), &message, MSG_CMSG_CLOEXEC);
    if (n <= 0) fail("dnsbl-cache closed the connection or failed to answer");
    UniqueFd passed;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        passed.reset(fd);
      }
    }
    std::string why;
    std::optional<ipc::Frame> answer =
        ipc::decode(std::string_view(buffer_, static_cast<size_t>(n)), &why);
    if (!answer || answer->request_id != last_id_) fail("unexpected answer: " + why);
    answer->fd = std::move(passed);
    return std::move(*answer);
  }

  ipc::Frame query(const std::string& ip, const std::string& zone) {
    ipc::Frame question(protocol::kDnsblQuery, 0);
    question.add("ip", ip);
    question.add("zone", zone);
    question.add("type", "txt");
    return ask(std::move(question));
  }

 private:
  UniqueFd fd_;
  uint32_t last_id_ = 0;
  char buffer_[ipc::kMaxFrameSize + 1];
};

void print(const char* kind, std::vector<double>& micros) {
  std::sort(micros.begin(), micros.end());
  double sum = 0;
  for (double m : micros) sum += m;
  std::printf("%s n=%zu p50_us=%.3f p99_us=%.3f mean_us=%.3f\n", kind, micros.size(),
              micros[micros.size() / 2], micros[micros.size() * 99 / 100], sum / micros.size());
}

double since(Clock::time_point began) {
  return std::chrono::duration<double, std::micro>(Clock::now() - began).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> options = {
      {"--socket", ""},           {"--zone", ""},      {"--hit-ip", ""},       {"--hits", "200000"},
      {"--socket-hits", "20000"}, {"--misses", "500"}, {"--miss-net", "10.77"}};
  for (int i = 1; i < argc; i += 2) {
    auto option = options.find(argv[i]);
    if (option == options.end() || i + 1 == argc) {
      fail(
          "usage: dnsbl_latency --socket PATH --zone ZONE --hit-ip IP [--hits N] "
          "[--socket-hits N] [--misses N<=65536] [--miss-net A.B]");
    }
    option->second = argv[i + 1];
  }
  const std::string& socket_path = options["--socket"];
  const std::string& zone = options["--zone"];
  const std::string& hit_ip = options["--hit-ip"];
  const std::string& miss_net = options["--miss-net"];
  auto count = [&options](const char* name) {
    try {
      return std::stol(options[name]);
    } catch (const std::exception&) {
      fail(std::string(name) + " wants a number");
    }
  };
  long hits = count("--hits");
  long socket_hits = count("--socket-hits");
  long misses = count("--misses");
  if (socket_path.empty() || zone.empty() || hit_ip.empty() || hits < 1 || socket_hits < 1 ||
      misses < 1 || misses > 65536) {
    fail("--socket, --zone and --hit-ip are needed; counts are at least 1, misses at most 65536");
  }
  Connection cache(socket_path);

  // The verdict the hits are about, cached (and so in the table) by this first question.
  ipc::Frame first = cache.query(hit_ip, zone);
  if (first.get_or("status", "") == "error") fail("dnsbl-cache answers 'error' for " + hit_ip);

  ipc::Frame table_answer = cache.ask(ipc::Frame(protocol::kDnsblTableRequest, 0));
  if (table_answer.type != protocol::kDnsblTable || !table_answer.fd) {
    fail("dnsbl-cache handed out no DNSBL table");
  }
  sppd::DnsblTableReader table(table_answer.fd);

  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(std::max({hits, socket_hits, misses})));
  for (long i = 0; i < hits; ++i) {
    Clock::time_point began = Clock::now();
    auto key = sppd::DnsblTableKey::make(hit_ip, zone, sppd::DnsblTableKey::Type::kTxt);
    auto verdict = table.find(*key, Clock::now());
    micros.push_back(since(began));
    if (!verdict) fail("the verdict for " + hit_ip + " is not in the shared table");
  }
  print("shm_hit", micros);

  micros.clear();
  for (long i = 0; i < socket_hits; ++i) {
    Clock::time_point began = Clock::now();
    ipc::Frame answer = cache.query(hit_ip, zone);
    micros.push_back(since(began));
    if (answer.get_or("cached", "") != "yes") fail("a socket hit was not answered from the cache");
  }
  print("socket_hit", micros);

  micros.clear();
  for (long i = 0; i < misses; ++i) {
    std::string ip = miss_net + "." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    Clock::time_point began = Clock::now();
    ipc::Frame answer = cache.query(ip, zone);
    micros.push_back(since(began));
    if (answer.get_or("cached", "") != "no") fail("a miss about " + ip + " came from the cache");
    if (answer.get_or("status", "") == "error") fail("dnsbl-cache answers 'error' for " + ip);
  }
  print("miss", micros);
  return 0;
}
