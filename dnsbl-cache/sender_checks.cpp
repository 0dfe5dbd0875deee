// Sender checks (contract in sender_checks.h). A check walks: the domain's MX (or, without
// one, its A and AAAA), then for level 2 the exchangers' A and AAAA, the mxblacklist, and the
// call-back. Every name and address here came from DNS data a spammer may control: names are
// checked (normalize_host_name), the number of exchangers and addresses used is bounded, and
// every step ends in a verdict, so a request is always answered.
#include "dnsbl-cache/sender_checks.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>

#include <algorithm>

#include "common/log.h"
#include "dnsbl-cache/ares_results.h"
#include "dnsbl-cache/dnsbl_answer.h"
#include "dnsbl-cache/ptr_lookups.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr size_t kMaxExchangers = 5;      // exchangers whose addresses are looked up, by preference
constexpr size_t kMaxAddresses = 16;      // of one A or AAAA answer
constexpr long kMaxCallbackTimeout = 60;  // seconds: the worker's MAIL waits for all of this

SenderDnsAnswer dns_error(std::string why) {
  SenderDnsAnswer answer;
  answer.error = std::move(why);
  return answer;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

const char* type_name(int type) {
  return type == ns_t_mx ? "MX" : type == ns_t_a ? "A" : type == ns_t_aaaa ? "AAAA" : "?";
}

SenderVerdict verdict(SenderVerdict::Status status, std::string detail) {
  SenderVerdict out;
  out.status = status;
  out.detail = std::move(detail);
  return out;
}

// The A or AAAA records of a parsed answer as text, or an error.
SenderDnsAnswer address_answer(int type, const unsigned char* message, int length,
                               std::chrono::seconds ttl, std::chrono::seconds negative) {
  SenderDnsAnswer answer;
  hostent* parsed = nullptr;
  int count = static_cast<int>(kMaxAddresses);
  int status;
  if (type == ns_t_a) {
    ares_addrttl found[kMaxAddresses];
    status = ares_parse_a_reply(message, length, &parsed, found, &count);
    HostentPtr owner(parsed);
    for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &found[i].ipaddr, text, sizeof(text));
      answer.addresses.emplace_back(text);
    }
  } else {
    ares_addr6ttl found[kMaxAddresses];
    status = ares_parse_aaaa_reply(message, length, &parsed, found, &count);
    HostentPtr owner(parsed);
    for (int i = 0; status == ARES_SUCCESS && i < count; ++i) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &found[i].ip6addr, text, sizeof(text));
      answer.addresses.emplace_back(text);
    }
  }
  if (status == ARES_ENODATA || (status == ARES_SUCCESS && answer.addresses.empty())) {
    answer.addresses.clear();
    answer.status = SenderDnsAnswer::Status::kNoRecords;  // e.g. a CNAME alone
    answer.ttl = negative;
    return answer;
  }
  if (status != ARES_SUCCESS) {
    return dns_error(log::concat("bad ", type_name(type), " answer: ", ares_strerror(status)));
  }
  answer.status = SenderDnsAnswer::Status::kFound;
  answer.ttl = ttl;
  return answer;
}

SenderDnsAnswer mx_answer(const unsigned char* message, int length, std::chrono::seconds ttl,
                          std::chrono::seconds negative) {
  ares_mx_reply* parsed = nullptr;
  int status = ares_parse_mx_reply(message, length, &parsed);
  AresDataPtr owner(parsed);
  SenderDnsAnswer answer;
  if (status == ARES_ENODATA) {
    answer.status = SenderDnsAnswer::Status::kNoRecords;
    answer.ttl = negative;
    return answer;
  }
  if (status != ARES_SUCCESS) {
    return dns_error(log::concat("bad MX answer: ", ares_strerror(status)));
  }
  for (ares_mx_reply* mx = parsed; mx; mx = mx->next) {
    std::string host = mx->host ? mx->host : "";
    if (host.empty() || host == ".") {
      answer.exchangers.push_back({mx->priority, ""});
    } else if (std::optional<std::string> name = normalize_host_name(host)) {
      answer.exchangers.push_back({mx->priority, *name});
    }  // else: not a host name, never looked up
  }
  std::stable_sort(
      answer.exchangers.begin(), answer.exchangers.end(),
      [](const MailExchanger& a, const MailExchanger& b) { return a.preference < b.preference; });
  answer.status = SenderDnsAnswer::Status::kFound;
  answer.ttl = ttl;
  return answer;
}

}  // namespace

