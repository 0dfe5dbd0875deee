// Test helpers for dnsbl-cache: builds DNS response messages byte by byte (RFC 1035 §4.1),
// so the parsers and the resolver are tested against exact, known packets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sppd::dnsbl_cache::dns_test {

using Bytes = std::vector<unsigned char>;

inline void put16(Bytes* out, uint32_t v) {
  out->push_back(static_cast<unsigned char>(v >> 8));
  out->push_back(static_cast<unsigned char>(v));
}
inline void put32(Bytes* out, uint32_t v) {
  put16(out, v >> 16);
  put16(out, v & 0xffff);
}

// "a.b" -> \1a\1b\0
inline Bytes encode_name(const std::string& name) {
  Bytes out;
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out.push_back(static_cast<unsigned char>(dot - start));
    out.insert(out.end(), name.begin() + static_cast<long>(start),
               name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  out.push_back(0);
  return out;
}

struct Record {
  std::string name;
  uint16_t type;
  uint32_t ttl;
  Bytes rdata;
};

inline Record ptr_record(const std::string& owner, const std::string& target, uint32_t ttl) {
  return Record{owner, 12, ttl, encode_name(target)};
}

// A TXT record of one or more character-strings (each at most 255 bytes).
inline Record txt_record(const std::string& owner, const std::vector<std::string>& strings,
                         uint32_t ttl) {
  Bytes rdata;
  for (const std::string& piece : strings) {
    rdata.push_back(static_cast<unsigned char>(piece.size()));
    rdata.insert(rdata.end(), piece.begin(), piece.end());
  }
  return Record{owner, 16, ttl, rdata};
}

// An A record; address is a dotted quad.
inline Record a_record(const std::string& owner, const std::string& address, uint32_t ttl) {
  Bytes rdata;
  size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    size_t dot = address.find('.', start);
    rdata.push_back(static_cast<unsigned char>(std::stoi(address.substr(start, dot - start))));
    start = dot + 1;
  }
  return Record{owner, 1, ttl, rdata};
}

inline Record soa_record(const std::string& zone, uint32_t ttl, uint32_t minimum) {
  Bytes rdata = encode_name("ns." + zone);
  Bytes rname = encode_name("hostmaster." + zone);
  rdata.insert(rdata.end(), rname.begin(), rname.end());
  for (uint32_t field : {1u, 3600u, 600u, 86400u}) put32(&rdata, field);
  put32(&rdata, minimum);
  return Record{zone, 6, ttl, rdata};
}

// A response to (qname, qtype) with the given rcode (0 ok, 3 NXDOMAIN) and sections.
inline Bytes make_response(uint16_t id, int rcode, const std::string& qname, uint16_t qtype,
                           const std::vector<Record>& answers,
                           const std::vector<Record>& authority = {}) {
  Bytes out;
  put16(&out, id);
  put16(&out, 0x8180u | static_cast<uint32_t>(rcode));  // QR, RD, RA
  put16(&out, 1);
  put16(&out, static_cast<uint32_t>(answers.size()));
  put16(&out, static_cast<uint32_t>(authority.size()));
  put16(&out, 0);
  Bytes q = encode_name(qname);
  out.insert(out.end(), q.begin(), q.end());
  put16(&out, qtype);
  put16(&out, 1);
  for (const auto* section : {&answers, &authority}) {
    for (const Record& r : *section) {
      Bytes owner = encode_name(r.name);
      out.insert(out.end(), owner.begin(), owner.end());
      put16(&out, r.type);
      put16(&out, 1);
      put32(&out, r.ttl);
      put16(&out, static_cast<uint32_t>(r.rdata.size()));
      out.insert(out.end(), r.rdata.begin(), r.rdata.end());
    }
  }
  return out;
}

}  // namespace sppd::dnsbl_cache::dns_test
