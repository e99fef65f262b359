#!/usr/bin/env bash
# start-registry.sh [ADDR] [DATADIR]
#
# Starts Debian's docker-registry (distribution 2.8) detached, serving plain
# HTTP on ADDR (default 127.0.0.1:5000) with its storage in DATADIR (default
# ${TMPDIR:-/tmp}/arbor-registry/data), unless a registry already answers on
# http://ADDR/v2/. The config, log and pid file are written next to DATADIR:
# DATADIR/../registry.{yml,log,pid}. Stop it with
#   kill "$(cat DATADIR/../registry.pid)"
# Fill it with: go run ./e2e/images/cmd/testimages -registry ADDR
set -euo pipefail

addr=${1:-127.0.0.1:5000}
data=${2:-${TMPDIR:-/tmp}/arbor-registry/data}
bin=${REGISTRY_BIN:-/usr/bin/docker-registry}

say() { printf '[start-registry] %s\n' "$*" >&2; }

answers() { curl -fsS -m "$1" -o /dev/null "http://$addr/v2/" 2>/dev/null; }

if answers 2; then
	say "a registry already answers on http://$addr"
	exit 0
fi
case ${addr%:*} in
127.* | localhost | "[::1]") ;;
*) say "refusing non-loopback address $addr"; exit 1 ;;
esac
[[ -x $bin ]] || { say "$bin not found (apt-get install docker-registry, or set REGISTRY_BIN)"; exit 1; }

mkdir -p "$data"
data=$(cd "$data" && pwd)
state=$(dirname "$data")
cat >"$state/registry.yml" <<YAML
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: $addr
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
YAML

setsid "$bin" serve "$state/registry.yml" >>"$state/registry.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$state/registry.pid"
for _ in $(seq 1 100); do
	if answers 1; then
		say "registry pid $pid on http://$addr (data $data, log $state/registry.log)"
		exit 0
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
say "registry did not come up; last log lines:"
tail -n 20 "$state/registry.log" >&2 || true
kill "$pid" 2>/dev/null || true
exit 1
