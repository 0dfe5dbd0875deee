// ClientLimits (contract in client_limits.h): reading tcprules' overrides and wording the
// refusal. Pure; runs in the sandboxed worker.
#include "smtpd/client_limits.h"

#include <charconv>

namespace sppd::smtpd {
namespace {

constexpr long kMaxLimit = 1000000;  // config.cpp's bound for the listener settings

// Applies one tcprules override to *limit; describes a bad value in *problem.
void override_limit(const char* name, const std::string* value, long* limit, std::string* problem) {
  if (!value) return;
  long parsed = -1;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), parsed);
  if (value->empty() || error != std::errc() || end != value->data() + value->size() ||
      parsed < 0 || parsed > kMaxLimit) {
    if (!problem->empty()) *problem += "; ";
    *problem += std::string(name) + "='" + value->substr(0, 32) +
                "' is not a whole number from 0 to " + std::to_string(kMaxLimit) +
                ": the listener's limit applies";
    return;
  }
  *limit = parsed;
}

}  // namespace

ClientLimits client_limits(const config::Listener& listener, const std::string* maxconnip,
                           const std::string* maxconnrate, std::string* problem) {
  problem->clear();
  ClientLimits limits{listener.max_connections_per_ip, listener.max_connection_rate_per_ip,
                      listener.connection_rate_window};
  override_limit("MAXCONNIP", maxconnip, &limits.max_connections, problem);
  override_limit("MAXCONNRATE", maxconnrate, &limits.max_rate, problem);
  return limits;
}

std::string client_refusal(std::string_view verdict, const std::string& ip,
                           const ClientLimits& limits) {
  if (verdict == "too_fast") {
    return "421 4.7.0 too many connections from " + ip + " in " +
           std::to_string(limits.rate_window) + " s, try again later";
  }
  return "421 4.7.0 too many connections from " + ip + ", try again later";
}

}  // namespace sppd::smtpd
