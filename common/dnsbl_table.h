// The DNSBL table: dnsbl-cache's verdicts in a shared-memory segment, so that a worker uses a
// cached verdict without a round trip (issue 5 item 2; DESIGN.md "The DNSBL table"). One
// writer (dnsbl-cache) creates a sealed memfd and stores every verdict it caches; readers
// (smtpd workers, the benchmark) map a read-only descriptor of it and look up without locks.
// Each slot has a sequence counter (a seqlock: odd while the writer is in it); a reader that
// finds it odd or changed after copying the slot, another key, or an expired verdict has a
// miss, and asks dnsbl-cache over its channel as before. Creating or mapping a table throws
// DnsblTableError; looking up never fails, it misses.
#pragma once

#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"

namespace sppd {

struct DnsblTableError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What a verdict is about: the client address as dnsbl-cache keys it (an IPv4-mapped IPv6
// address reduced to IPv4), the zone (lower case, no trailing dot) and the record type.
struct DnsblTableKey {
  enum class Type : uint8_t { kTxt = 1, kA = 2 };  // rblsmtpd's -r zone / -r zone:text, -a
  uint8_t family = 0;                              // 4 or 6
  unsigned char address[16] = {};                  // network order; the first 4 for IPv4
  std::string zone;
  Type type = Type::kTxt;

  // The key of a numeric address (text), zone and type; nullopt if ip is not a numeric
  // address or zone is empty or longer than a domain name may be.
  static std::optional<DnsblTableKey> make(std::string_view ip, std::string_view zone, Type type);
};

// A verdict as dnsbl-cache answers kDnsblQuery (protocol.h kDnsblResult); errors are never in
// the table.
struct DnsblTableVerdict {
  bool listed = false;
  std::string text;                    // kTxt: the TXT text if listed
  std::vector<std::string> addresses;  // kA: the A records (dotted quads) if listed

  bool operator==(const DnsblTableVerdict&) const = default;
};

// The fixed layout both sides agree on (the table's header repeats the numbers, and a reader
// refuses a table whose numbers differ from its own). Slot contents are written and read
// through atomics only, so a reader racing the writer copies garbage at worst, never reads
// undefined memory, and the sequence counter tells it to throw the copy away.
namespace dnsbl_table_layout {

constexpr uint64_t kMagic = 0x31'4c'42'44'44'50'50'53;  // "SPPDDBL1" in memory order
constexpr uint32_t kVersion = 1;
// 16,384 slots of 576 bytes = 9 MiB of shared memory, touched as it fills: room for the
// verdicts of ~8,000 clients checked against two zones. A busy host sees fewer distinct clients
// per hour (the longest a verdict lives), and a verdict pushed out is still one round trip
// away in dnsbl-cache's own cache (100,000 entries).
constexpr uint32_t kDefaultSlots = 16384;
// A key may live in any of the 4 slots of its bucket: a new verdict goes to the same key's
// slot, else an empty or expired one, else the one that expires first. A bucket is 2 KiB, so
// a lookup reads at most 4 slots' first words plus one whole slot.
constexpr uint32_t kWays = 4;
constexpr size_t kMaxZone = 253;  // RFC 1035 §2.3.4, without the trailing dot
constexpr size_t kMaxText = 200;  // rblsmtpd's limit, as dnsbl-cache cuts it
// Listed A answers with more addresses stay out of the table (workers ask the socket).
constexpr size_t kMaxAddresses = 8;

// The slot's payload, copied in and out of the shared words as a whole.
struct SlotData {
  uint64_t key_hash = 0;    // hash of the key with the table's seed; 0 = empty slot
  int64_t expires_ns = 0;   // steady_clock (CLOCK_MONOTONIC) nanoseconds
  uint8_t family = 0;       // 4 or 6
  uint8_t type = 0;         // DnsblTableKey::Type
  uint8_t listed = 0;       // 1 listed, 0 clear
  uint8_t zone_length = 0;  // <= kMaxZone
  uint8_t text_length = 0;  // <= kMaxText
  uint8_t address_count = 0;
  uint8_t unused[2] = {};
  unsigned char address[16] = {};
  unsigned char addresses[kMaxAddresses][4] = {};
  char zone[256] = {};
  char text[kMaxText] = {};
};
static_assert(sizeof(SlotData) % 8 == 0);
constexpr size_t kSlotWords = sizeof(SlotData) / 8;

struct alignas(64) Slot {
  std::atomic<uint32_t> sequence;  // even: stable; odd: the writer is changing the slot
  uint32_t unused;
  std::atomic<uint64_t> words[kSlotWords];  // SlotData
};
static_assert(std::atomic<uint32_t>::is_always_lock_free);  // so usable across processes
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// The first 64 bytes of the segment; written once before any reader gets the descriptor.
struct alignas(64) Header {
  uint64_t magic;
  uint32_t version;
  uint32_t slot_count;  // a power of two, a multiple of kWays
  uint32_t slot_size;   // sizeof(Slot)
  uint32_t ways;
  uint64_t seed;  // mixed into the key hash, so clients cannot aim at one bucket
};

constexpr size_t kSlotSize = sizeof(Slot);
// The segment's size for slot_count slots.
constexpr size_t segment_size(size_t slot_count) { return sizeof(Header) + slot_count * kSlotSize; }

}  // namespace dnsbl_table_layout

// The writer's side, in dnsbl-cache: created at start-up (before privileges are dropped: it
// reopens the segment read-only through /proc/self/fd), then store() for every verdict
// cached. Not thread-safe: one writer.
class DnsblTableWriter {
 public:
  using Clock = std::chrono::steady_clock;
  // Creates a zeroed table of slot_count slots (a power of two, at least kWays).
  explicit DnsblTableWriter(uint32_t slot_count = dnsbl_table_layout::kDefaultSlots);
  DnsblTableWriter(const DnsblTableWriter&) = delete;
  DnsblTableWriter& operator=(const DnsblTableWriter&) = delete;

  // Publishes verdict for key until expires. False (nothing stored) if it does not fit the
  // layout: a text over kMaxText, more than kMaxAddresses addresses, or one that is not a
  // dotted quad.
  bool store(const DnsblTableKey& key, const DnsblTableVerdict& verdict, Clock::time_point expires);
  // A new read-only descriptor of the segment (close-on-exec), to hand to a reader; throws
  // DnsblTableError when the process is out of descriptors.
  UniqueFd read_only_descriptor() const;
  uint32_t slot_count() const { return slot_count_; }

 private:
  UniqueFd memfd_;
  UniqueFd read_only_;
  boost::interprocess::mapped_region region_;
  dnsbl_table_layout::Slot* slots_ = nullptr;
  uint32_t slot_count_;
  uint64_t seed_ = 0;
};

// The reader's side: maps a descriptor read-only (Boost.Interprocess) and looks verdicts up.
// Safe to call from any number of threads and processes at once.
class DnsblTableReader {
 public:
  using Clock = std::chrono::steady_clock;
  // Maps descriptor PROT_READ/MAP_SHARED (the descriptor may be closed afterwards: the mapping
  // stays). Throws DnsblTableError if it is not a table of this layout.
  explicit DnsblTableReader(const UniqueFd& descriptor);
  DnsblTableReader(const DnsblTableReader&) = delete;
  DnsblTableReader& operator=(const DnsblTableReader&) = delete;

  // The unexpired verdict for key, or nullopt: not there, expired, or being written.
  std::optional<DnsblTableVerdict> find(const DnsblTableKey& key, Clock::time_point now) const;
  uint32_t slot_count() const { return slot_count_; }

 private:
  boost::interprocess::mapped_region region_;
  const dnsbl_table_layout::Slot* slots_ = nullptr;
  uint32_t slot_count_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace sppd
