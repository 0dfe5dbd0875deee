// SenderChecks: qmail-md's control/mfcheck for the workers (protocol.h kSenderCheck). Level 1:
// the sender's domain must have an MX, or else an A or AAAA record. Level 2: also one of its
// mail exchangers (by preference; the domain itself without an MX) must accept
// RCPT TO:<sender> in a call-back (callback.h), never calling an address of the listener's
// control/mxblacklist. DNS answers are cached for their TTL and call-back verdicts for fixed
// times (TtlCache, like the DNSBL cache), and requests that need the same DNS query or
// call-back while it is out share it. Runs in sppd-dnsbl-cache, unprivileged; DNS failures,
// silent or broken exchangers are verdicts ("dns_error", "unverified"), never exceptions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/event.h"
#include "dnsbl-cache/callback.h"
#include "dnsbl-cache/lookup_counters.h"
#include "dnsbl-cache/resolver.h"
#include "dnsbl-cache/ttl_cache.h"

namespace sppd::dnsbl_cache {

struct SenderCheckRequest {
  std::string sender;                    // local@domain, as the client gave it
  int level = 1;                         // 1: DNS only; 2: with the call-back
  std::string helo;                      // level 2: the name the call-back's HELO gives
  std::vector<std::string> mxblacklist;  // level 2: canonical IPs never called
};

struct SenderVerdict {
  enum class Status {
    kOk,             // the domain exists (level 2: and the call-back accepted, or was skipped)
    kNoDomain,       // NXDOMAIN, or no MX, A nor AAAA record
    kNullMx,         // the domain says it takes no mail (RFC 7505 "MX 0 .")
    kDnsError,       // a DNS failure or timeout: nothing is known
    kMxBlacklisted,  // level 2: every address of its exchangers is in the mxblacklist
    kRejected,       // level 2: an exchanger answered RCPT TO:<sender> with a 5xx
    kUnverified,     // level 2: no exchanger gave an answer (down, slow, 4xx): accepted
  };
  Status status = Status::kDnsError;
  std::vector<std::string> reply;  // the exchanger's reply lines to RCPT (call-back answers)
  std::string detail;              // for the worker's log: what was found or went wrong
  bool cached = false;             // answered without a DNS query or a call-back
};

// The wire value of a status ("ok", "no_domain", ...; protocol.h kSenderVerdict).
const char* status_text(SenderVerdict::Status status);

// What a DNS question about a sender's domain or its exchangers found.
struct MailExchanger {
  int preference = 0;
  std::string host;  // lower-case, no trailing dot; "" for RFC 7505's "."
};
struct SenderDnsAnswer {
  enum class Status { kFound, kNoRecords, kNoDomain, kError };
  Status status = Status::kError;
  std::vector<MailExchanger> exchangers;  // MX: by preference, then as the server listed them
  std::vector<std::string> addresses;     // A / AAAA: canonical text
  std::chrono::seconds ttl{0};            // how long it may be cached; 0 for errors
  std::string error;                      // kError: why, for the log
};

// Turns c-ares's status and raw answer to a query of type (ns_t_mx, ns_t_a, ns_t_aaaa) into
// a SenderDnsAnswer. TTLs are clamped like DNSBL answers (1 minute to 1 hour).
SenderDnsAnswer interpret_sender_answer(int type, int status, const unsigned char* answer,
                                        int length);

struct SenderCheckOptions {
  CallbackOptions callback;  // port and timeout of each call-back conversation
  // How long call-back verdicts are kept: an accepted mailbox, a refused one (and a call-back
  // nobody answered, so a dead exchanger does not hold every MAIL for the timeout again).
  std::chrono::seconds positive_ttl{3600};
  std::chrono::seconds negative_ttl{600};
  std::chrono::seconds unverified_ttl{600};
  // Exchanger addresses called per check, and call-backs out at once (each holds a socket).
  size_t max_addresses = 3;
  size_t max_callbacks = 200;
};

// [service dnsbl-cache] callback_port (default 25) and callback_timeout (seconds, default
// 15, at most 60) as options; throws config::ConfigError if either is malformed.
SenderCheckOptions sender_check_options(const config::Config& config);

class SenderChecks {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(const SenderVerdict& verdict)>;
  static constexpr size_t kCapacity = 20000;  // entries of each cache

  SenderChecks(event_base* base, Resolver& resolver,
               std::function<Clock::time_point()> now = Clock::now, size_t capacity = kCapacity);
  ~SenderChecks();
  SenderChecks(const SenderChecks&) = delete;
  SenderChecks& operator=(const SenderChecks&) = delete;

  // Takes effect for the next call-back.
  void set_options(const SenderCheckOptions& options) { options_ = options; }
  const SenderCheckOptions& options() const { return options_; }
  // Checks request.sender; done runs once, possibly before check() returns.
  void check(const SenderCheckRequest& request, Done done);

  // DNS questions about senders' domains and exchangers; call-backs (queries = made,
  // errors = unverified, timeouts unused).
  const LookupCounters& dns_counters() const { return dns_counters_; }
  const LookupCounters& callback_counters() const { return callback_counters_; }
  size_t cache_size() const { return dns_cache_.size() + callback_cache_.size(); }

 private:
  struct Check;  // one request on its way through the steps below
  using CheckPtr = std::shared_ptr<Check>;
  using DnsKey = std::pair<std::string, int>;  // (name, type)
  struct DnsKeyHash {
    size_t operator()(const DnsKey& key) const;
  };
  using DnsDone = std::function<void(const SenderDnsAnswer& answer, bool cached)>;

  // One DNS question, from the cache or shared with the same one in flight.
  void lookup(const std::string& name, int type, DnsDone done);
  void finish_lookup(const DnsKey& key, int status, const SenderDnsAnswer& answer);
  void on_mx(const CheckPtr& check, const SenderDnsAnswer& answer);
  // The domain has no MX: its own A and AAAA records decide (RFC 5321 §5.1 implicit MX).
  void check_implicit_mx(const CheckPtr& check);
  // Level 2: the addresses of every exchanger, in preference order.
  void resolve_exchangers(const CheckPtr& check, const std::vector<MailExchanger>& exchangers);
  void call_back(const CheckPtr& check, std::vector<std::string> addresses);
  void finish_callback(uint64_t id, const std::string& key, const CallbackOutcome& outcome);
  void finish(const CheckPtr& check, SenderVerdict verdict);

  event_base* base_;
  Resolver& resolver_;
  std::function<Clock::time_point()> now_;
  SenderCheckOptions options_;
  TtlCache<DnsKey, SenderDnsAnswer, DnsKeyHash> dns_cache_;
  std::unordered_map<DnsKey, std::vector<DnsDone>, DnsKeyHash> dns_waiting_;
  // Call-back verdicts by "sender addresses-called" (the same mailbox asked of other hosts,
  // as another listener's mxblacklist may choose, is another question).
  TtlCache<std::string, SenderVerdict> callback_cache_;
  std::unordered_map<std::string, std::vector<CheckPtr>> callback_waiting_;
  std::map<uint64_t, std::unique_ptr<Callback>> callbacks_;
  uint64_t next_callback_ = 1;
  LookupCounters dns_counters_;
  LookupCounters callback_counters_;
};

}  // namespace sppd::dnsbl_cache
