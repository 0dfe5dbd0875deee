// Tests for dnsbl-cache/dnsbl_answer on exact DNS packets: rblsmtpd's TXT text (joined,
// sanitised, cut), A listings, 127.255.255.x refusals as errors, TTL and negative-TTL
// clamps, failures as uncached errors, and which zones and types a worker may send.
#include "dnsbl-cache/dnsbl_answer.h"

#include <ares.h>
#include <gtest/gtest.h>

#include "dns_test_util.h"

namespace sppd::dnsbl_cache {
namespace {

using namespace dns_test;
using std::chrono::seconds;
constexpr char kName[] = "4.3.2.1.bl.example";
constexpr uint16_t kTxt = 16;
constexpr uint16_t kA = 1;

DnsblAnswer interpret(DnsblType type, int status, const Bytes& m) {
  return interpret_dnsbl_answer(type, status, m.empty() ? nullptr : m.data(),
                                static_cast<int>(m.size()));
}

DnsblAnswer txt(const std::vector<Record>& answers) {
  return interpret(DnsblType::kTxt, ARES_SUCCESS, make_response(1, 0, kName, kTxt, answers));
}

DnsblAnswer a(const std::vector<Record>& answers) {
  return interpret(DnsblType::kA, ARES_SUCCESS, make_response(1, 0, kName, kA, answers));
}

TEST(RblsmtpdTextTest, JoinsSanitisesAndCuts) {
  EXPECT_EQ(rblsmtpd_text({"listed ", "see http://x/?1.2.3.4"}), "listed see http://x/?1.2.3.4");
  EXPECT_EQ(rblsmtpd_text({std::string_view("a\r\nb\x7f\x1f\xff~ ", 8)}), "a??b???~");
  EXPECT_EQ(rblsmtpd_text({std::string_view("\0z", 2)}), "?z");
  EXPECT_EQ(rblsmtpd_text({}), "");
  std::string long_text(150, 'x');
  std::string cut = rblsmtpd_text({long_text, std::string(150, 'y')});
  EXPECT_EQ(cut.size(), kMaxDnsblText);
  EXPECT_EQ(cut, long_text + std::string(50, 'y'));
}

TEST(DnsblAnswerTest, TxtTextIsTheListing) {
  DnsblAnswer answer = txt({txt_record(kName, {"Listed: ", "see\thttp://bl.example/"}, 900),
                            txt_record(kName, {" (2)"}, 600)});
  EXPECT_EQ(answer.status, DnsblAnswer::Status::kListed);
  EXPECT_EQ(answer.text, "Listed: see?http://bl.example/ (2)");
  EXPECT_EQ(answer.ttl, seconds(600));  // the smallest record TTL
  EXPECT_TRUE(answer.addresses.empty());
}

TEST(DnsblAnswerTest, LongTxtIsCutTo200Bytes) {
  DnsblAnswer answer = txt({txt_record(kName, {std::string(255, 'a'), std::string(255, 'b')}, 60)});
  EXPECT_EQ(answer.status, DnsblAnswer::Status::kListed);
  EXPECT_EQ(answer.text, std::string(200, 'a'));
}

TEST(DnsblAnswerTest, EmptyTxtIsClear) {
  // rblsmtpd: an empty text does not list the client.
  DnsblAnswer answer = txt({txt_record(kName, {""}, 120)});
  EXPECT_EQ(answer.status, DnsblAnswer::Status::kClear);
  EXPECT_EQ(answer.ttl, seconds(120));
}

TEST(DnsblAnswerTest, ARecordsListAndAreReturned) {
  DnsblAnswer answer = a({a_record(kName, "127.0.0.2", 300), a_record(kName, "127.0.0.10", 200)});
  EXPECT_EQ(answer.status, DnsblAnswer::Status::kListed);
  EXPECT_EQ(answer.addresses, (std::vector<std::string>{"127.0.0.2", "127.0.0.10"}));
  EXPECT_EQ(answer.ttl, seconds(200));
  EXPECT_TRUE(answer.text.empty());
}

TEST(DnsblAnswerTest, PublicResolverRefusalIsAnError) {
  for (const char* refusal : {"127.255.255.254", "127.255.255.252", "127.255.255.0"}) {
    DnsblAnswer answer = a({a_record(kName, "127.0.0.2", 300), a_record(kName, refusal, 300)});
    EXPECT_EQ(answer.status, DnsblAnswer::Status::kError) << refusal;
    EXPECT_EQ(answer.ttl, seconds(0)) << refusal;  // never cached
    EXPECT_TRUE(answer.addresses.empty());
  }
  EXPECT_EQ(a({a_record(kName, "127.255.254.1", 300)}).status, DnsblAnswer::Status::kListed);
}

TEST(DnsblAnswerTest, PositiveTtlsAreClamped) {
  EXPECT_EQ(a({a_record(kName, "127.0.0.2", 0)}).ttl, seconds(60));
  EXPECT_EQ(a({a_record(kName, "127.0.0.2", 59)}).ttl, seconds(60));
  EXPECT_EQ(a({a_record(kName, "127.0.0.2", 86400)}).ttl, seconds(3600));
  EXPECT_EQ(txt({txt_record(kName, {"x"}, 0x80000000u)}).ttl, seconds(60));  // RFC 2181: 0
}

TEST(DnsblAnswerTest, NegativeAnswersAreClearForTheSoaTtl) {
  auto negative = [](int rcode, int status, uint32_t soa_ttl, uint32_t minimum) {
    return interpret(
        DnsblType::kTxt, status,
        make_response(1, rcode, kName, kTxt, {}, {soa_record("bl.example", soa_ttl, minimum)}));
  };
  DnsblAnswer nxdomain = negative(3, ARES_ENOTFOUND, 900, 600);
  EXPECT_EQ(nxdomain.status, DnsblAnswer::Status::kClear);
  EXPECT_EQ(nxdomain.ttl, seconds(600));  // min(SOA TTL, MINIMUM), RFC 2308 §5
  EXPECT_EQ(negative(0, ARES_ENODATA, 450, 900).ttl, seconds(450));
  EXPECT_EQ(negative(3, ARES_ENOTFOUND, 900, 10).ttl, seconds(60));
  EXPECT_EQ(negative(3, ARES_ENOTFOUND, 86400, 86400).ttl, seconds(3600));
  // No SOA at all: five minutes.
  DnsblAnswer bare = interpret(DnsblType::kA, ARES_ENOTFOUND, make_response(1, 3, kName, kA, {}));
  EXPECT_EQ(bare.status, DnsblAnswer::Status::kClear);
  EXPECT_EQ(bare.ttl, seconds(300));
  EXPECT_EQ(interpret(DnsblType::kA, ARES_ENODATA, {}).ttl, seconds(300));
}

TEST(DnsblAnswerTest, FailuresAreErrors) {
  for (int status :
       {ARES_ETIMEOUT, ARES_ESERVFAIL, ARES_EREFUSED, ARES_ECONNREFUSED, ARES_EBADRESP}) {
    DnsblAnswer answer = interpret(DnsblType::kTxt, status, {});
    EXPECT_EQ(answer.status, DnsblAnswer::Status::kError) << status;
    EXPECT_EQ(answer.ttl, seconds(0));
  }
  // A success that is not a DNS message is an error too, never a listing.
  Bytes junk = {0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 3, 'a'};
  EXPECT_EQ(interpret(DnsblType::kTxt, ARES_SUCCESS, junk).status, DnsblAnswer::Status::kError);
  EXPECT_EQ(interpret(DnsblType::kA, ARES_SUCCESS, junk).status, DnsblAnswer::Status::kError);
}

TEST(DnsblAnswerTest, TypesAndZones) {
  EXPECT_EQ(parse_dnsbl_type("txt"), DnsblType::kTxt);
  EXPECT_EQ(parse_dnsbl_type("a"), DnsblType::kA);
  for (const char* bad : {"", "TXT", "aaaa", "mx", "a "}) EXPECT_FALSE(parse_dnsbl_type(bad));
  EXPECT_STREQ(status_text(DnsblAnswer::Status::kListed), "listed");
  EXPECT_STREQ(status_text(DnsblAnswer::Status::kClear), "clear");
  EXPECT_STREQ(status_text(DnsblAnswer::Status::kError), "error");

  EXPECT_EQ(normalize_zone("Zen.Spamhaus.ORG."), "zen.spamhaus.org");
  EXPECT_EQ(normalize_zone("bl_1.example"), "bl_1.example");
  EXPECT_EQ(normalize_zone(std::string(63, 'a') + ".example"), std::string(63, 'a') + ".example");
  for (const char* bad : {"", ".", "a..b", ".a", "a b", "a;b", "a\nb", "a/b", "*.example"}) {
    EXPECT_FALSE(normalize_zone(bad)) << bad;
  }
  EXPECT_FALSE(normalize_zone(std::string(64, 'a') + ".example"));
  EXPECT_FALSE(normalize_zone(std::string(254, 'a')));
}

}  // namespace
}  // namespace sppd::dnsbl_cache
