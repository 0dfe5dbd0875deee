// Tests for common/dnsbl_table: the layout, hits, misses (absent, expired, another key in the
// same bucket), eviction, a writer thread hammering slots while readers look up (a reader sees
// one write's verdict whole or a miss, never a mix), and that the descriptor readers get
// cannot be turned into write access.
#include "common/dnsbl_table.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace sppd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Type = DnsblTableKey::Type;
namespace layout = dnsbl_table_layout;

DnsblTableKey key(const std::string& ip, const std::string& zone, Type type = Type::kTxt) {
  auto made = DnsblTableKey::make(ip, zone, type);
  EXPECT_TRUE(made) << ip << " " << zone;
  return made.value_or(DnsblTableKey{});
}

DnsblTableVerdict listed(const std::string& text, std::vector<std::string> addresses = {}) {
  return {true, text, std::move(addresses)};
}

TEST(DnsblTableTest, LayoutIsFixed) {
  EXPECT_EQ(sizeof(layout::Header), 64u);
  EXPECT_EQ(layout::kSlotSize, 576u);
  EXPECT_EQ(alignof(layout::Slot), 64u);
  EXPECT_EQ(layout::segment_size(layout::kDefaultSlots), 64u + 16384u * 576u);
  DnsblTableWriter writer;
  UniqueFd fd = writer.read_only_descriptor();
  struct stat st {};
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), layout::segment_size(layout::kDefaultSlots));
  char magic[8];
  ASSERT_EQ(pread(fd.get(), magic, sizeof(magic), 0), 8);
  EXPECT_EQ(std::string(magic, 8), "SPPDDBL1");
  DnsblTableReader reader(fd);
  EXPECT_EQ(reader.slot_count(), layout::kDefaultSlots);
}

TEST(DnsblTableTest, ReaderRefusesWhatIsNotATable) {
  UniqueFd small(memfd_create("not-a-table", MFD_CLOEXEC));
  ASSERT_EQ(ftruncate(small.get(), 16), 0);
  EXPECT_THROW(DnsblTableReader{small}, DnsblTableError);

  // A table of another build: the header says another slot size.
  UniqueFd other(memfd_create("other-table", MFD_CLOEXEC));
  ASSERT_EQ(ftruncate(other.get(), layout::segment_size(4)), 0);
  layout::Header header{layout::kMagic,         layout::kVersion, 4,
                        layout::kSlotSize + 64, layout::kWays,    0};
  ASSERT_EQ(pwrite(other.get(), &header, sizeof(header), 0), 64);
  EXPECT_THROW(DnsblTableReader{other}, DnsblTableError);
  header.slot_size = layout::kSlotSize;
  header.slot_count = 8;  // more slots than the segment holds
  ASSERT_EQ(pwrite(other.get(), &header, sizeof(header), 0), 64);
  EXPECT_THROW(DnsblTableReader{other}, DnsblTableError);
  header.slot_count = 4;
  ASSERT_EQ(pwrite(other.get(), &header, sizeof(header), 0), 64);
  EXPECT_NO_THROW(DnsblTableReader{other});

  EXPECT_THROW(DnsblTableWriter(6), DnsblTableError);  // not a power of two
  EXPECT_THROW(DnsblTableWriter(2), DnsblTableError);  // less than a bucket
}

TEST(DnsblTableTest, KeysAreNormalisedAsDnsblCacheKeysThem) {
  auto mapped = key("::ffff:127.0.0.2", "BL.Example.");
  EXPECT_EQ(mapped.family, 4);
  EXPECT_EQ(mapped.zone, "bl.example");
  auto plain = key("127.0.0.2", "bl.example");
  EXPECT_EQ(std::memcmp(mapped.address, plain.address, 16), 0);
  EXPECT_EQ(key("2001:db8::1", "bl.example").family, 6);
  EXPECT_FALSE(DnsblTableKey::make("example.com", "bl.example", Type::kTxt));
  EXPECT_FALSE(DnsblTableKey::make("127.0.0.2", "", Type::kTxt));
  EXPECT_FALSE(DnsblTableKey::make("127.0.0.2", std::string(254, 'a'), Type::kTxt));
  EXPECT_TRUE(DnsblTableKey::make("127.0.0.2", std::string(253, 'a'), Type::kTxt));
}

