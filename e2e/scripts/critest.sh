#!/usr/bin/env bash
# critest.sh [extra critest args...]
#
# Runs the CRI conformance suite (critest from cri-tools) against a fresh
# arbor, offline, and cleans up everything it started. Steps:
#   1. `make build tools`: bin/arbor, bin/crictl, bin/critest, bin/ginkgo;
#   2. a docker-registry on a free loopback port, filled with the fixture
#      images (go run ./e2e/images/cmd/testimages);
#   3. a registries.conf that sends registry.k8s.io, k8s.gcr.io, gcr.io,
#      public.ecr.aws and docker.io to that registry (prefix/location, so a
#      pull never falls back to the real host), and a CNI bridge network on a
#      private /24 with no default route and no masquerade;
#   4. arbor on a temporary socket, root and runroot;
#   5. critest in "mirror" mode (no -registry-prefix), bounded by TIMEOUT;
#   6. per-spec results in OUT, then the last line
#        critest: N passed, N failed, N skipped
#   7. cleanup: pods removed through CRI, arbor stopped with SIGTERM, any
#      leftover container, conmon and mount under the temp folder removed,
#      the registry stopped, the bridge deleted, the temp folder removed.
#
# Environment (all optional):
#   OUT        output folder (default ${TMPDIR:-/tmp}/arbor-critest/<UTC time>):
#              critest.log, report.json, specs.txt, failures.txt, arbor.log
#   TIMEOUT    ginkgo suite timeout (default 40m)
#   LOG_LEVEL  arbor's log level (default info)
#   BUILD      0 skips `make build tools` (the binaries must exist)
#   KEEP       1 keeps the temp folder (configs, registry log) for debugging
#   SKIP       ginkgo skip regexp (default: none; every spec runs)
#   EXPECTED_FAIL  extended regexp of specs known to fail here (default: the
#              one spec that cannot pass offline, "public image with digest":
#              it needs an upstream manifest whose digest cannot be rebuilt).
#              They still count as failed in the summary line.
# Extra arguments go to critest, e.g. -ginkgo.focus='Image Manager'.
# Exit code: 0 when every spec passed, was skipped, or is an expected
# failure; critest's own code otherwise.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$repo/bin
TIMEOUT=${TIMEOUT:-40m}
LOG_LEVEL=${LOG_LEVEL:-info}
SKIP=${SKIP-}
EXPECTED_FAIL=${EXPECTED_FAIL-public image with digest should be pulled and removed}
OUT=${OUT:-${TMPDIR:-/tmp}/arbor-critest/$(date -u +%Y%m%dT%H%M%SZ)}

