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
// ("queue-bridge" | "dnsbl-cache"). Sent at worker start and again whenever that helper
// restarts; the worker replaces any old channel for that service.
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

}  // namespace sppd::protocol
