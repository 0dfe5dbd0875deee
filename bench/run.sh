#!/bin/sh
# sppd benchmarks: sppd from the build dir (SPPD_BIN_DIR, default build/bin) on loopback,
# driven by Postfix's smtp-source (the postfix package is installed for this tool only and
# is never started) and a small latency client. Prints one table, then the qmail-spp plugin
# cost (rows spp0/2x50/a and spp6/2x50/a), then TLS handshakes/s (465 and STARTTLS, TLS 1.3
# and 1.2), AUTH PLAIN sessions/s through sppd-test-checkpassword and smtpd memory per TLS
# session (rows tls/..., auth/..., rss/...; bench/tls_auth.py), then connections/s through
# DNSBL checks and the DNS queries that reached rbldnsd (rows dnsbl/...; bench/dnsbl.py), and
# the lookup latency of a DNSBL verdict (dnsbl/latency: a shared-memory hit, a socket hit, a
# miss; build/bench/dnsbl_latency), and msgs/s with every message scanned by a real clamd
# versus none (rows clamd/...; bench/virus_scan.py); see bench/README.md.
# Usage: bench/run.sh [--quick] [--size BYTES]
#                     [--only null/2x50/a,spp0/2x50/a,tls,auth,rss,dnsbl,dnsbl/latency,clamd,...]
#   BENCH_SCALE=0.5 bench/run.sh   scales every message count.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /usr/sbin/smtp-source ]; then
  echo "bench: /usr/sbin/smtp-source missing: run scripts/install-deps.sh (package postfix)" >&2
  exit 1
fi
export SPPD_BIN_DIR="${SPPD_BIN_DIR:-$here/../build/bin}"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$here/bench.py" "$@"