say() { printf '[critest] %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ $(id -u) == 0 ]] || die "must run as root (critest mounts, runc, CNI)"

tmp=""
bridge=""
arbor_pid=""
registry_pid=""
critest_pid=""
shm_before=""

# --- setup steps -----------------------------------------------------------

build() {
	[[ ${BUILD:-1} == 0 ]] && return 0
	say "building arbor and cri-tools"
	make -C "$repo" --no-print-directory build tools >&2 || die "make build tools failed"
}

# --- the run -----------------------------------------------------------------

run_critest() {
	local args=(-runtime-endpoint "unix://$sock" -image-endpoint "unix://$sock"
		-ginkgo.no-color -ginkgo.v -ginkgo.timeout "$TIMEOUT"
		-ginkgo.json-report "$OUT/report.json")
	[[ -n $SKIP ]] && args+=("-ginkgo.skip=$SKIP")
	say "running critest (timeout $TIMEOUT); log $OUT/critest.log"
	{ printf '#' && printf ' %q' "$bin/critest" "${args[@]}" "$@" && echo; } >"$OUT/critest.log"
	local start=$SECONDS
	# In the background, so that a signal to this script is handled at once.
	(cd "$OUT" && exec "$bin/critest" "${args[@]}" "$@") >>"$OUT/critest.log" 2>&1 &
	critest_pid=$!
	wait "$critest_pid"
	rc=$?
	critest_pid=""
	echo "# exit code $rc after $((SECONDS - start))s" >>"$OUT/critest.log"
	say "critest took $((SECONDS - start))s"
}

write_results() {
	[[ -s $OUT/report.json ]] || return 0
	jq -r '.[].SpecReports[]? | select(.LeafNodeType=="It") |
		[(.State|ascii_upcase), ((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" "))] | @tsv' \
		"$OUT/report.json" | sed 's/^PASSED/PASS/; s/^FAILED/FAIL/; s/^SKIPPED/SKIP/' | sort -k2 >"$OUT/specs.txt"
	jq -r '.[].SpecReports[]? | select(.LeafNodeType=="It" and (.State=="failed" or .State=="panicked" or .State=="timedout" or .State=="interrupted")) |
		"\((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" "))\n    -> \(.Failure.Message // "" | split("\n") | map(select(length>0)) | .[0:3] | join(" | "))"' \
		"$OUT/report.json" >"$OUT/failures.txt"
}

print_summary() {
	local sum p=0 f=0 s=0
	sum=$(grep -E '[0-9]+ Passed \| [0-9]+ Failed \| [0-9]+ Pending \| [0-9]+ Skipped' "$OUT/critest.log" | tail -1)
	if [[ -n $sum ]]; then
		p=$(sed -E 's/.*[^0-9]([0-9]+) Passed.*/\1/' <<<"$sum")
		f=$(sed -E 's/.*[^0-9]([0-9]+) Failed.*/\1/' <<<"$sum")
		s=$(sed -E 's/.*[^0-9]([0-9]+) Skipped.*/\1/' <<<"$sum")
	elif [[ -s $OUT/specs.txt ]]; then
		p=$(grep -c '^PASS' "$OUT/specs.txt")
		f=$(grep -cvE '^(PASS|SKIP|PENDING)' "$OUT/specs.txt")
		s=$(grep -c '^SKIP' "$OUT/specs.txt")
	fi
	say "results: $OUT (critest.log, specs.txt, failures.txt, arbor.log)"
	echo "critest: $p passed, $f failed, $s skipped"
}

# --- cleanup -------------------------------------------------------------------

remove_pods() {
	local ids
	ids=$("${crictl[@]}" pods -q 2>/dev/null) || return 0
	for id in $ids; do
		"${crictl[@]}" stopp "$id" >/dev/null 2>&1
		"${crictl[@]}" rmp -f "$id" >/dev/null 2>&1 || say "could not remove pod $id"
	done
}

stop_arbor() {
	[[ -n $arbor_pid ]] || return 0
	kill -TERM "$arbor_pid" 2>/dev/null
	for _ in $(seq 1 300); do
		kill -0 "$arbor_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$arbor_pid" 2>/dev/null; then
		say "arbor still running 30s after SIGTERM; killing it"
		kill -KILL "$arbor_pid" 2>/dev/null
	fi
	wait "$arbor_pid" 2>/dev/null
	arbor_pid=""
}

# remove_leftovers kills containers and conmons that name the temp folder
# (by pid), then unmounts whatever is still mounted under it.
remove_leftovers() {
	local runc_root=$tmp/run/oci/.runtime/runc id pid mnt
	if [[ -d $runc_root ]]; then
		for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
			say "removing leftover container $id"
			runc --root "$runc_root" delete --force "$id" >/dev/null 2>&1
		done
	fi
	for pid in $(grep -lsF -- "$tmp/" /proc/[0-9]*/cmdline | cut -d/ -f3); do
		[[ -e /proc/$pid && $pid != "$$" ]] || continue
		say "killing leftover process $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-80))"
		kill -KILL "$pid" 2>/dev/null
	done
	for mnt in $(awk -v t="$tmp/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || say "could not unmount $mnt"
	done
}

# remove_new_shm removes SysV shm segments of 1 MiB, unattached, created
# during the run: critest's HostIpc specs make one with ipcmk and leave it.
remove_new_shm() {
	local id
	for id in $(ipcs -m 2>/dev/null | awk '$5 == 1048576 && $6 == 0 {print $2}'); do
		grep -qx "$id" <<<"$shm_before" || ipcrm -m "$id" 2>/dev/null
	done
}

teardown() {
	[[ -n $tmp ]] || return 0
	say "cleaning up"
	if [[ -n $critest_pid ]]; then
		kill -TERM "$critest_pid" 2>/dev/null # ginkgo runs the specs' clean-up
		wait_gone "$critest_pid" 300
	fi
	[[ -n $arbor_pid ]] && remove_pods
	stop_arbor
	[[ -n $registry_pid ]] && kill -TERM "$registry_pid" 2>/dev/null && wait_gone "$registry_pid"
	remove_leftovers
	[[ -n $bridge ]] && ip link del "$bridge" 2>/dev/null
	remove_new_shm
	if [[ ${KEEP:-0} == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
	tmp=""
}

cleanup() {
	local code=$?
	trap - EXIT INT TERM
	teardown
	exit "$code"
}

main() {
	build
	mkdir -p "$OUT"
	OUT=$(cd "$OUT" && pwd)
	# Short: a unix socket path holds at most 107 bytes.
	tmp=$(mktemp -d /tmp/arbor-critest-XXXXXX)
	sock=$tmp/arbor.sock
	crictl=("$bin/crictl" --timeout 60s -r "unix://$sock" -i "unix://$sock")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	shm_before=$(ipcs -m 2>/dev/null | awk '$1 ~ /^0x/ {print $2}')
	start_registry
	write_registries_conf
	write_cni_conf arbor-critest arbct 91
	start_arbor
	rc=0
	run_critest "$@"
	write_results
	teardown
	print_summary
	if ((rc != 0)) && only_expected_failures; then
		say "every failing spec is a known offline failure (EXPECTED_FAIL)"
		rc=0
	fi
	return "$rc"
}

# only_expected_failures: true when critest ran and each failed spec
# matches EXPECTED_FAIL.
only_expected_failures() {
	[[ -n $EXPECTED_FAIL && -s $OUT/specs.txt ]] || return 1
	grep -q '^PASS' "$OUT/specs.txt" || return 1
	! grep -vE '^(PASS|SKIP|PENDING)' "$OUT/specs.txt" | grep -vqE -- "$EXPECTED_FAIL"
}

# One line: bash reads a script as it runs, so nothing may follow main.
main "$@"; exit
