// The DNSBL table (contract in dnsbl_table.h). The seqlock follows Boehm, "Can Seqlocks Get
// Along With Programming Language Memory Models?" (MSPC 2012): the writer makes the sequence
// odd, a release fence, the data as relaxed atomic stores, the sequence even again with
// release; a reader loads the sequence with acquire, the data relaxed, an acquire fence, the
// sequence again: equal and even = the copy is one write's, whole.
#include "common/dnsbl_table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <boost/interprocess/exceptions.hpp>
#include <cstring>

namespace sppd {
namespace {

using namespace dnsbl_table_layout;
using Words = std::array<uint64_t, kSlotWords>;

// What Boost's mapped_region maps: a descriptor we already hold (a memfd, or the read-only
// descriptor of one received over a channel), where Boost's own classes would open a name.
struct DescriptorMapping {
  int fd;
  boost::interprocess::mapping_handle_t get_mapping_handle() const {
    return boost::interprocess::ipcdetail::mapping_handle_from_file_handle(fd);
  }
};

std::string errno_text(const char* what) { return std::string(what) + ": " + strerror(errno); }

// FNV-1a over the key with the table's seed, then a murmur3-style finaliser so the low bits
// (the bucket) depend on every byte. Never 0: that marks an empty slot.
uint64_t key_hash(uint64_t seed, const DnsblTableKey& key) {
  uint64_t hash = 0xcbf29ce484222325ULL ^ seed;
  auto mix = [&hash](unsigned char byte) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  };
  mix(key.family);
  mix(static_cast<unsigned char>(key.type));
  for (size_t i = 0; i < (key.family == 4 ? 4u : 16u); ++i) mix(key.address[i]);
  for (char c : key.zone) mix(static_cast<unsigned char>(c));
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  return hash ? hash : 1;
}

size_t first_slot_of(uint64_t hash, uint32_t slot_count) {
  return (hash & (slot_count / kWays - 1)) * kWays;
}

bool same_key(const SlotData& data, const DnsblTableKey& key) {
  return data.family == key.family && data.type == static_cast<uint8_t>(key.type) &&
         std::memcmp(data.address, key.address, sizeof(key.address)) == 0 &&
         data.zone_length == key.zone.size() &&
         std::memcmp(data.zone, key.zone.data(), key.zone.size()) == 0;
}

int64_t nanoseconds(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The writer reads its own slots without the seqlock: nobody else writes them.
SlotData load_own(const Slot& slot) {
  Words words;
  for (size_t i = 0; i < kSlotWords; ++i) words[i] = slot.words[i].load(std::memory_order_relaxed);
  return std::bit_cast<SlotData>(words);
}

}  // namespace

std::optional<DnsblTableKey> DnsblTableKey::make(std::string_view ip, std::string_view zone,
                                                 Type type) {
  DnsblTableKey key;
  char text[INET6_ADDRSTRLEN];
  if (ip.size() >= sizeof(text)) return std::nullopt;
  std::memcpy(text, ip.data(), ip.size());
  text[ip.size()] = '\0';
  unsigned char bytes[16];
  if (inet_pton(AF_INET, text, bytes) == 1) {
    key.family = 4;
    std::memcpy(key.address, bytes, 4);
  } else if (inet_pton(AF_INET6, text, bytes) == 1) {
    // ::ffff:a.b.c.d is the IPv4 client a.b.c.d, as dnsbl-cache (and the DNSBL) sees it.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, kMapped, sizeof(kMapped)) == 0) {
      key.family = 4;
      std::memcpy(key.address, bytes + 12, 4);
    } else {
      key.family = 6;
      std::memcpy(key.address, bytes, 16);
    }
  } else {
    return std::nullopt;
  }
  if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
  if (zone.empty() || zone.size() > kMaxZone) return std::nullopt;
  key.zone.reserve(zone.size());
  for (char c : zone) key.zone.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
  key.type = type;
  return key;
}

