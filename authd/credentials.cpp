// Credential decoding and checkpassword input (contract in credentials.h). The exchanges are
// qmail-protocols.md §4.4 (Hoffmann's code): PLAIN "authzid\0authcid\0password" with the
// authzid ignored, LOGIN user and password lines, CRAM "user SP digest" split at the last space.
#include "authd/credentials.h"

#include <array>

namespace sppd::authd {
namespace {

constexpr int kInvalid = -1;
constexpr int kPad = -2;

constexpr std::array<int, 256> make_alphabet() {
  std::array<int, 256> table{};
  for (auto& v : table) v = kInvalid;
  const char* symbols = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(symbols[i])] = i;
  table['='] = kPad;
  return table;
}

constexpr std::array<int, 256> kAlphabet = make_alphabet();

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::optional<Credentials> decode_plain(std::string_view response, std::string* why) {
  std::optional<Secret> decoded = decode_base64(response);
  if (!decoded) {
    *why = "bad base64";
    return std::nullopt;
  }
  std::string_view bytes = decoded->view();
  size_t first = bytes.find('\0');
  size_t second = first == std::string_view::npos ? first : bytes.find('\0', first + 1);
  if (second == std::string_view::npos) {
    *why = "PLAIN response lacks its NUL separators";
    return std::nullopt;
  }
  std::string_view user = bytes.substr(first + 1, second - first - 1);
  std::string_view password = bytes.substr(second + 1);
  if (user.empty() || password.empty()) {
    *why = user.empty() ? "empty user name" : "empty password";
    return std::nullopt;
  }
  if (has_nul(password)) {
    *why = "NUL byte in the password";
    return std::nullopt;
  }
  Credentials credentials;
  credentials.method = Method::kPlain;
  credentials.user = std::string(user);
  credentials.secret = Secret(password.size());
  credentials.secret.append(password);
  return credentials;
}

std::optional<Credentials> decode_login(std::string_view user_line, std::string_view password_line,
                                        std::string* why) {
  std::optional<Secret> user = decode_base64(user_line);
  std::optional<Secret> password = decode_base64(password_line);
  if (!user || !password) {
    *why = "bad base64";
    return std::nullopt;
  }
  if (user->empty() || password->empty()) {
    *why = user->empty() ? "empty user name" : "empty password";
    return std::nullopt;
  }
  if (has_nul(user->view()) || has_nul(password->view())) {
    *why = has_nul(user->view()) ? "NUL byte in the user name" : "NUL byte in the password";
    return std::nullopt;
  }
  Credentials credentials;
  credentials.method = Method::kLogin;
  credentials.user = std::string(user->view());
  credentials.secret = std::move(*password);
  return credentials;
}

std::optional<Credentials> decode_cram(Method method, std::string_view response,
                                       std::string_view challenge, std::string* why) {
  std::optional<Secret> decoded = decode_base64(response);
  if (!decoded) {
    *why = "bad base64";
    return std::nullopt;
  }
  std::string_view bytes = decoded->view();
  // Hoffmann's patch splits at the last space (0.31 at the first): a user name may hold
  // spaces, a hex digest never does.
  size_t space = bytes.rfind(' ');
  if (space == std::string_view::npos) {
    *why = "CRAM response is not 'user digest'";
    return std::nullopt;
  }
  std::string_view user = bytes.substr(0, space);
  std::string_view digest = bytes.substr(space + 1);
  if (user.empty() || digest.empty()) {
    *why = user.empty() ? "empty user name" : "empty CRAM digest";
    return std::nullopt;
  }
  if (has_nul(bytes)) {
    *why = "NUL byte in the CRAM response";
    return std::nullopt;
  }
  if (challenge.empty() || has_nul(challenge)) {
    *why = "no usable challenge";
    return std::nullopt;
  }
  Credentials credentials;
  credentials.method = method;
  credentials.user = std::string(user);
  credentials.secret = Secret(digest.size());
  credentials.secret.append(digest);
  credentials.challenge = std::string(challenge);
  return credentials;
}

}  // namespace

