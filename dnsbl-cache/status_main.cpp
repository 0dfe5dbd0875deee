// sppd-dnsbl-status: the operators' view of dnsbl-cache's counters (issue 5 item 6).
//   sppd-dnsbl-status [--config PATH | --socket PATH]
// asks the running dnsbl-cache over its local socket ([service dnsbl-cache] socket of the
// config, or the given path, default /run/sppd/dnsbl-cache.sock) with kStatusQuery and
// prints one "name value" line per counter, in the order dnsbl-cache sent them. Needs the
// right to connect (root, or the group of [service pluginrunner] user). Exit status as
// qmail's tools: 0 printed, 100 usage error, 111 temporary failure (sppd not running, no
// answer, unreadable config).
#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/protocol.h"
#include "dnsbl-cache/local_client.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr int kExitUsage = 100;
constexpr int kExitTemporary = 111;
constexpr std::chrono::seconds kTimeout{10};
constexpr char kProgram[] = "sppd-dnsbl-status";

int usage(const std::string& why) {
  std::cerr << kProgram << ": " << why << "\nusage: " << kProgram
            << " [--config /etc/sppd/sppd.conf | --socket " << config::kDefaultDnsblSocket << "]\n";
  return kExitUsage;
}

int temporary(const std::string& why) {
  std::cerr << kProgram << ": " << why << "\n";
  return kExitTemporary;
}

int run(int argc, char** argv) {
  std::string config_path, socket_path;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if ((arg == "--config" || arg == "--socket") && i + 1 < argc) {
      (arg == "--config" ? config_path : socket_path) = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      usage("prints dnsbl-cache's counters");
      return 0;
    } else {
      return usage("unexpected argument '" + std::string(arg) + "'");
    }
  }
  if (!config_path.empty() && !socket_path.empty()) {
    return usage("give --config or --socket, not both");
  }
  if (!config_path.empty()) {
    try {
      socket_path = config::dnsbl_socket(config::load(config_path));
    } catch (const config::ConfigError& e) {
      return temporary(e.what());
    }
  }
  if (socket_path.empty()) socket_path = config::kDefaultDnsblSocket;

  std::string why;
  std::optional<LocalClient> client = LocalClient::connect(socket_path, kTimeout, &why);
  if (!client) return temporary(why + " (is sppd running?)");
  std::optional<ipc::Frame> report =
      client->ask(ipc::Frame(protocol::kStatusQuery, 0), kTimeout, &why);
  if (!report) return temporary(why);
  if (report->type != protocol::kStatusReport) {
    return temporary("unexpected answer (frame type " + std::to_string(report->type) + ") from " +
                     socket_path);
  }
  std::string out;
  for (std::string_view counter : report->all("counter")) {
    size_t eq = counter.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return temporary("malformed counter '" + std::string(counter) + "' from " + socket_path);
    }
    out.append(counter.substr(0, eq)).append(" ").append(counter.substr(eq + 1)).append("\n");
  }
  std::cout << out << std::flush;
  return std::cout ? 0 : kExitTemporary;
}

}  // namespace
}  // namespace sppd::dnsbl_cache

int main(int argc, char** argv) { return sppd::dnsbl_cache::run(argc, argv); }
