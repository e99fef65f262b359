#!/usr/bin/env bash
# test-registry.sh [ADDR] [DATADIR]
#
# Starts (or reuses) a detached registry on ADDR (default 127.0.0.1:5000)
# with start-registry.sh and pushes every e2e test image into it with
# e2e/images/cmd/testimages. Re-running is cheap: built layers are cached
# (see fixture.CacheDir) and nothing already in the registry is sent again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
addr=${1:-127.0.0.1:5000}
data=${2:-${TMPDIR:-/tmp}/arbor-registry/data}

"$here/start-registry.sh" "$addr" "$data"
cd "$here/../.."
go run ./e2e/images/cmd/testimages -registry "$addr"
