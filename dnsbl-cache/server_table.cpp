// Server's side of the shared-memory DNSBL table (contract in server.h, protocol.h
// kDnsblTableRequest / kDnsblTable / kDnsblShmHits, layout in common/dnsbl_table.h): anyone
// who asks gets a read-only descriptor of the table, and workers report the verdicts they
// found there for the operators' counters. A malformed report costs the worker its channel.
#include <charconv>

#include "common/dnsbl_table.h"
#include "common/protocol.h"
#include "dnsbl-cache/server.h"

namespace sppd::dnsbl_cache {
namespace {

// More than a worker could find between two reports (at most one a second).
constexpr uint64_t kMaxShmHitsReport = uint64_t{1} << 40;

}  // namespace

void Server::on_table_request(helper::Client& client, const ipc::Frame& frame) {
  ipc::Frame reply(protocol::kDnsblTable, frame.request_id);
  // Without a table (it could not be made) the answer has no descriptor: the asker goes on
  // asking over its channel.
  reply.fd = dnsbl_.table_descriptor();
  if (reply.fd) {
    reply.add("slots", std::to_string(dnsbl_.table_slots()));
    reply.add("slot_size", std::to_string(dnsbl_table_layout::kSlotSize));
  }
  client.channel->send(std::move(reply));
}

void Server::on_shm_hits(helper::Client& client, const ipc::Frame& frame) {
  const std::string* text = frame.get("count");
  uint64_t count = 0;
  const char* end = text ? text->data() + text->size() : nullptr;
  auto parsed = text ? std::from_chars(text->data(), end, count) : std::from_chars_result{};
  if (!text || text->empty() || parsed.ec != std::errc() || parsed.ptr != end ||
      count > kMaxShmHitsReport) {
    return service_.malformed(client, "kDnsblShmHits needs a count");
  }
  dnsbl_.count_shm_hits(count);
}

}  // namespace sppd::dnsbl_cache
