// rblspp: the seed's qmail-spp plugin (Tomislav Randjic's ucspi-tcp patch) that runs
// rblsmtpd's check at RCPT, shipped with sppd:  [rcpt]  plugins/ifauthskip
//                                                      :plugins/rblspp -r zone -r zone2
// Decides as rblspp_verdict.h says; each -r / -a lookup is a kDnsblQuery to dnsbl-cache over
// its local socket ($SPPD_DNSBL_SOCKET, which pluginrunner sets; default
// /run/sppd/dnsbl-cache.sock), so the plugin shares the host's one DNSBL cache. A socket
// that cannot be reached, or no answer within 10 s, is a DNS error (-C accepts, -c 451).
// Runs as the plugins' user. Prints "E553 text" / "E451 text" or nothing, logs a refusal on
// stderr as rblsmtpd does, and always exits 0.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/protocol.h"
#include "dnsbl-cache/local_client.h"
#include "pluginrunner/plugins/rblspp_verdict.h"

namespace sppd::rblspp {
namespace {

constexpr std::chrono::seconds kAnswerTimeout{10};

std::optional<std::string> env(const char* name) {
  const char* value = getenv(name);
  return value ? std::optional<std::string>(value) : std::nullopt;
}

void say(FILE* stream, const std::string& text) {
  fwrite(text.data(), 1, text.size(), stream);
  fflush(stream);
}

// Lookups over one connection to dnsbl-cache, made at the first lookup. After a failure
// every further lookup is an error at once: the time to wait has been spent.
class CacheLookups {
 public:
  explicit CacheLookups(std::string path) : path_(std::move(path)) {}

  LookupAnswer operator()(const RblStep& step, const std::string& ip) {
    std::string why;
    if (!failed_ && !client_) {
      client_ = dnsbl_cache::LocalClient::connect(path_, kAnswerTimeout, &why);
      if (!client_) return give_up(why);
    }
    if (failed_) return {};
    ipc::Frame query(protocol::kDnsblQuery, 0);
    query.add("ip", ip);
    query.add("zone", step.zone);
    query.add("type", step.kind == RblStep::Kind::kListTxt ? "txt" : "a");
    std::optional<ipc::Frame> result = client_->ask(std::move(query), kAnswerTimeout, &why);
    if (!result) return give_up(why);
    if (result->type != protocol::kDnsblResult) {
      return give_up("unexpected answer (frame type " + std::to_string(result->type) + ")");
    }
    std::string status = result->get_or("status", "error");
    if (status == "listed") return {RblLookup::kListed, result->get_or("text", "")};
    if (status == "clear") return {RblLookup::kClear, ""};
    return {};
  }

 private:
  LookupAnswer give_up(const std::string& why) {
    say(stderr, "rblspp: " + why + "; counting it as a DNS error\n");
    failed_ = true;
    client_.reset();
    return {};
  }

  std::string path_;
  std::optional<dnsbl_cache::LocalClient> client_;
  bool failed_ = false;
};

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Environment session{env("RBLSPP"), env("SMTPRCPTCOUNT"), env("TCPREMOTEIP")};
  CacheLookups lookups(env("SPPD_DNSBL_SOCKET").value_or(config::kDefaultDnsblSocket));
  std::string problem;
  std::optional<RblBlock> block = verdict(
      args, session, [&](const RblStep& step, const std::string& ip) { return lookups(step, ip); },
      &problem);
  if (!problem.empty()) say(stderr, "rblspp: " + problem + "\n");
  if (!block) return 0;
  say(stdout, plugin_output(*block));
  // qmail-spp plugins name qmail-smtpd's pid, their parent's.
  say(stderr, log_line(session.remote_ip.value_or(""), static_cast<long>(getppid()), *block));
  return 0;
}

}  // namespace
}  // namespace sppd::rblspp

int main(int argc, char** argv) { return sppd::rblspp::run(argc, argv); }
