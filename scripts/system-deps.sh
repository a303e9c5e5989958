#!/usr/bin/env bash
# Installs the real servers the integration tests drive (MariaDB, BIND 9, Knot DNS, PowerDNS with its
# SQLite backend, headless Chromium) when they are missing and this machine can (root + apt-get).
# Elsewhere it says what is missing; the tests that need those servers then skip with the same
# reason.
set -u
need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || need+=(knot)
command -v kdig >/dev/null 2>&1 || need+=(knot-dnsutils)
command -v pdns_server >/dev/null 2>&1 || [ -x /usr/sbin/pdns_server ] || need+=(pdns-server)
[ -f /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ] || need+=(pdns-backend-sqlite3)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v mydumper >/dev/null 2>&1 || need+=(mydumper)  # a benchmark peer
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || echo "warning: could not install ${need[*]}; tests needing them will skip" >&2
  # Debian starts the packaged services; the tests run their own private servers instead.
  for svc in mariadb named bind9 knot pdns; do
    (command -v systemctl >/dev/null && systemctl stop "$svc") >/dev/null 2>&1 || true
    (command -v service >/dev/null && service "$svc" stop) >/dev/null 2>&1 || true
  done
else
  echo "missing: ${need[*]} (tests needing them will skip; as root: apt-get install ${need[*]})" >&2
fi
exit 0
