// The messages sppd processes exchange, in one place: frame types, their attributes, and
// the descriptor layout every child inherits from the master. Each program validates what
// it receives against this contract (missing attributes = malformed = channel closed).
#pragma once

#include <cstdint>

namespace sppd::protocol {

// ---- Descriptors every child of the master starts with (master/spawn.cpp sets them up).
constexpr int kLogFd = 2;          // stderr: a pipe the master reads, one log line per write
constexpr int kControlFd = 3;      // SOCK_SEQPACKET channel to the master
constexpr int kFirstListenFd = 4;  // smtpd only: listeners at 4, 5, ... in config order
// dnsbl-cache only: the listening AF_UNIX SOCK_SEQPACKET socket of [service dnsbl-cache]
// socket, bound by the master (which keeps it across dnsbl-cache restarts, so connections
// queue meanwhile). Each accepted connection is a local client speaking the frames below;
// it may send kDnsblQuery, kDnsPtr, kDnsblTableRequest and kStatusQuery, nothing else.
constexpr int kDnsblLocalFd = 4;

// ---- Child command line: <binary> --config PATH [--listener NAME=FD ...]
// Environment: SPPD_SERVICE=<service name>, SPPD_GENERATION=<n> (bumped by every reload).

// ---- master <-> every child (on kControlFd)
// child -> master: the child served its first unit of work (session, transaction, query);
// from now on its death is not a start-up failure (no throttling).
constexpr uint16_t kServed = 1;
// master -> helper (queue-bridge, dnsbl-cache): fd = one end of a new channel to a worker.
// attrs: worker_pid
constexpr uint16_t kNewClient = 2;
// master -> smtpd worker: fd = a (new) channel to a helper. attrs: service
// ("queue-bridge" | "dnsbl-cache" | "pluginrunner" | "authd"), helper_pid. Sent at worker start and
// again whenever a helper restarts. For a singleton service the worker replaces its old
// channel; pluginrunner is a pool, so the worker keeps one channel per helper_pid.
constexpr uint16_t kHelperChannel = 3;

// ---- smtpd worker <-> queue-bridge (request_id chosen by the worker, echoed in replies)
// worker -> bridge: start qmail-queue for a transaction.
//   attrs: env ("NAME=value", repeated: the whole session environment qmail-queue inherits),
//   clamd (optional: the listener's control/clamd, "ip:port", "[ipv6]:port" or an absolute
//   AF_UNIX socket path; the bridge then connects to it while qmail-queue starts, and only
//   if a listener's control/clamd, which the bridge reads itself, names that address)
constexpr uint16_t kQueueOpen = 10;
// bridge -> worker: qmail-queue runs. fd = write end of its message pipe (fd 0).
//   attrs: pid
constexpr uint16_t kQueueOpened = 11;
// worker -> bridge: more recipients for the envelope, sent before kQueueCommit when they do
// not fit in one frame. attrs: to (repeated)
constexpr uint16_t kQueueRecipients = 12;
// worker -> bridge: the message pipe is closed, here is the envelope; write it and wait.
//   attrs: from (exactly one, may be empty), to (repeated, may be none if sent before)
constexpr uint16_t kQueueCommit = 13;
// worker -> bridge: give up this transaction (nothing may be queued).
constexpr uint16_t kQueueAbort = 14;
// bridge -> worker: final answer for a transaction (also the answer to a failed open).
//   attrs: status ("ok" | "temp" | "perm"), text (qmail's wording, e.g.
//   "ok 1700000000 qp 4242" or "qq temporary problem (#4.3.0)"), pid (may be absent)
constexpr uint16_t kQueueResult = 15;
// bridge -> worker: the virus scanner of a kQueueOpen that named a clamd, sent immediately
//   before its kQueueOpened (never without one; a failed open gets kQueueResult alone).
//   With fd: a connected stream socket to clamd (attrs: status "ok"), over which the worker
//   speaks INSTREAM itself. Without fd: attrs: status "unavailable", text (why, for the log:
//   refused, timed out, not a configured address); the worker applies clamd_unavailable.
constexpr uint16_t kQueueScanner = 16;

// ---- smtpd worker <-> dnsbl-cache
// worker -> cache: reverse lookup. attrs: ip (textual IPv4 or IPv6)
constexpr uint16_t kDnsPtr = 20;
// cache -> worker: attrs: status ("ok" | "none" | "error"), name (lower-case, if ok)
constexpr uint16_t kDnsPtrResult = 21;

// worker -> cache: one DNSBL lookup, answered from the shared cache when it can be.
//   attrs: ip (the client, IPv4 or IPv6), zone (e.g. "zen.spamhaus.org"), type ("txt" for
//   rblsmtpd's -r: the TXT text is the reason; "a" for -r zone:text and for -a: any A record)
constexpr uint16_t kDnsblQuery = 22;
// cache -> worker: attrs: status ("listed" | "clear" | "error"), text (the TXT strings
//   joined, bytes outside 32..126 as '?', at most 200 bytes — rblsmtpd's rules; "txt" only),
//   address (repeated, the A answers; "a" only), cached ("yes" if no DNS query was needed).
//   Answers in 127.255.255.0/24 (a public resolver refused) are "error", never "listed".
constexpr uint16_t kDnsblResult = 23;

// Shared-memory fast path (issue 5 item 2; common/dnsbl_table.h holds the layout): the
// verdicts dnsbl-cache caches are also in a table every worker maps read-only and reads first.
// worker (or any local client) -> cache: send me the table. No attrs. A worker asks each time
// it gets a new dnsbl-cache channel (a restarted dnsbl-cache has a new table).
constexpr uint16_t kDnsblTableRequest = 24;
// cache -> asker: fd = a read-only descriptor of the table (a sealed memfd; map it PROT_READ,
//   MAP_SHARED). attrs: slots, slot_size (the layout's numbers, checked by the reader against
//   the table's header and its own). Without fd and attrs if dnsbl-cache has no table: the
//   asker then asks every verdict with kDnsblQuery.
constexpr uint16_t kDnsblTable = 25;
// worker -> cache: DNSBL answers the worker found in shared memory since it last said so,
//   for the operator counters (hits_shm); sent at most once a second and when the worker
//   stops. attrs: count (decimal). No answer.
constexpr uint16_t kDnsblShmHits = 26;

// Per-client counters (issue 5 item 5: Postfix anvil, tcpserver -c), kept by dnsbl-cache so
// that every worker sees the same numbers, per (listener, ip); a worker's channel closing
// releases its clients. Workers only: a local client sending these loses its channel.
// worker -> cache: a client connected. attrs: ip, listener (its name), max_connections
//   (0 = no limit), max_rate (connections admitted per rate_window seconds, 0 = no limit),
//   rate_window (1 or more), session (the worker's session id), reannounce (optional "yes":
//   the client connected earlier and the cache was restarted since: count it, never refuse
//   it, and send no answer; then also age = seconds since the client was first announced,
//   its place in the rate window)
constexpr uint16_t kClientConnect = 50;
// cache -> worker: attrs: verdict ("ok" | "too_many" | "too_fast"), connections (the
//   client's concurrent connections, this one included), rate (connections admitted in the
//   window, this one included; 0 without a rate limit). A refused connection is not counted
//   (nor does it count towards the rate).
constexpr uint16_t kClientVerdict = 51;
// worker -> cache: the session of kClientConnect ended; not needed for refused ones (the
//   cache ignores sessions it does not count). attrs: session. No answer.
constexpr uint16_t kClientDisconnect = 52;

// qmail-md's sender checks (control/mfcheck; issue 6 item 6), done by dnsbl-cache because the
// worker may neither resolve nor connect. Workers only.
// worker -> cache: attrs: sender (the MAIL address, local@domain; the worker sends only
//   addresses with a domain), level ("1": the domain needs an MX, A or AAAA record; "2": also
//   a call-back, RCPT TO:<sender> at its mail exchangers), helo (level 2: the name the
//   call-back's HELO gives: the listener's control/me), mxblacklist (level 2, repeated: IP
//   addresses never called, control/mxblacklist in canonical form)
constexpr uint16_t kSenderCheck = 70;
// cache -> worker: attrs: verdict ("ok" | "no_domain" | "null_mx" | "dns_error" |
//   "mx_blacklisted" | "rejected" | "unverified": no exchanger answered, the mail is
//   accepted), reply (repeated: the exchanger's reply lines to RCPT TO when a call-back got
//   one, printable, as the worker logs them), detail (for the worker's log line), cached
//   ("yes" if neither a DNS query nor a call-back was needed)
constexpr uint16_t kSenderVerdict = 71;

// Operators' status query (issue 5 item 6), asked on dnsbl-cache's local socket.
// client -> cache: no attrs.
constexpr uint16_t kStatusQuery = 60;
// cache -> client: attrs: counter (repeated "name=value", e.g. "dnsbl.queries=12").
constexpr uint16_t kStatusReport = 61;

// ---- smtpd worker <-> pluginrunner (qmail-spp plugins; spec/qmail-spp.md)
// worker -> runner: read a plugin file (SPPCONFFILE or control/smtpplugins) with qmail's
// control-file rules; a relative path is relative to qmail_home. attrs: path
constexpr uint16_t kPluginConfig = 30;
// runner -> worker: attrs: status ("ok" | "missing" | "error"), error (why, if "error"),
//   plugin (repeated, in file order: the section letter then the config line, e.g.
//   "rplugins/ifauthskip" or "r:plugins/rblspp -r zone"). Only sections c h m r d a are
//   returned; lines of other sections never run (qmail-spp's dummy list).
constexpr uint16_t kPluginConfigResult = 31;
// worker -> runner: run one section's plugins in order. attrs: section (c|h|m|r|d|a),
//   session (the worker's session id, for log lines), plugin (repeated config lines),
//   env (repeated "NAME=value": the session environment the first plugin sees)
constexpr uint16_t kPluginRun = 32;
// runner -> worker: attrs: command (repeated: every command that took effect, in order,
//   as the plugin printed it without its line end, e.g. "HX-Spam: yes", "SFOO=bar",
//   "E550 no"; the last is the terminating one if any), failure (optional: qmail-spp's
//   text for a plugin that crashed, timed out or could not run, e.g.
//   "qmail-spp failure: plugins/x: child crashed (#4.3.0)").
constexpr uint16_t kPluginResult = 33;
// Recipient checks (issue 6 items 4 and 11), run by pluginrunner because it may start
// programs and read qmail's files; the worker turns the answers into replies.
// worker -> runner: run qmail-md's rcptcheck program once, as a plugin is run (same spawning,
//   plugin_timeout, cwd qmail_home; ":cmd" runs through /bin/sh -c). attrs: program (the
//   RCPTCHECK value or control/rcptcheck's line), session, sender (may be empty), recipient,
//   env (repeated "NAME=value": the session environment; SENDER and RECIPIENT are set over it)
constexpr uint16_t kRcptCheck = 34;
// runner -> worker: attrs: exit (its exit status, decimal) if the program exited, else
//   failure (why there is no exit status: could not run, killed by a signal, timed out).
constexpr uint16_t kRcptCheckResult = 35;
// worker -> runner: does the recipient's mailbox exist by qmail's own delivery rules
//   (realrcptto: control/locals, virtualdomains, users/cdb or users/assign, passwd, .qmail
//   files under qmail_home)? Nothing is cached: every question reads the files afresh.
//   attrs: recipient, session
constexpr uint16_t kRealRcptTo = 36;
// runner -> worker: attrs: status ("exists" | "no_mailbox" | "not_local" | "error"), detail
//   (why, for the worker's log line).
constexpr uint16_t kRealRcptToResult = 37;

// ---- smtpd worker <-> authd (SMTP AUTH through checkpassword; qmail-protocols.md §4)
// The worker never decodes credentials: it forwards the client's base64 lines as they came,
// and authd (the only process that sees a password) decodes them.
// worker -> authd: attrs: method ("plain" | "login" | "cram-md5" | "cram-sha1" |
//   "cram-ripemd"), response (repeated, the client's base64 lines in order: PLAIN one,
//   LOGIN two (user, password), CRAM one), challenge (CRAM only: the exact challenge text
//   the client was sent, before base64), remote_ip, local_port (checkpassword programs such
//   as vchkpw look at TCPLOCALPORT), delay (seconds to hold a failure's answer:
//   control/auth/delay)
constexpr uint16_t kAuthCheck = 40;
// authd -> worker: attrs: status ("ok" | "bad" | "temp" | "malformed"), user (if "ok": the
//   authenticated login name), text (optional detail for the worker's log, never a secret)
constexpr uint16_t kAuthResult = 41;

}  // namespace sppd::protocol