const char* status_text(SenderVerdict::Status status) {
  switch (status) {
    case SenderVerdict::Status::kOk:
      return "ok";
    case SenderVerdict::Status::kNoDomain:
      return "no_domain";
    case SenderVerdict::Status::kNullMx:
      return "null_mx";
    case SenderVerdict::Status::kDnsError:
      return "dns_error";
    case SenderVerdict::Status::kMxBlacklisted:
      return "mx_blacklisted";
    case SenderVerdict::Status::kRejected:
      return "rejected";
    case SenderVerdict::Status::kUnverified:
      return "unverified";
  }
  return "dns_error";
}

SenderDnsAnswer interpret_sender_answer(int type, int status, const unsigned char* answer,
                                        int length) {
  CacheLifetimes ttl = cache_lifetimes(type, answer, length);
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
    SenderDnsAnswer none;
    none.status = status == ARES_ENOTFOUND ? SenderDnsAnswer::Status::kNoDomain
                                           : SenderDnsAnswer::Status::kNoRecords;
    none.ttl = ttl.negative;
    return none;
  }
  if (status != ARES_SUCCESS) return dns_error(ares_strerror(status));
  if (!answer) return dns_error("empty answer");
  if (type == ns_t_mx) return mx_answer(answer, length, ttl.positive, ttl.negative);
  return address_answer(type, answer, length, ttl.positive, ttl.negative);
}

SenderCheckOptions sender_check_options(const config::Config& config) {
  SenderCheckOptions options;
  const config::Service& service = config.service("dnsbl-cache");
  long port = service.get_long("callback_port", 25);
  if (port < 1 || port > 65535) {
    throw config::ConfigError("callback_port must be a TCP port (1 to 65535)");
  }
  long seconds = service.get_long("callback_timeout", 15);
  if (seconds < 1 || seconds > kMaxCallbackTimeout) {
    throw config::ConfigError("callback_timeout must be 1 to " +
                              std::to_string(kMaxCallbackTimeout) + " seconds");
  }
  options.callback.port = static_cast<int>(port);
  options.callback.timeout = std::chrono::seconds(seconds);
  return options;
}

struct SenderChecks::Check {
  SenderCheckRequest request;
  Done done;
  std::string domain;  // lower-case
  bool fresh = false;  // a DNS query or a call-back was waited for
};

size_t SenderChecks::DnsKeyHash::operator()(const DnsKey& key) const {
  return std::hash<std::string>()(key.first) * 31 + static_cast<size_t>(key.second);
}

SenderChecks::SenderChecks(event_base* base, Resolver& resolver,
                           std::function<Clock::time_point()> now, size_t capacity)
    : base_(base),
      resolver_(resolver),
      now_(std::move(now)),
      dns_cache_(capacity),
      callback_cache_(capacity) {}

SenderChecks::~SenderChecks() = default;

void SenderChecks::check(const SenderCheckRequest& request, Done done) {
  auto check = std::make_shared<Check>(Check{request, std::move(done), {}, false});
  size_t at = request.sender.rfind('@');
  std::string domain = at == std::string::npos ? "" : request.sender.substr(at + 1);
  if (domain.size() > 2 && domain.front() == '[' && domain.back() == ']') {
    // A domain literal names its host: nothing to look up, nobody to ask by name.
    return finish(check, verdict(SenderVerdict::Status::kOk, "address literal " + domain));
  }
  std::optional<std::string> name = normalize_zone(domain);
  if (!name || name->find('.') == std::string::npos) {
    // Not a name DNS could hold (or a bare label, which no resolver's search list may
    // complete here): no such domain.
    return finish(check, verdict(SenderVerdict::Status::kNoDomain,
                                 "'" + domain.substr(0, 64) + "' is not a domain name"));
  }
  check->domain = *name;
  lookup(check->domain, ns_t_mx, [this, check](const SenderDnsAnswer& answer, bool cached) {
    check->fresh = check->fresh || !cached;
    on_mx(check, answer);
  });
}

void SenderChecks::on_mx(const CheckPtr& check, const SenderDnsAnswer& answer) {
  using Status = SenderDnsAnswer::Status;
  const std::string& domain = check->domain;
  if (answer.status == Status::kError) {
    return finish(
        check, verdict(SenderVerdict::Status::kDnsError, "MX of " + domain + ": " + answer.error));
  }
  if (answer.status == Status::kNoDomain) {
    return finish(check, verdict(SenderVerdict::Status::kNoDomain, domain + " does not exist"));
  }
  if (answer.status == Status::kNoRecords) return check_implicit_mx(check);
  std::vector<MailExchanger> exchangers;
  for (const MailExchanger& exchanger : answer.exchangers) {
    if (!exchanger.host.empty()) exchangers.push_back(exchanger);
  }
  if (exchangers.empty() && !answer.exchangers.empty()) {
    return finish(check, verdict(SenderVerdict::Status::kNullMx, domain + " has a null MX"));
  }
  if (check->request.level < 2) {
    std::vector<std::string> hosts;
    for (const MailExchanger& exchanger : exchangers) hosts.push_back(exchanger.host);
    return finish(check, verdict(SenderVerdict::Status::kOk, "MX " + joined(hosts)));
  }
  resolve_exchangers(check, exchangers);
}