std::optional<Method> method_named(std::string_view name) {
  if (name == "plain") return Method::kPlain;
  if (name == "login") return Method::kLogin;
  if (name == "cram-md5") return Method::kCramMd5;
  if (name == "cram-sha1") return Method::kCramSha1;
  if (name == "cram-ripemd") return Method::kCramRipemd;
  return std::nullopt;
}

const char* method_name(Method method) {
  switch (method) {
    case Method::kPlain:
      return "plain";
    case Method::kLogin:
      return "login";
    case Method::kCramMd5:
      return "cram-md5";
    case Method::kCramSha1:
      return "cram-sha1";
    case Method::kCramRipemd:
      return "cram-ripemd";
  }
  return "unknown";
}

bool is_cram(Method method) { return method != Method::kPlain && method != Method::kLogin; }

size_t response_count(Method method) { return method == Method::kLogin ? 2 : 1; }

std::optional<Secret> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  Secret out(text.size() / 4 * 3);
  uint32_t bits = 0;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    int value = kAlphabet[static_cast<unsigned char>(text[i])];
    if (value < 0) {  // a stray '=' or a byte outside the alphabet
      OPENSSL_cleanse(&bits, sizeof bits);
      return std::nullopt;
    }
    bits = (bits << 6) | static_cast<uint32_t>(value);
    if (i % 4 == 3) {
      out.push_back(static_cast<char>((bits >> 16) & 0xff));
      out.push_back(static_cast<char>((bits >> 8) & 0xff));
      out.push_back(static_cast<char>(bits & 0xff));
      bits = 0;
    }
  }
  // The last quantum: "xx==" carries one byte, "xxx=" two.
  if (padding == 2) {
    out.push_back(static_cast<char>((bits >> 4) & 0xff));
  } else if (padding == 1) {
    out.push_back(static_cast<char>((bits >> 10) & 0xff));
    out.push_back(static_cast<char>((bits >> 2) & 0xff));
  }
  OPENSSL_cleanse(&bits, sizeof bits);
  return out;
}

std::optional<Credentials> decode_credentials(Method method,
                                              const std::vector<std::string_view>& responses,
                                              std::string_view challenge, std::string* why) {
  if (responses.size() != response_count(method)) {
    *why = "expected " + std::to_string(response_count(method)) + " response line(s), got " +
           std::to_string(responses.size());
    return std::nullopt;
  }
  for (auto line : responses) {
    if (line.empty()) {
      *why = "empty response line";
      return std::nullopt;
    }
  }
  std::optional<Credentials> credentials;
  if (method == Method::kPlain) {
    credentials = decode_plain(responses[0], why);
  } else if (method == Method::kLogin) {
    credentials = decode_login(responses[0], responses[1], why);
  } else {
    credentials = decode_cram(method, responses[0], challenge, why);
  }
  // The user name travels on: SMTPAUTHUSER, TCPREMOTEINFO and the Received line. No
  // checkpassword should accept "alice\r\nX-Injected: yes", but none gets the chance.
  if (credentials && has_control(credentials->user)) {
    *why = "control character in the user name";
    return std::nullopt;
  }
  return credentials;
}

std::optional<Secret> checkpassword_input(const Credentials& credentials, CramOrder order,
                                          std::string_view timestamp) {
  std::string_view third = is_cram(credentials.method) ? credentials.challenge : timestamp;
  size_t size = credentials.user.size() + credentials.secret.size() + third.size() + 3;
  if (size > kMaxCheckInput) return std::nullopt;
  Secret input(size);
  input.append(credentials.user);
  input.push_back('\0');
  if (is_cram(credentials.method) && order == CramOrder::kChallengeFirst) {
    input.append(credentials.challenge);
    input.push_back('\0');
    input.append(credentials.secret.view());
  } else {
    input.append(credentials.secret.view());
    input.push_back('\0');
    input.append(third);
  }
  input.push_back('\0');
  return input;
}

}  // namespace sppd::authd