DnsblTableWriter::DnsblTableWriter(uint32_t slot_count) : slot_count_(slot_count) {
  if (slot_count < kWays || (slot_count & (slot_count - 1)) != 0) {
    throw DnsblTableError("DNSBL table: the slot count must be a power of two of at least 4");
  }
  size_t size = segment_size(slot_count);
  // A memfd: no name to clean up in /dev/shm, and a descriptor to pass over SCM_RIGHTS.
  UniqueFd memfd(memfd_create("sppd-dnsbl-table", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!memfd) throw DnsblTableError(errno_text("DNSBL table: memfd_create"));
  if (ftruncate(memfd.get(), static_cast<off_t>(size)) != 0) {
    throw DnsblTableError(errno_text("DNSBL table: ftruncate"));
  }
  try {
    region_ = boost::interprocess::mapped_region(DescriptorMapping{memfd.get()},
                                                 boost::interprocess::read_write, 0, size);
  } catch (const boost::interprocess::interprocess_exception& e) {
    throw DnsblTableError(std::string("DNSBL table: cannot map it: ") + e.what());
  }
  // Nobody can resize it under the readers (a shrink would make them fault), and no new
  // writable mapping or write() is possible, whatever descriptor one holds: our mapping is
  // the only way to change it. F_SEAL_FUTURE_WRITE needs Linux 5.1; older kernels get the
  // rest (the descriptors we hand out are read-only anyway).
  int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE;
  if (fcntl(memfd.get(), F_ADD_SEALS, seals) != 0) {
    if (errno != EINVAL || fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
      throw DnsblTableError(errno_text("DNSBL table: sealing it"));
    }
  }
  if (fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SEAL) != 0) {
    throw DnsblTableError(errno_text("DNSBL table: sealing it"));
  }
  // A memfd is only ever opened O_RDWR; the read-only descriptor readers get is a reopening.
  std::string path = "/proc/self/fd/" + std::to_string(memfd.get());
  read_only_.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!read_only_) {
    throw DnsblTableError(errno_text("DNSBL table: reopening it read-only through /proc"));
  }
  if (getrandom(&seed_, sizeof(seed_), 0) != sizeof(seed_)) {
    throw DnsblTableError(errno_text("DNSBL table: getrandom"));
  }
  // The segment is zeroed: every slot is empty with sequence 0. Only the header is written,
  // before any reader can have the descriptor.
  auto* header = static_cast<Header*>(region_.get_address());
  header->magic = kMagic;
  header->version = kVersion;
  header->slot_count = slot_count;
  header->slot_size = kSlotSize;
  header->ways = kWays;
  header->seed = seed_;
  slots_ = reinterpret_cast<Slot*>(static_cast<char*>(region_.get_address()) + sizeof(Header));
}

bool DnsblTableWriter::store(const DnsblTableKey& key, const DnsblTableVerdict& verdict,
                             Clock::time_point expires) {
  if (key.family != 4 && key.family != 6) return false;
  if (key.zone.empty() || key.zone.size() > kMaxZone) return false;
  if (verdict.text.size() > kMaxText || verdict.addresses.size() > kMaxAddresses) return false;
  SlotData data;
  data.key_hash = key_hash(seed_, key);
  data.expires_ns = nanoseconds(expires);
  data.family = key.family;
  data.type = static_cast<uint8_t>(key.type);
  data.listed = verdict.listed ? 1 : 0;
  data.zone_length = static_cast<uint8_t>(key.zone.size());
  data.text_length = static_cast<uint8_t>(verdict.text.size());
  data.address_count = static_cast<uint8_t>(verdict.addresses.size());
  std::memcpy(data.address, key.address, sizeof(key.address));
  std::memcpy(data.zone, key.zone.data(), key.zone.size());
  std::memcpy(data.text, verdict.text.data(), verdict.text.size());
  for (size_t i = 0; i < verdict.addresses.size(); ++i) {
    if (inet_pton(AF_INET, verdict.addresses[i].c_str(), data.addresses[i]) != 1) return false;
  }

  // The key's own slot if it has one, else an empty one, else the one expiring first
  // (an expired one expires before any live one).
  Slot* bucket = slots_ + first_slot_of(data.key_hash, slot_count_);
  Slot* target = nullptr;
  int64_t earliest = 0;
  for (uint32_t i = 0; i < kWays; ++i) {
    SlotData old = load_own(bucket[i]);
    if (old.key_hash == data.key_hash && same_key(old, key)) {
      target = &bucket[i];
      break;
    }
    int64_t rank = old.key_hash == 0 ? INT64_MIN : old.expires_ns;
    if (!target || rank < earliest) {
      target = &bucket[i];
      earliest = rank;
    }
  }

  Words words = std::bit_cast<Words>(data);
  uint32_t sequence = target->sequence.load(std::memory_order_relaxed);
  target->sequence.store(sequence + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < kSlotWords; ++i) {
    target->words[i].store(words[i], std::memory_order_relaxed);
  }
  target->sequence.store(sequence + 2, std::memory_order_release);
  return true;
}

