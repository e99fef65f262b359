#!/usr/bin/env bash
# build-cri-tools.sh [OUTDIR] [VERSION]
#
# Builds crictl, critest and the ginkgo CLI (critest re-executes itself through
# ginkgo for -parallel > 1) from sigs.k8s.io/cri-tools, fetched through the Go
# module proxy. The module zip has no vendor/ folder and the module cache is
# read-only, so the build runs in a writable copy with -mod=mod.
#
# OUTDIR defaults to <repo>/bin, VERSION to v1.37.0. Binaries that already
# report VERSION are not rebuilt; FORCE=1 rebuilds them anyway.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/../../bin}
version=${2:-v1.37.0}
plain=${version#v}
src=${WORK:-${TMPDIR:-/tmp}/arbor-cri-tools-src-$plain}

say() { printf '[build-cri-tools] %s\n' "$*" >&2; }

mkdir -p "$out"
out=$(cd "$out" && pwd)

# have_version BIN ARGS... : true when BIN exists and its version output names $plain.
have_version() {
	local bin=$1
	shift
	local out
	[[ -x $bin ]] || return 1
	# Capture first: under pipefail, grep -q closing the pipe early would
	# make the pipeline fail with SIGPIPE.
	out=$("$bin" "$@" 2>/dev/null) || true
	[[ $out == *"$plain"* ]]
}

up_to_date() {
	[[ ${FORCE:-0} != 1 ]] &&
		have_version "$out/crictl" --version &&
		have_version "$out/critest" -version &&
		[[ -x $out/ginkgo && -f $out/.ginkgo-for-cri-tools-$plain ]]
}

if up_to_date; then
	say "crictl, critest and ginkgo $version already in $out"
	exit 0
fi

say "fetching sigs.k8s.io/cri-tools@$version"
moddir=$(go mod download -json "sigs.k8s.io/cri-tools@$version" | jq -r .Dir)
[[ -d $moddir ]] || { say "module download gave no folder"; exit 1; }

rm -rf "$src"
cp -r "$moddir" "$src"
chmod -R u+w "$src"
cd "$src"

ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=$plain"
export CGO_ENABLED=0

say "building crictl"
go build -mod=mod -trimpath -ldflags "$ldflags" -o "$out/crictl" ./cmd/crictl
say "building critest"
go test -mod=mod -trimpath -c -ldflags "$ldflags" -o "$out/critest" ./cmd/critest
say "building ginkgo (version pinned by cri-tools' go.mod)"
go build -mod=mod -trimpath -o "$out/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
touch "$out/.ginkgo-for-cri-tools-$plain"

cd /
rm -rf "$src"
"$out/crictl" --version
version_line=$("$out/critest" -version 2>/dev/null) || true
printf '%s\n' "${version_line%%$'\n'*}"
"$out/ginkgo" version
