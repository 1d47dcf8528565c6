#!/usr/bin/env bash
# Make sure what the test suite talks to is there: SIPp, PostgreSQL on 127.0.0.1:5432, Redis on 6379.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v sipp >/dev/null; then
  echo "installing SIPp (sip-tester)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq sip-tester >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  if ! command -v pg_ctlcluster >/dev/null; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  fi
  echo "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi

if ! port_open 6379; then
  if ! command -v redis-server >/dev/null; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
  fi
  echo "starting Redis"
  mkdir -p /tmp/redis-dialer
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/redis-dialer
fi

for _ in $(seq 1 30); do port_open 5432 && port_open 6379 && exit 0; sleep 1; done
echo "PostgreSQL or Redis did not come up" >&2
exit 1
