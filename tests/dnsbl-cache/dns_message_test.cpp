// Tests for dnsbl-cache/dns_message (TTL extraction) and ptr_lookups's interpretation of
// PTR answers: names checked and lower-cased, TTLs bounded, negative answers cached by SOA.
#include "dnsbl-cache/dns_message.h"

#include <gtest/gtest.h>

#include "dns_test_util.h"
#include "dnsbl-cache/ptr_lookups.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
constexpr char kOwner[] = "4.3.2.1.in-addr.arpa";

TEST(DnsMessageTest, MinimumTtlOfAnswerRecords) {
  Bytes m = make_response(1, 0, kOwner, 12,
                          {ptr_record(kOwner, "a.example", 300), ptr_record(kOwner, "b", 200)});
  AnswerTtl ttl;
  ASSERT_TRUE(answer_ttl(m.data(), static_cast<int>(m.size()), 12, &ttl));
  EXPECT_EQ(ttl.records, 200u);
  EXPECT_FALSE(ttl.negative);
}

TEST(DnsMessageTest, NegativeTtlFromSoa) {
  Bytes m = make_response(1, 3, kOwner, 12, {}, {soa_record("in-addr.arpa", 900, 120)});
  AnswerTtl ttl;
  ASSERT_TRUE(answer_ttl(m.data(), static_cast<int>(m.size()), 12, &ttl));
  EXPECT_FALSE(ttl.records);
  EXPECT_EQ(ttl.negative, 120u);
}

TEST(DnsMessageTest, RejectsTruncatedMessages) {
  Bytes m = make_response(1, 0, kOwner, 12, {ptr_record(kOwner, "a.example", 300)});
  AnswerTtl ttl;
  for (size_t cut = 0; cut < m.size(); ++cut) {
    EXPECT_FALSE(answer_ttl(m.data(), static_cast<int>(cut), 12, &ttl)) << cut;
  }
  // A compression pointer loop is skipped over, never followed.
  Bytes loop = {0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1};
  EXPECT_TRUE(answer_ttl(loop.data(), static_cast<int>(loop.size()), 12, &ttl));
}

PtrAnswer interpret(int status, const Bytes& m, const std::string& ip = "1.2.3.4") {
  return interpret_ptr_answer(status, m.empty() ? nullptr : m.data(), static_cast<int>(m.size()),
                              *parse_ip(ip));
}

TEST(PtrAnswerTest, NameIsLowerCasedWithoutTrailingDot) {
  Bytes m = make_response(1, 0, kOwner, 12, {ptr_record(kOwner, "Mail.Example.ORG", 7200)});
  PtrAnswer a = interpret(ARES_SUCCESS, m);
  EXPECT_EQ(a.status, PtrAnswer::Status::kOk);
  EXPECT_EQ(a.name, "mail.example.org");
  EXPECT_EQ(a.ttl, std::chrono::seconds(3600));  // bounded
}

TEST(PtrAnswerTest, NxdomainIsNoneAndCachedBySoa) {
  Bytes m = make_response(1, 3, kOwner, 12, {}, {soa_record("in-addr.arpa", 900, 120)});
  PtrAnswer a = interpret(ARES_ENOTFOUND, m);
  EXPECT_EQ(a.status, PtrAnswer::Status::kNone);
  EXPECT_EQ(a.ttl, std::chrono::seconds(120));
  EXPECT_EQ(interpret(ARES_ENODATA, {}).ttl, std::chrono::seconds(60));
}

TEST(PtrAnswerTest, FailuresAreErrorsAndNotCached) {
  PtrAnswer a = interpret(ARES_ETIMEOUT, {});
  EXPECT_EQ(a.status, PtrAnswer::Status::kError);
  EXPECT_EQ(a.ttl.count(), 0);
  EXPECT_EQ(interpret(ARES_ESERVFAIL, {}).status, PtrAnswer::Status::kError);
}

TEST(PtrAnswerTest, HostNamesAreChecked) {
  EXPECT_EQ(normalize_host_name("Host-1.Example.com."), "host-1.example.com");
  EXPECT_EQ(normalize_host_name("_srv.example"), "_srv.example");
  for (const char* bad : {"", ".", "a..b", ".a", "a b", "a;b", "a\nb", "a/b", "é.example"}) {
    EXPECT_FALSE(normalize_host_name(bad)) << bad;
  }
  EXPECT_FALSE(normalize_host_name(std::string(254, 'a')));
}

}  // namespace
}  // namespace sppd::dnsbl_cache
