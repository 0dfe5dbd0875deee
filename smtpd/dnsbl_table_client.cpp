// DnsblTableClient implementation (see dnsbl_table_client.h). A hit costs a key built from
// the session's text, a lock-free read of one bucket and the clock; the report is a counter
// and a one-shot timer, so sessions never wait on it.
#include "smtpd/dnsbl_table_client.h"

#include <chrono>

#include "common/log.h"
#include "common/protocol.h"

namespace sppd::smtpd {
namespace {

constexpr timeval kReportInterval{1, 0};

}  // namespace

DnsblTableClient::DnsblTableClient(event_base* base, HelperLink& dns)
    : base_(base), dns_(dns), report_timer_(evtimer_new(base, on_report_timer, this)) {}

void DnsblTableClient::attach() {
  // The old table's verdicts are still right until they expire, but the new dnsbl-cache
  // keeps a new table: from now on its verdicts, and its counters, are the ones that count.
  reader_.reset();
  unreported_hits_ = 0;
  if (request_) dns_.cancel(*request_);
  request_ = dns_.request(ipc::Frame(protocol::kDnsblTableRequest, 0),
                          [this](ipc::Frame* frame) { on_table(frame); });
}

void DnsblTableClient::on_table(ipc::Frame* frame) {
  if (request_) dns_.cancel(*request_);
  request_.reset();
  if (!frame) return;  // dnsbl-cache went away before it answered; attach() asks the next one
  if (frame->type != protocol::kDnsblTable) {
    log::warn("dnsbl-cache answered the table request with frame type ", frame->type);
    return;
  }
  if (!frame->fd) {
    log::info("dnsbl-cache has no shared DNSBL table; every verdict is asked over its channel");
    return;
  }
  std::string slots = frame->get_or("slots", "");
  std::string slot_size = frame->get_or("slot_size", "");
  if (slot_size != std::to_string(dnsbl_table_layout::kSlotSize)) {
    log::warn("dnsbl-cache's DNSBL table has slots of ", slot_size, " bytes, this worker knows ",
              dnsbl_table_layout::kSlotSize, " (a mixed upgrade?); not using it");
    return;
  }
  try {
    auto reader = std::make_unique<DnsblTableReader>(frame->fd);
    if (std::to_string(reader->slot_count()) != slots) {
      log::warn("dnsbl-cache's DNSBL table has ", reader->slot_count(), " slots, it said ", slots,
                "; not using it");
      return;
    }
    reader_ = std::move(reader);
    log::info("mapped dnsbl-cache's DNSBL table (", slots, " slots)");
  } catch (const DnsblTableError& e) {
    log::warn(e.what(), "; every DNSBL verdict is asked over the channel");
  }
}

std::optional<DnsblTableVerdict> DnsblTableClient::find(const std::string& ip,
                                                        const std::string& zone,
                                                        DnsblTableKey::Type type) {
  if (!reader_) return std::nullopt;
  std::optional<DnsblTableKey> key = DnsblTableKey::make(ip, zone, type);
  if (!key) return std::nullopt;
  std::optional<DnsblTableVerdict> verdict = reader_->find(*key, DnsblTableReader::Clock::now());
  if (verdict && unreported_hits_++ == 0) evtimer_add(report_timer_.get(), &kReportInterval);
  return verdict;
}

void DnsblTableClient::report_hits() {
  if (unreported_hits_ == 0) return;
  ipc::Frame report(protocol::kDnsblShmHits, 0);
  report.add("count", std::to_string(unreported_hits_));
  // Without a channel the hits stay counted here; a new channel means a new dnsbl-cache, and
  // attach() forgets them.
  if (dns_.notify(std::move(report))) unreported_hits_ = 0;
}

void DnsblTableClient::on_report_timer(evutil_socket_t, short, void* self) {
  auto* client = static_cast<DnsblTableClient*>(self);
  client->report_hits();
  // Kept for later (no channel right now): try again in a second.
  if (client->unreported_hits_ > 0) evtimer_add(client->report_timer_.get(), &kReportInterval);
}

}  // namespace sppd::smtpd