TEST(DnsblTableTest, HitsUntilTheVerdictExpires) {
  DnsblTableWriter writer;
  DnsblTableReader reader(writer.read_only_descriptor());
  Clock::time_point now = Clock::now();
  ASSERT_TRUE(writer.store(key("127.0.0.2", "bl.example"), listed("spam source"), now + 60s));
  ASSERT_TRUE(writer.store(key("127.0.0.2", "bl.example", Type::kA),
                           listed("", {"127.0.0.2", "127.0.0.4"}), now + 60s));
  ASSERT_TRUE(writer.store(key("2001:db8::7", "bl.example"), DnsblTableVerdict{}, now + 300s));

  EXPECT_EQ(reader.find(key("127.0.0.2", "bl.example"), now), listed("spam source"));
  EXPECT_EQ(reader.find(key("::ffff:127.0.0.2", "BL.EXAMPLE"), now + 59s), listed("spam source"));
  EXPECT_EQ(reader.find(key("127.0.0.2", "bl.example", Type::kA), now),
            listed("", {"127.0.0.2", "127.0.0.4"}));
  EXPECT_EQ(reader.find(key("2001:db8::7", "bl.example"), now), DnsblTableVerdict{});

  EXPECT_FALSE(reader.find(key("127.0.0.2", "bl.example"), now + 60s));  // expired
  EXPECT_FALSE(reader.find(key("127.0.0.3", "bl.example"), now));        // never stored
  // Overwriting a key replaces its verdict and expiry.
  ASSERT_TRUE(writer.store(key("127.0.0.2", "bl.example"), DnsblTableVerdict{}, now + 120s));
  EXPECT_EQ(reader.find(key("127.0.0.2", "bl.example"), now + 90s), DnsblTableVerdict{});
}

TEST(DnsblTableTest, OtherKeysInTheSameBucketMiss) {
  // Four slots are one bucket: every key shares it.
  DnsblTableWriter writer(4);
  DnsblTableReader reader(writer.read_only_descriptor());
  Clock::time_point now = Clock::now();
  ASSERT_TRUE(writer.store(key("127.0.0.2", "bl.example"), listed("in bl"), now + 60s));
  EXPECT_FALSE(reader.find(key("127.0.0.2", "other.example"), now));
  EXPECT_FALSE(reader.find(key("127.0.0.2", "bl.example", Type::kA), now));
  EXPECT_FALSE(reader.find(key("127.0.0.3", "bl.example"), now));
  EXPECT_FALSE(reader.find(key("::127.0.0.2", "bl.example"), now));  // IPv6, not mapped
  ASSERT_TRUE(
      writer.store(key("127.0.0.2", "bl.example", Type::kA), listed("", {"127.0.0.2"}), now + 60s));
  ASSERT_TRUE(writer.store(key("127.0.0.2", "other.example"), listed("in other"), now + 60s));
  EXPECT_EQ(reader.find(key("127.0.0.2", "bl.example"), now), listed("in bl"));
  EXPECT_EQ(reader.find(key("127.0.0.2", "bl.example", Type::kA), now), listed("", {"127.0.0.2"}));
  EXPECT_EQ(reader.find(key("127.0.0.2", "other.example"), now), listed("in other"));
}

TEST(DnsblTableTest, AFullBucketLosesTheVerdictExpiringFirst) {
  DnsblTableWriter writer(4);
  DnsblTableReader reader(writer.read_only_descriptor());
  Clock::time_point now = Clock::now();
  for (int i = 0; i < 4; ++i) {
    std::string ip = "127.0.0." + std::to_string(10 + i);
    ASSERT_TRUE(
        writer.store(key(ip, "bl.example"), listed(ip), now + std::chrono::seconds(100 - i)));
  }
  ASSERT_TRUE(writer.store(key("127.0.0.20", "bl.example"), listed("new"), now + 60s));
  EXPECT_FALSE(reader.find(key("127.0.0.13", "bl.example"), now));  // expired first: gone
  for (int i = 0; i < 3; ++i) {
    std::string ip = "127.0.0." + std::to_string(10 + i);
    EXPECT_EQ(reader.find(key(ip, "bl.example"), now), listed(ip));
  }
  EXPECT_EQ(reader.find(key("127.0.0.20", "bl.example"), now), listed("new"));
}

TEST(DnsblTableTest, WhatDoesNotFitIsNotStored) {
  DnsblTableWriter writer;
  Clock::time_point later = Clock::now() + 60s;
  EXPECT_FALSE(writer.store(key("127.0.0.2", "bl.example"), listed(std::string(201, 'x')), later));
  EXPECT_TRUE(writer.store(key("127.0.0.2", "bl.example"), listed(std::string(200, 'x')), later));
  std::vector<std::string> nine(9, "127.0.0.2");
  EXPECT_FALSE(writer.store(key("127.0.0.2", "bl.example", Type::kA), listed("", nine), later));
  EXPECT_FALSE(writer.store(key("127.0.0.2", "bl.example", Type::kA), listed("", {"::1"}), later));
}

