#!/usr/bin/env bash
# Make sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432) answer:
# install them with apt when missing, start them when stopped. Idempotent.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis_up && break; sleep 0.2; done
fi
redis_up && echo "redis: up" || { echo "redis: could not be started" >&2; exit 1; }

if ! pg_up; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -z "$version" ]; then apt_install postgresql; version=$(ls /etc/postgresql | sort -V | tail -1); fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 50); do pg_up && break; sleep 0.2; done
fi
pg_up && echo "postgresql: up" || { echo "postgresql: could not be started" >&2; exit 1; }
# The tests use database "test" with trust auth for the postgres user.
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "create database test" >/dev/null
fi
echo "postgresql: database test ready"

# vector-search's native Search front builds against gRPC C++ and protobuf (make install).
if [ "${FASHIONREC_SKIP_NATIVE:-}" = "" ] && ! pkg-config --exists grpc++ 2>/dev/null; then
  apt_install libgrpc++-dev libprotobuf-dev protobuf-compiler pkg-config
fi
pkg-config --exists grpc++ 2>/dev/null && echo "grpc++: $(pkg-config --modversion grpc++)" || true

# Browser tests drive Debian's Chromium (Playwright cannot download its own here).
if [ "${FASHIONREC_SKIP_CHROMIUM:-}" = "" ] && ! command -v chromium >/dev/null; then
  apt_install chromium
fi
command -v chromium >/dev/null && echo "chromium: $(chromium --version 2>/dev/null | head -1)" || true