UniqueFd DnsblTableWriter::read_only_descriptor() const {
  UniqueFd copy(fcntl(read_only_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) throw DnsblTableError(errno_text("DNSBL table: dup"));
  return copy;
}

DnsblTableReader::DnsblTableReader(const UniqueFd& descriptor) {
  try {
    region_ = boost::interprocess::mapped_region(DescriptorMapping{descriptor.get()},
                                                 boost::interprocess::read_only);
  } catch (const boost::interprocess::interprocess_exception& e) {
    throw DnsblTableError(std::string("cannot map the DNSBL table: ") + e.what());
  }
  if (region_.get_size() < sizeof(Header)) throw DnsblTableError("the DNSBL table is too small");
  const auto* header = static_cast<const Header*>(region_.get_address());
  if (header->magic != kMagic || header->version != kVersion) {
    throw DnsblTableError("the DNSBL table has another layout (magic or version differ)");
  }
  if (header->slot_size != kSlotSize || header->ways != kWays) {
    throw DnsblTableError("the DNSBL table's slots differ from this program's (slot size " +
                          std::to_string(header->slot_size) + ", expected " +
                          std::to_string(kSlotSize) + ")");
  }
  uint32_t count = header->slot_count;
  if (count < kWays || (count & (count - 1)) != 0 || region_.get_size() < segment_size(count)) {
    throw DnsblTableError("the DNSBL table's slot count " + std::to_string(count) +
                          " does not match its size");
  }
  slot_count_ = count;
  seed_ = header->seed;
  slots_ = reinterpret_cast<const Slot*>(static_cast<const char*>(region_.get_address()) +
                                         sizeof(Header));
}

std::optional<DnsblTableVerdict> DnsblTableReader::find(const DnsblTableKey& key,
                                                        Clock::time_point now) const {
  uint64_t hash = key_hash(seed_, key);
  const Slot* bucket = slots_ + first_slot_of(hash, slot_count_);
  for (uint32_t i = 0; i < kWays; ++i) {
    const Slot& slot = bucket[i];
    uint32_t before = slot.sequence.load(std::memory_order_acquire);
    if (before & 1) continue;  // being written: if it is our key, a miss
    if (slot.words[0].load(std::memory_order_relaxed) != hash) continue;
    Words words;
    for (size_t w = 0; w < kSlotWords; ++w)
      words[w] = slot.words[w].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    // Torn: the writer changed the slot while we copied it. Our key lives in one slot only.
    if (slot.sequence.load(std::memory_order_relaxed) != before) return std::nullopt;
    auto data = std::bit_cast<SlotData>(words);
    if (data.key_hash != hash || !same_key(data, key)) continue;  // another key, same hash
    if (nanoseconds(now) >= data.expires_ns) return std::nullopt;
    if (data.text_length > kMaxText || data.address_count > kMaxAddresses) return std::nullopt;
    DnsblTableVerdict verdict;
    verdict.listed = data.listed != 0;
    verdict.text.assign(data.text, data.text_length);
    for (size_t a = 0; a < data.address_count; ++a) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, data.addresses[a], text, sizeof(text));
      verdict.addresses.emplace_back(text);
    }
    return verdict;
  }
  return std::nullopt;
}

}  // namespace sppd
