// Tests for dnsbl-cache/server_table: kDnsblTableRequest answered with a read-only descriptor
// of the shared table holding the verdicts the cache learnt, and kDnsblShmHits added to the
// operators' hits_shm (a malformed report costs the worker its channel).
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <memory>

#include "common/dnsbl_table.h"
#include "common/protocol.h"
#include "dnsbl-cache/server.h"
#include "fake_dns.h"
#include "tests/common/test_support.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;

class ServerTableTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    FakeMasterTest::SetUp();
    dns_ = std::make_unique<FakeDns>(base_.get());
    dns_->typed_answers[{"2.0.0.127.bl.example", 16}] = {
        0, {txt_record("2.0.0.127.bl.example", {"spam source"}, 300)}, {}};
    ResolverOptions options;
    options.servers = dns_->address();
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
    server_ = std::make_unique<Server>(base_.get(), "/nonexistent/sppd.conf",
                                       std::move(service_control_), *resolver_);
    connect_worker();
  }

  // Sends a frame of type with attrs as request id; runs until its answer of answer_type.
  const ipc::Frame* ask(uint16_t type, uint32_t id,
                        const std::vector<std::pair<std::string, std::string>>& attrs,
                        uint16_t answer_type) {
    ipc::Frame frame(type, id);
    for (const auto& [name, value] : attrs) frame.add(name, value);
    worker_->send(std::move(frame));
    run_until([&] { return reply(id, answer_type) != nullptr || worker_closed_; });
    return reply(id, answer_type);
  }

  uint64_t hits_shm() const {
    for (const auto& [name, value] : server_->status_counters()) {
      if (name == "dnsbl.hits_shm") return value;
    }
    ADD_FAILURE() << "no dnsbl.hits_shm counter";
    return 0;
  }

  std::unique_ptr<FakeDns> dns_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTableTest, HandsOutTheTableReadOnlyWithTheCachedVerdicts) {
  const ipc::Frame* answer =
      ask(protocol::kDnsblQuery, 1, {{"ip", "127.0.0.2"}, {"zone", "bl.example"}, {"type", "txt"}},
          protocol::kDnsblResult);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->get_or("text", ""), "spam source");

  const ipc::Frame* table = ask(protocol::kDnsblTableRequest, 2, {}, protocol::kDnsblTable);
  ASSERT_TRUE(table);
  ASSERT_TRUE(table->fd);
  EXPECT_EQ(table->get_or("slots", ""), std::to_string(dnsbl_table_layout::kDefaultSlots));
  EXPECT_EQ(table->get_or("slot_size", ""), std::to_string(dnsbl_table_layout::kSlotSize));
  EXPECT_EQ(fcntl(table->fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  size_t size = dnsbl_table_layout::segment_size(dnsbl_table_layout::kDefaultSlots);
  EXPECT_EQ(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, table->fd.get(), 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  DnsblTableReader reader(table->fd);
  auto verdict =
      reader.find(*DnsblTableKey::make("127.0.0.2", "bl.example", DnsblTableKey::Type::kTxt),
                  std::chrono::steady_clock::now());
  ASSERT_TRUE(verdict);
  EXPECT_EQ(*verdict, (DnsblTableVerdict{true, "spam source", {}}));
  EXPECT_FALSE(worker_closed_);
}

TEST_F(ServerTableTest, CountsTheWorkersSharedMemoryHits) {
  EXPECT_EQ(hits_shm(), 0u);
  for (const char* count : {"5", "7"}) {
    ipc::Frame report(protocol::kDnsblShmHits, 0);
    report.add("count", count);
    worker_->send(std::move(report));
  }
  run_until([&] { return hits_shm() == 12; });
  EXPECT_EQ(hits_shm(), 12u);
  EXPECT_FALSE(worker_closed_);
}

TEST_F(ServerTableTest, MalformedHitReportsCloseTheWorkersChannel) {
  for (const char* count : {"", "-1", "12x", "99999999999999999999"}) {
    SCOPED_TRACE(count);
    connect_worker();
    ipc::Frame report(protocol::kDnsblShmHits, 0);
    report.add("count", count);
    worker_->send(std::move(report));
    EXPECT_TRUE(run_until([&] { return worker_closed_; }));
  }
  connect_worker();
  worker_->send(ipc::Frame(protocol::kDnsblShmHits, 0));  // no count
  EXPECT_TRUE(run_until([&] { return worker_closed_; }));
  EXPECT_EQ(hits_shm(), 0u);
}

}  // namespace
}  // namespace sppd::dnsbl_cache
