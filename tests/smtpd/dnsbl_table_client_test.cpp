// Tests for smtpd/dnsbl_table_client: a worker's link to the shared DNSBL table against a
// stand-in dnsbl-cache on a real channel: the table asked for and mapped on attach, verdicts
// found, hits reported (kDnsblShmHits) by the timer and at the end, a new channel replacing the
// table, and answers without a usable table leaving the worker on the channel.
#include "smtpd/dnsbl_table_client.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "tests/common/test_support.h"

namespace sppd::smtpd {
namespace {

using namespace std::chrono_literals;
using Type = DnsblTableKey::Type;

// dnsbl-cache's side of one channel: answers kDnsblTableRequest as `answer` says, records the
// hit reports.
struct FakeCache {
  enum class Answer { kTable, kNoTable, kWrongSlotSize };
  std::unique_ptr<ipc::Channel> channel;
  std::vector<uint64_t> reports;
  int requests = 0;
};

class DnsblTableClientTest : public ::testing::Test {
 protected:
  DnsblTableClientTest() : base_(event_base_new()), link_(base_.get(), "dnsbl-cache") {}

  // Gives the link a new channel to a fake cache serving writer's table, as the master does
  // when dnsbl-cache (re)starts, and attaches the client; runs until the answer is in.
  FakeCache& connect(DnsblTableWriter& writer,
                     FakeCache::Answer answer = FakeCache::Answer::kTable) {
    auto [worker_end, cache_end] = ipc::make_socketpair();
    auto cache = std::make_unique<FakeCache>();
    FakeCache* fake = cache.get();
    cache->channel = std::make_unique<ipc::Channel>(
        base_.get(), std::move(cache_end),
        [this, fake, &writer, answer](ipc::Frame&& frame) {
          if (frame.type == protocol::kDnsblShmHits) {
            fake->reports.push_back(std::stoull(frame.get_or("count", "0")));
            return;
          }
          ASSERT_EQ(frame.type, protocol::kDnsblTableRequest);
          ++fake->requests;
          ipc::Frame reply(protocol::kDnsblTable, frame.request_id);
          if (answer != FakeCache::Answer::kNoTable) {
            reply.fd = writer.read_only_descriptor();
            reply.add("slots", std::to_string(writer.slot_count()));
            reply.add("slot_size", std::to_string(dnsbl_table_layout::kSlotSize +
                                                  (answer == FakeCache::Answer::kTable ? 0 : 64)));
          }
          fake->channel->send(std::move(reply));
        },
        [](const std::string&) {});
    caches_.push_back(std::move(cache));
    link_.attach(std::move(worker_end));
    client_.attach();
    if (answer == FakeCache::Answer::kTable) {
      test_support::run_until(
          base_.get(), [&] { return client_.mapped(); }, 5);
    } else {
      test_support::run_until(
          base_.get(), [&] { return fake->requests == 1; }, 5);
      test_support::run_until(
          base_.get(), [] { return false; }, 0.2);  // the answer arrives
    }
    return *fake;
  }

  EventBasePtr base_;
  HelperLink link_;
  DnsblTableClient client_{base_.get(), link_};
  std::vector<std::unique_ptr<FakeCache>> caches_;
  DnsblTableWriter::Clock::time_point later_ = DnsblTableWriter::Clock::now() + 60s;
};

TEST_F(DnsblTableClientTest, FindsVerdictsAndReportsTheHits) {
  DnsblTableWriter writer(64);
  writer.store(*DnsblTableKey::make("192.0.2.7", "bl.example", Type::kTxt), {true, "listed", {}},
               later_);
  EXPECT_FALSE(client_.find("192.0.2.7", "bl.example", Type::kTxt));  // not mapped yet
  FakeCache& cache = connect(writer);
  ASSERT_TRUE(client_.mapped());
  auto verdict = client_.find("192.0.2.7", "BL.example.", Type::kTxt);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->text, "listed");
  EXPECT_FALSE(client_.find("192.0.2.7", "bl.example", Type::kA));
  EXPECT_FALSE(client_.find("192.0.2.8", "bl.example", Type::kTxt));
  EXPECT_TRUE(client_.find("::ffff:192.0.2.7", "bl.example", Type::kTxt));

  // Two hits, one report, within about a second; misses are not counted.
  auto began = std::chrono::steady_clock::now();
  EXPECT_TRUE(test_support::run_until(
      base_.get(), [&] { return !cache.reports.empty(); }, 5));
  EXPECT_GT(std::chrono::steady_clock::now() - began, 800ms);
  EXPECT_EQ(cache.reports, std::vector<uint64_t>{2});
  // Nothing more to say: no more reports; the final report sends what is left.
  client_.report_hits();
  client_.find("192.0.2.7", "bl.example", Type::kTxt);
  client_.report_hits();
  test_support::run_until(
      base_.get(), [&] { return cache.reports.size() == 2; }, 5);
  EXPECT_EQ(cache.reports, (std::vector<uint64_t>{2, 1}));
}

TEST_F(DnsblTableClientTest, ANewChannelBringsTheNewTable) {
  DnsblTableWriter old_table(64), new_table(64);
  auto key = *DnsblTableKey::make("192.0.2.7", "bl.example", Type::kTxt);
  old_table.store(key, {true, "old", {}}, later_);
  connect(old_table);
  EXPECT_EQ(client_.find("192.0.2.7", "bl.example", Type::kTxt)->text, "old");
  FakeCache& restarted = connect(new_table);
  EXPECT_EQ(restarted.requests, 1);
  EXPECT_FALSE(client_.find("192.0.2.7", "bl.example", Type::kTxt));  // the new one is empty
  new_table.store(key, {true, "new", {}}, later_);
  EXPECT_EQ(client_.find("192.0.2.7", "bl.example", Type::kTxt)->text, "new");
}

TEST_F(DnsblTableClientTest, WithoutAUsableTableEverythingGoesOverTheChannel) {
  DnsblTableWriter writer(64);
  writer.store(*DnsblTableKey::make("192.0.2.7", "bl.example", Type::kTxt), {true, "x", {}},
               later_);
  for (auto answer : {FakeCache::Answer::kNoTable, FakeCache::Answer::kWrongSlotSize}) {
    FakeCache& cache = connect(writer, answer);
    EXPECT_EQ(cache.requests, 1);
    EXPECT_FALSE(client_.mapped());
    EXPECT_FALSE(client_.find("192.0.2.7", "bl.example", Type::kTxt));
  }
}

}  // namespace
}  // namespace sppd::smtpd
