// The Received: line qmail-smtpd writes at the top of every message (notqmail received.c,
// spec qmail-protocols.md §2.8), with RFC 3848 "with" values. Pure; LF line ends.
#pragma once

#include <ctime>
#include <optional>
#include <string>

namespace sppd::smtpd {

struct ReceivedFacts {
  std::optional<std::string> remote_host;  // TCPREMOTEHOST
  std::optional<std::string> helo;         // HELO/EHLO argument, if one was given
  std::optional<std::string> remote_info;  // TCPREMOTEINFO
  std::optional<std::string> remote_ip;    // TCPREMOTEIP
  std::optional<std::string> local_host;   // TCPLOCALHOST
  std::optional<std::string> local_ip;     // TCPLOCALIP
  std::string protocol = "SMTP";           // SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA (+ " (...)")
  time_t when = 0;
};

// "Received: from REMOTEHOST (HELO x) (INFO@IP)\n  by LOCAL with PROTO; 14 Nov 2023 22:13:20
// -0000\n" with qmail's safeput (bytes outside A-Za-z0-9.@%+/=:-[] become '?') and its rules for
// when "(HELO x)" and "INFO@" appear.
std::string received_line(const ReceivedFacts& facts);

// "14 Nov 2023 22:13:20 -0000": qmail's date822fmt, always UTC.
std::string date822(time_t when);

}  // namespace sppd::smtpd
