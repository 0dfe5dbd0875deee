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
//   attrs: env ("NAME=value", repeated: the whole session environment qmail-queue inherits)
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

// Shared-memory fast path (issue 5 item 2; common/dnsbl_table.h holds the layout).
// worker (or any local client) -> cache: send me the table. No attrs.
constexpr uint16_t kDnsblTableRequest = 24;
// cache -> asker: fd = a read-only descriptor of the table segment (map it PROT_READ).
//   attrs: slots, slot_size (the layout's numbers, checked by the reader against its own)
constexpr uint16_t kDnsblTable = 25;
// worker -> cache: DNSBL answers the worker found in shared memory since it last said so,
//   for the operator counters. attrs: count. No answer.
constexpr uint16_t kDnsblShmHits = 26;

// Per-client counters (issue 5 item 5: Postfix anvil, tcpserver -c), kept by dnsbl-cache so
// that every worker sees the same numbers; a worker's channel closing releases its clients.
// worker -> cache: a client connected. attrs: ip, listener, max_connections (0 = no limit),
//   max_rate (connections per rate_window seconds, 0 = no limit), rate_window, session (the
//   worker's session id; with reannounce="yes" the client connected earlier and the cache
//   was restarted since: count it, never refuse it)
constexpr uint16_t kClientConnect = 50;
// cache -> worker: attrs: verdict ("ok" | "too_many" | "too_fast"), connections (the
//   client's concurrent connections, this one included), rate (connections in the window)
constexpr uint16_t kClientVerdict = 51;
// worker -> cache: the session of kClientConnect ended (also sent for refused ones).
//   attrs: session. No answer.
constexpr uint16_t kClientDisconnect = 52;

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
