// Credentials: turns the client's base64 AUTH lines (forwarded untouched by the worker) into
// a user name and a secret, and builds checkpassword's fd 3 input from them. Pure functions,
// no I/O; called by authd's service for every kAuthCheck. Hostile input: anything that does
// not decode cleanly is rejected with a reason (the worker answers 501), never guessed at.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authd/secret.h"

namespace sppd::authd {

enum class Method { kPlain, kLogin, kCramMd5, kCramSha1, kCramRipemd };

// The Method for a kAuthCheck method attribute ("plain", "login", "cram-md5", "cram-sha1",
// "cram-ripemd"), or nullopt.
std::optional<Method> method_named(std::string_view name);
// The attribute spelling of a method, for log lines.
const char* method_name(Method method);
bool is_cram(Method method);
// How many response lines a method's exchange produces (PLAIN 1, LOGIN 2, CRAM 1).
size_t response_count(Method method);

// Which order the CRAM fields take on fd 3 (qmail-protocols.md §4.2).
enum class CramOrder { kResponseFirst, kChallengeFirst };

// checkpassword reads at most this much from fd 3 (checkpassword(8) / CPW).
constexpr size_t kMaxCheckInput = 512;

// Strict RFC 4648 base64 (the standard alphabet, length a multiple of 4, '=' padding only at
// the end): the decoded bytes, or nullopt. Leading and trailing whitespace is not allowed.
std::optional<Secret> decode_base64(std::string_view text);

struct Credentials {
  Method method = Method::kPlain;
  std::string user;       // the login name (authcid); never empty, no control characters
  Secret secret;          // PLAIN/LOGIN: the password; CRAM: the hex digest the client sent
  std::string challenge;  // CRAM only: the challenge the client answered
};

// Decodes a method's response lines; on failure returns nullopt and says why in *why (a
// reason for the log that never contains the secret). The decoded bytes that did not end up
// in the result are wiped.
std::optional<Credentials> decode_credentials(Method method,
                                              const std::vector<std::string_view>& responses,
                                              std::string_view challenge, std::string* why);

// checkpassword's fd 3 input: "user\0password\0timestamp\0" for PLAIN and LOGIN;
// "user\0response\0challenge\0" (kResponseFirst) or "user\0challenge\0response\0" for CRAM.
// nullopt if it would exceed kMaxCheckInput.
std::optional<Secret> checkpassword_input(const Credentials& credentials, CramOrder order,
                                          std::string_view timestamp);

}  // namespace sppd::authd
