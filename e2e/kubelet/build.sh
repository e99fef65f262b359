#!/usr/bin/env bash
# build.sh OUTPUT
#
# Builds a real kubelet (k8s.io/kubernetes/cmd/kubelet at the version that
# go.mod in this folder pins) into OUTPUT, through the Go module proxy, no git
# checkout needed. This folder is its own Go module: go.mod requires
# k8s.io/kubernetes and replaces each k8s.io staging module (which upstream
# points at ./staging/src/...) with its published v0.X.Y tag; go.sum is the
# resolved set of a build that worked. The build is read-only on both files.
#
# Cache: OUTPUT.stamp records the hash of go.mod + go.sum + the Go version;
# when OUTPUT exists and the stamp matches, nothing is rebuilt (FORCE=1
# rebuilds). A cold build takes about 10 minutes on 2 cores; Go's build cache
# makes a forced rebuild much faster.
#
# Environment: GO (default go), BUILD_PARALLEL (go build -p, default nproc).
set -euo pipefail

out=$(realpath -m "${1:?usage: build.sh OUTPUT}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GO=${GO:-go}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

say() { printf '[build-kubelet] %s\n' "$*" >&2; }

version=$(sed -n 's/^require k8s.io\/kubernetes \(v1\.[^ ]*\)$/\1/p' "$here/go.mod")
[[ -n $version ]] || { say "no 'require k8s.io/kubernetes v1.X.Y' line in $here/go.mod"; exit 2; }
stamp=$(cat "$here/go.mod" "$here/go.sum" <("$GO" version) | sha256sum | cut -c1-16)

if [[ ${FORCE:-0} != 1 && -x $out && -f $out.stamp && $(cat "$out.stamp") == "$stamp" ]]; then
	say "cached: $out ($("$out" --version))"
	exit 0
fi

# version stamping, as kubernetes' hack/lib/version.sh does
minor=$(cut -d. -f2 <<<"$version")
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

mkdir -p "$(dirname "$out")"
say "building kubelet $version -> $out (minutes when cold)"
start=$SECONDS
(cd "$here" && "$GO" build -p "${BUILD_PARALLEL:-$(nproc)}" -trimpath -ldflags "$ldflags" \
	-o "$out.tmp" k8s.io/kubernetes/cmd/kubelet)
mv "$out.tmp" "$out"
echo "$stamp" >"$out.stamp"
say "built $("$out" --version) in $((SECONDS - start))s"
