// sppd.conf: the master's configuration, read by every program at start (the master
// validates it first, so children only re-read a file the master accepted).
//
// Format (documented in README "Configuration reference"): lines of `key = value`, `#`
// comments, sections `[service NAME]` and `[listener NAME]`; keys before the first section
// are global. Relative paths are relative to the directory of the config file, except
// qmail_queue (and later plugin paths), which qmail resolves from the qmail home.
// Any error throws ConfigError whose message is "file:line: what".
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sppd::config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Listener {
  std::string name;
  std::string host;  // numeric IPv4 or IPv6, without brackets
  int port = 0;
  std::string control_dir;         // absolute; qmail control files (me, rcpthosts, ...)
  std::string tcprules;            // absolute path of a tcprules text file, or empty
  bool remote_host_lookup = true;  // TCPREMOTEHOST from PTR (tcpserver without -H)
  int remote_host_timeout = 3;     // seconds the greeting may wait for the PTR answer
  std::string local_host;          // TCPLOCALHOST (tcpserver -l); empty = unset
  // TLS: the certificate chain and key (default control_dir/servercert.pem, both in one
  // file); STARTTLS is offered only if the file exists. implicit_tls: TLS from the first
  // byte (SMTPS, port 465). require_tls: no AUTH or MAIL before TLS. require_auth: no MAIL
  // before AUTH (submission).
  std::string tls_certificate, tls_key;
  bool implicit_tls = false;
  bool require_tls = false;
  bool require_auth = false;
  int tls_handshake_timeout = 30;
  // DNSBL checks with rblsmtpd's options, acted on in order ("-b -r zone -a zone -t 60"),
  // at connect (rblsmtpd's place) or deferred to the first RCPT (rblspp's place, skipped for
  // authenticated sessions). Empty: no checks.
  std::string rbl;
  bool rbl_at_rcpt = false;
  // Per-client limits (Postfix's anvil, tcpserver -c), counted by dnsbl-cache across every
  // worker; tcprules' MAXCONNIP / MAXCONNRATE override them per client. 0 = no limit.
  // Concurrency is limited by default (DECISIONS.md), like Postfix's
  // smtpd_client_connection_count_limit; the rate (connections admitted per window) is not.
  int max_connections_per_ip = 50;
  int max_connection_rate_per_ip = 0;
  int connection_rate_window = 60;  // seconds
  // realrcptto (qmail-md): refuse RCPTs for local addresses qmail has no mailbox for; no =
  // never (NOREALRCPTTO in tcprules switches it off per client).
  bool realrcptto = true;
  // Virus scanning (control/clamd): what a message gets when clamd cannot scan it (down,
  // an error, a timeout): false = tempfail (451, nothing queued), true = queued unscanned,
  // logged. clamd_timeout: seconds clamd may stall reading the message or answering.
  bool clamd_accept_unavailable = false;
  int clamd_timeout = 60;
  // Overrides of the control files of the same names; nullopt = use control/ or default.
  std::optional<long> databytes, timeoutsmtpd, maxcmdlen, maxaddrlen, maxhops;
  int line = 0;
};

struct Service {
  std::string name;    // smtpd, queue-bridge, dnsbl-cache, ...
  std::string user;    // run as this user when the master runs as root; empty = no switch
  std::string chroot;  // absolute; empty = none (smtpd defaults to /var/lib/sppd/empty)
  int processes = 1;
  int sessions_per_worker = 50;                 // smtpd: concurrent sessions per worker process
  int max_use = 1000;                           // smtpd: sessions before a worker is recycled
  std::map<std::string, std::string> settings;  // service-specific keys (see kServiceKeys)
  int line = 0;
  std::string get(const std::string& key, const std::string& fallback) const;
  long get_long(const std::string& key, long fallback) const;
};

struct Config {
  std::string path;        // absolute path of the file read
  std::string dir;         // its directory
  std::string qmail_home;  // absolute; cwd of qmail-queue and plugins
  int drain_timeout = 60;  // seconds SIGTERM lets sessions finish
  std::string log_level = "info";
  std::vector<Listener> listeners;
  std::map<std::string, Service> services;

  const Service& service(const std::string& name) const;  // throws if absent
  const Listener* listener(const std::string& name) const;
};

// Reads and validates a config file.
Config load(const std::string& path);
// Parses config text as if read from path (used by tests).
Config parse(const std::string& text, const std::string& path);

// [service dnsbl-cache] socket: the local socket on which dnsbl-cache answers processes
// other than the workers (rblspp, sppd-dnsbl-status). Absolute; the master binds it.
inline constexpr char kDefaultDnsblSocket[] = "/run/sppd/dnsbl-cache.sock";
std::string dnsbl_socket(const Config& config);

// Parses "1.2.3.4:25", "[::1]:25" into host and port; false if malformed.
bool split_address(const std::string& address, std::string* host, int* port);

}  // namespace sppd::config