void SenderChecks::check_implicit_mx(const CheckPtr& check) {
  struct Pending {
    SenderDnsAnswer a, aaaa;
    int left = 2;
  };
  auto pending = std::make_shared<Pending>();
  auto both_done = [this, check, pending] {
    using Status = SenderDnsAnswer::Status;
    const SenderDnsAnswer& a = pending->a;
    const SenderDnsAnswer& aaaa = pending->aaaa;
    if (a.status == Status::kFound || aaaa.status == Status::kFound) {
      std::vector<std::string> addresses = a.addresses;
      addresses.insert(addresses.end(), aaaa.addresses.begin(), aaaa.addresses.end());
      if (check->request.level < 2) {
        return finish(check,
                      verdict(SenderVerdict::Status::kOk, "no MX; address " + joined(addresses)));
      }
      return call_back(check, std::move(addresses));
    }
    if (a.status == Status::kError || aaaa.status == Status::kError) {
      const std::string& why = a.status == Status::kError ? a.error : aaaa.error;
      return finish(check, verdict(SenderVerdict::Status::kDnsError,
                                   "A/AAAA of " + check->domain + ": " + why));
    }
    finish(check, verdict(SenderVerdict::Status::kNoDomain,
                          check->domain + " has no MX, A or AAAA record"));
  };
  for (int type : {ns_t_a, ns_t_aaaa}) {
    lookup(check->domain, type,
           [check, pending, type, both_done](const SenderDnsAnswer& answer, bool cached) {
             check->fresh = check->fresh || !cached;
             (type == ns_t_a ? pending->a : pending->aaaa) = answer;
             if (--pending->left == 0) both_done();
           });
  }
}

void SenderChecks::resolve_exchangers(const CheckPtr& check,
                                      const std::vector<MailExchanger>& exchangers) {
  if (exchangers.empty()) {
    return finish(check, verdict(SenderVerdict::Status::kUnverified,
                                 check->domain + " has no usable mail exchanger"));
  }
  struct Pending {
    std::vector<std::string> hosts;
    std::vector<SenderDnsAnswer> answers;  // per host: A, then AAAA
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  for (size_t i = 0; i < exchangers.size() && i < kMaxExchangers; ++i) {
    pending->hosts.push_back(exchangers[i].host);
  }
  pending->answers.resize(pending->hosts.size() * 2);
  pending->left = pending->answers.size();
  auto all_done = [this, check, pending] {
    std::vector<std::string> addresses, problems;
    for (size_t i = 0; i < pending->answers.size(); ++i) {
      const SenderDnsAnswer& answer = pending->answers[i];
      if (answer.status == SenderDnsAnswer::Status::kError) {
        problems.push_back(pending->hosts[i / 2] + " " + (i % 2 ? "AAAA" : "A") + ": " +
                           answer.error);
      }
      for (const std::string& address : answer.addresses) {
        if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
          addresses.push_back(address);
        }
      }
    }
    if (addresses.empty()) {
      return finish(check, verdict(SenderVerdict::Status::kUnverified,
                                   "no address for the mail exchangers of " + check->domain +
                                       (problems.empty() ? "" : ": " + joined(problems))));
    }
    call_back(check, std::move(addresses));
  };
  for (size_t i = 0; i < pending->answers.size(); ++i) {
    lookup(pending->hosts[i / 2], i % 2 ? ns_t_aaaa : ns_t_a,
           [check, pending, i, all_done](const SenderDnsAnswer& answer, bool cached) {
             check->fresh = check->fresh || !cached;
             pending->answers[i] = answer;
             if (--pending->left == 0) all_done();
           });
  }
}

