#!/bin/sh
# Installs everything sppd needs to build, run and test on Debian 12, and creates the
# system users its processes switch to when started as root. Used by `make` and .ci/run.
# Idempotent: safe to run again.
set -eu

packages="build-essential cmake pkg-config clang-format
  libevent-dev libssl-dev libseccomp-dev libboost-dev libc-ares-dev libcdb-dev tinycdb
  libgtest-dev
  python3 python3-pytest swaks libnet-ssleay-perl openssl postfix rbldnsd procps iproute2 dnsmasq-base
  clamav-daemon"

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; assuming these are installed: $packages" >&2
  exit 0
fi

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  # Postfix is installed only for its smtp-source benchmark tool: never configure or start it.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
  # clamav-daemon is installed for the tests' and benchmark's own clamd (started in the
  # foreground with a signature made at test time): Debian's clamd and freshclam services
  # are not needed and must not download signatures, so stop and disable them if we just
  # installed them (a host that had clamav-daemon before keeps its setup).
  case " $missing " in
    *" clamav-daemon "*)
      if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now clamav-daemon.service clamav-daemon.socket \
          clamav-freshclam.service >/dev/null 2>&1 || true
      fi ;;
  esac
fi

# One user per process kind (DESIGN.md "Processes and privileges").
for user in sppd-smtpd sppd-queue sppd-dns sppd-plugin; do
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$user"
done
