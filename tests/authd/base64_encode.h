// b64(): plain base64 (OpenSSL's encoder), how the authd tests write what a client sends in
// AUTH PLAIN, LOGIN and CRAM exchanges. Shared by credentials, runner and server tests.
#pragma once

#include <openssl/evp.h>

#include <string>

namespace sppd::authd {

inline std::string b64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace sppd::authd