void SenderChecks::call_back(const CheckPtr& check, std::vector<std::string> addresses) {
  const SenderCheckRequest& request = check->request;
  std::vector<std::string> allowed;
  for (const std::string& address : addresses) {
    const auto& blacklist = request.mxblacklist;
    if (std::find(blacklist.begin(), blacklist.end(), address) == blacklist.end()) {
      allowed.push_back(address);
    }
  }
  if (allowed.empty()) {
    return finish(check, verdict(SenderVerdict::Status::kMxBlacklisted,
                                 "every mail exchanger address of " + check->domain +
                                     " is in mxblacklist: " + joined(addresses)));
  }
  if (allowed.size() > options_.max_addresses) allowed.resize(options_.max_addresses);
  size_t at = request.sender.rfind('@');
  std::string key = request.sender.substr(0, at) + "@" + check->domain + " " + joined(allowed);
  if (const SenderVerdict* cached = callback_cache_.find(key, now_())) {
    ++callback_counters_.hits;
    return finish(check, *cached);
  }
  ++callback_counters_.misses;
  check->fresh = true;
  auto [it, first] = callback_waiting_.try_emplace(key);
  it->second.push_back(check);
  if (!first) {
    ++callback_counters_.coalesced;
    return;
  }
  if (callbacks_.size() >= options_.max_callbacks) {
    ++callback_counters_.errors;
    std::vector<CheckPtr> waiting = std::move(it->second);
    callback_waiting_.erase(it);
    for (const CheckPtr& waiter : waiting) {
      finish(waiter, verdict(SenderVerdict::Status::kUnverified,
                             "too many call-backs in progress (" +
                                 std::to_string(options_.max_callbacks) + ")"));
    }
    return;
  }
  ++callback_counters_.queries;
  uint64_t id = next_callback_++;
  auto callback = std::make_unique<Callback>(
      base_, allowed, request.helo, request.sender.substr(0, at) + "@" + check->domain,
      options_.callback,
      [this, id, key](const CallbackOutcome& outcome) { finish_callback(id, key, outcome); });
  Callback* started = callback.get();
  callbacks_[id] = std::move(callback);
  started->start();
}

void SenderChecks::finish_callback(uint64_t id, const std::string& key,
                                   const CallbackOutcome& outcome) {
  SenderVerdict result;
  result.reply = outcome.reply;
  std::chrono::seconds ttl = options_.unverified_ttl;
  switch (outcome.kind) {
    case CallbackOutcome::Kind::kAccepted:
      result.status = SenderVerdict::Status::kOk;
      result.detail = "call-back accepted by " + outcome.address;
      ttl = options_.positive_ttl;
      break;
    case CallbackOutcome::Kind::kRejected:
      result.status = SenderVerdict::Status::kRejected;
      result.detail = "call-back refused by " + outcome.address;
      ttl = options_.negative_ttl;
      break;
    case CallbackOutcome::Kind::kUnverified:
      ++callback_counters_.errors;
      result.status = SenderVerdict::Status::kUnverified;
      result.detail = "call-back failed: " + outcome.detail;
      break;
  }
  callback_cache_.store(key, result, ttl, now_());
  // The Callback is still on the stack (its timer called us) but touches nothing after this.
  callbacks_.erase(id);
  auto it = callback_waiting_.find(key);
  if (it == callback_waiting_.end()) return;
  std::vector<CheckPtr> waiting = std::move(it->second);
  callback_waiting_.erase(it);
  for (const CheckPtr& check : waiting) finish(check, result);
}

void SenderChecks::finish(const CheckPtr& check, SenderVerdict result) {
  result.cached = !check->fresh;
  log::debug("sender check <", check->request.sender, "> level ", check->request.level, ": ",
             status_text(result.status), " (", result.detail, ")", result.cached ? " cached" : "");
  Done done = std::move(check->done);
  if (done) done(result);
}

void SenderChecks::lookup(const std::string& name, int type, DnsDone done) {
  DnsKey key{name, type};
  if (const SenderDnsAnswer* cached = dns_cache_.find(key, now_())) {
    ++dns_counters_.hits;
    done(*cached, true);
    return;
  }
  ++dns_counters_.misses;
  auto [it, first] = dns_waiting_.try_emplace(key);
  it->second.push_back(std::move(done));
  if (!first) {
    ++dns_counters_.coalesced;
    return;
  }
  ++dns_counters_.queries;
  resolver_.query(name, type, [this, key](int status, const unsigned char* answer, int length) {
    finish_lookup(key, status, interpret_sender_answer(key.second, status, answer, length));
  });
}

void SenderChecks::finish_lookup(const DnsKey& key, int status, const SenderDnsAnswer& answer) {
  if (status == ARES_ETIMEOUT) {
    ++dns_counters_.timeouts;
  } else if (answer.status == SenderDnsAnswer::Status::kError) {
    ++dns_counters_.errors;
  } else {
    dns_cache_.store(key, answer, answer.ttl, now_());
  }
  auto it = dns_waiting_.find(key);
  if (it == dns_waiting_.end()) return;
  std::vector<DnsDone> callers = std::move(it->second);
  dns_waiting_.erase(it);
  for (DnsDone& done : callers) done(answer, false);
}

}  // namespace sppd::dnsbl_cache