// The verdict the writer stores for (client n, generation g): every byte depends on both, so a
// copy mixing two writes cannot pass for one.
DnsblTableVerdict generation_verdict(int client, uint32_t generation) {
  char head[32];
  snprintf(head, sizeof(head), "%03d:%08x:", client, generation);
  std::string text = head;
  while (text.size() < layout::kMaxText - 9)
    text.push_back(static_cast<char>('a' + (generation + text.size()) % 26));
  text += head + 4;  // the generation again, at the end
  std::vector<std::string> addresses;
  for (uint32_t a = 0; a < generation % (layout::kMaxAddresses + 1); ++a) {
    addresses.push_back("127." + std::to_string(generation % 200) + ".0." + std::to_string(a));
  }
  return {generation % 2 == 0, text, addresses};
}

TEST(DnsblTableTest, ReadersSeeWholeVerdictsOrMissesWhileTheWriterHammers) {
  // 8 slots for 12 keys: the writer keeps overwriting and evicting in the readers' way.
  DnsblTableWriter writer(8);
  DnsblTableReader reader(writer.read_only_descriptor());
  constexpr int kClients = 12;
  std::vector<DnsblTableKey> keys;
  for (int n = 0; n < kClients; ++n) {
    keys.push_back(key("192.0.2." + std::to_string(n), n % 2 ? "bl.example" : "al.example"));
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  std::thread writing([&] {
    Clock::time_point far = Clock::now() + 3600s;
    for (uint32_t generation = 1; !stop.load(std::memory_order_relaxed); ++generation) {
      int client = static_cast<int>(generation % kClients);
      writer.store(keys[client], generation_verdict(client, generation), far);
      writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::atomic<uint64_t> hits{0}, misses{0}, mixed{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      Clock::time_point now = Clock::now();
      for (int i = 0; i < 200000; ++i) {
        int client = (i + r) % kClients;
        auto found = reader.find(keys[client], now);
        if (!found) {
          misses.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        hits.fetch_add(1, std::memory_order_relaxed);
        unsigned generation = 0;
        int who = -1;
        if (sscanf(found->text.c_str(), "%03d:%08x:", &who, &generation) != 2 || who != client ||
            *found != generation_verdict(client, generation)) {
          mixed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& t : readers) t.join();
  stop = true;
  writing.join();
  EXPECT_EQ(mixed.load(), 0u) << hits.load() << " hits, " << misses.load() << " misses";
  EXPECT_GT(hits.load(), 0u);
  EXPECT_GT(misses.load(), 0u);  // evicted keys at least
  EXPECT_GT(writes.load(), 1000u);
}

TEST(DnsblTableTest, TheReadersDescriptorCannotWrite) {
  DnsblTableWriter writer(4);
  UniqueFd fd = writer.read_only_descriptor();
  size_t size = layout::segment_size(4);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  errno = 0;
  void* writable = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  EXPECT_EQ(writable, MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  // Nor can a read-only mapping be made writable afterwards.
  void* readable = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(readable, MAP_FAILED);
  EXPECT_NE(mprotect(readable, size, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(errno, EACCES);
  munmap(readable, size);
  EXPECT_LT(write(fd.get(), "x", 1), 0);
  EXPECT_NE(ftruncate(fd.get(), 0), 0);

  // Reopening it read-write (what a process with /proc could try) gains nothing: the seals
  // forbid resizing, and new writable mappings and writes where the kernel has
  // F_SEAL_FUTURE_WRITE (Linux 5.1).
  std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  UniqueFd reopened(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!reopened) GTEST_SKIP() << "cannot reopen " << path << ": " << strerror(errno);
  EXPECT_NE(ftruncate(reopened.get(), 0), 0);
  EXPECT_EQ(errno, EPERM);
  int seals = fcntl(reopened.get(), F_GET_SEALS);
  EXPECT_TRUE(seals & F_SEAL_SEAL);
  if (seals & F_SEAL_FUTURE_WRITE) {
    EXPECT_EQ(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, reopened.get(), 0),
              MAP_FAILED);
    EXPECT_EQ(errno, EPERM);
    EXPECT_LT(pwrite(reopened.get(), "x", 1, 100), 0);
  }
}

}  // namespace
}  // namespace sppd
