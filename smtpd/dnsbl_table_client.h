// DnsblTableClient: a worker's view of dnsbl-cache's shared-memory DNSBL table
// (common/dnsbl_table.h). Whenever the worker gets a (new) dnsbl-cache channel it asks for the
// table (kDnsblTableRequest) and maps the read-only descriptor of the answer, replacing the
// old mapping: a restarted dnsbl-cache has a new table. Sessions look verdicts up here before
// they ask over the channel; the hits are reported to dnsbl-cache (kDnsblShmHits) at most once
// a second, and when the worker stops. Runs in the sandboxed worker: mapping a received
// descriptor takes mmap (PROT_READ, MAP_SHARED), fstat and munmap, all on the allowlist. A
// table that cannot be mapped is logged and left out; every lookup then goes over the channel.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/dnsbl_table.h"
#include "common/event.h"
#include "common/frame.h"
#include "smtpd/helper_link.h"

namespace sppd::smtpd {

class DnsblTableClient {
 public:
  DnsblTableClient(event_base* base, HelperLink& dns);
  DnsblTableClient(const DnsblTableClient&) = delete;
  DnsblTableClient& operator=(const DnsblTableClient&) = delete;

  // The dnsbl-cache link has a new channel: drops the old table and asks for the new one.
  void attach();
  // The unexpired verdict for (client ip, zone, type) if the table has it whole; nullopt
  // (ask the channel) otherwise, or without a table.
  std::optional<DnsblTableVerdict> find(const std::string& ip, const std::string& zone,
                                        DnsblTableKey::Type type);
  // Tells dnsbl-cache about the hits not reported yet (the timer does it once a second; the
  // worker calls it when its loop has ended).
  void report_hits();
  bool mapped() const { return reader_ != nullptr; }

 private:
  void on_table(ipc::Frame* frame);
  static void on_report_timer(evutil_socket_t, short, void* self);

  event_base* base_;
  HelperLink& dns_;
  std::unique_ptr<DnsblTableReader> reader_;
  std::optional<uint32_t> request_;  // the kDnsblTableRequest out
  uint64_t unreported_hits_ = 0;
  EventPtr report_timer_;
};

}  // namespace sppd::smtpd
