#!/usr/bin/env bash
# e2e-kubelet.sh
#
# Runs a real kubelet (built from k8s.io/kubernetes at the version pinned in
# e2e/kubelet/go.mod) in standalone mode against a fresh arbor, offline, and
# checks what a node does with static pods. Steps:
#   1. `make build tools` (bin/arbor, bin/crictl) and e2e/kubelet/build.sh
#      (bin/kubelet; minutes when cold, cached by a stamp afterwards);
#   2. a docker-registry on a free loopback port with the fixture images, a
#      registries.conf that sends registry.k8s.io & co. to it, a CNI bridge on
#      a private /24 (no default route, no masquerade);
#   3. arbor on a temporary socket, root and runroot, pause image
#      registry.k8s.io/pause:3.10 (served by the rewrite);
#   4. the kubelet, standalone (no API server), in a private mount namespace
#      (so the host's /var/lib, /var/log and sysctls stay untouched), with
#      cgroupsPerQOS under a cgroup root of its own and its API on loopback;
#   5. checks, each printed as PASS/FAIL:
#        two       a pod with two busybox containers: both Running in
#                  `crictl ps` and in the kubelet's /pods (its own status)
#        stats     the kubelet's /stats/summary (from arbor's
#                  ListContainerStats) has CPU and memory for both
#        liveness  an exec liveness probe (cat /tmp/healthy) succeeds, then
#                  fails once the container removes the file; the kubelet
#                  restarts the container (attempt and restartCount rise)
#        crash     a container that exits 1: attempts rise, the kubelet
#                  reports exit code 1 and restarts
#        evented   with FEATURE_GATES=EventedPLEG=true only: the kubelet
#                  takes arbor's container events and relists on each stop
#        infra     a pod with shareProcessNamespace: its infra process is
#                  killed; arbor reports the sandbox not ready and the
#                  kubelet makes a new one that runs the container again
#        userns    a pod with hostUsers: false: its container's root is
#                  mapped to a host ID the kubelet chose, not 0; Running
#        removal   the manifests are deleted; the kubelet stops and removes
#                  the pods through arbor (`crictl pods` and `ps -a` empty)
#        shutdown  kubelet stopped, arbor exits 0 on SIGTERM, nothing left:
#                  processes, mounts, cgroups, veths, bridge
#   6. the kubelet's error lines, counted by message, and one
#      last line: "e2e-kubelet: PASS (N checks)" or "e2e-kubelet: FAIL (...)".
#
# Environment (all optional):
#   OUT        folder for kubelet.log, arbor.log, pods.json, manifests (default
#              ${TMPDIR:-/tmp}/arbor-e2e-kubelet/<UTC time>)
#   BUILD      0 skips `make build tools` (bin/arbor, bin/crictl must exist);
#              the default under make (the target builds them first)
#   KUBELET    a kubelet binary to use instead of building bin/kubelet
#   LOG_LEVEL  arbor's log level (default info)
#   VERBOSITY  kubelet -v (default 4; 3 or more is needed for the probe check)
#   CRI_TRACE  1 logs every CRI request and response the kubelet makes
#   CGROUPS_PER_QOS  false: no kubepods tree, no cgroup_parent (default true)
#   FEATURE_GATES    kubelet feature gates, NAME=true,NAME=false (for example
#              EventedPLEG=true, which takes container events from arbor)
#   KEEP       1 keeps the temporary folder
# Exit code: 0 when every check passed, 1 when one failed, 2 on a setup error.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$repo/bin
OUT=${OUT:-${TMPDIR:-/tmp}/arbor-e2e-kubelet/$(date -u +%Y%m%dT%H%M%SZ)}
LOG_LEVEL=${LOG_LEVEL:-info}
VERBOSITY=${VERBOSITY:-4}
CGROUPS_PER_QOS=${CGROUPS_PER_QOS:-true}
FEATURE_GATES=${FEATURE_GATES:-}
node=arbor-e2e-node

say() { printf '[e2e-kubelet] %s\n' "$*" >&2; }
die() {
	setup_error=$*
	say "setup: $*"
	exit 2
}
# shellcheck source=lib.sh
source "$here/lib.sh"

tmp="" bridge="" arbor_pid="" registry_pid="" kubelet_pid="" kwork="" cgroot=""
passed=0 failed=() torn_down=0 arbor_code="" setup_error=""

source "$repo/e2e/kubelet/kubelet.sh"
source "$repo/e2e/kubelet/checks.sh"

# --- setup -------------------------------------------------------------------

build() {
	local want=1
	[[ -n ${MAKELEVEL:-} ]] && want=0 # under make, the target's prerequisites built them
	if [[ ${BUILD:-$want} != 0 ]]; then
		say "building arbor and cri-tools"
		make -C "$repo" --no-print-directory build tools >&2 || die "make build tools failed"
	fi
	if [[ -z ${KUBELET:-} ]]; then
		KUBELET=$bin/kubelet
		"$repo/e2e/kubelet/build.sh" "$KUBELET" || die "building the kubelet failed"
	fi
	[[ -x $KUBELET ]] || die "no kubelet at $KUBELET"
}

# --- teardown --------------------------------------------------------------------

# remove_pods removes, through CRI, pods a failed run left behind.
remove_pods() {
	local id
	for id in $("${crictl[@]}" pods -q 2>/dev/null); do
		say "removing leftover pod $id"
		"${crictl[@]}" stopp "$id" >/dev/null 2>&1
		"${crictl[@]}" rmp -f "$id" >/dev/null 2>&1 || say "could not remove pod $id"
	done
}

# stop_arbor sends SIGTERM (KILL after 30 s) and sets arbor_code to arbor's
# exit code.
stop_arbor() {
	kill -TERM "$arbor_pid" 2>/dev/null
	for _ in $(seq 1 300); do
		kill -0 "$arbor_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$arbor_pid" 2>/dev/null && kill -KILL "$arbor_pid" 2>/dev/null
	wait "$arbor_pid" 2>/dev/null
	arbor_code=$?
	arbor_pid=""
}

# leftover_processes prints and kills processes that name the temp folder
# (conmon, kubelet, registry) or whose root is inside it (containers).
leftover_processes() {
	local pid root
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[[ $pid != "$$" ]] || continue
		root=$(readlink "/proc/$pid/root" 2>/dev/null) || continue
		if [[ $root == "$tmp"/* ]] || grep -qsF -- "$tmp/" "/proc/$pid/cmdline"; then
			echo "process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
			kill -KILL "$pid" 2>/dev/null
		fi
	done
}

# leftover_mounts prints and unmounts whatever is mounted under the temp folder.
leftover_mounts() {
	local mnt
	for mnt in $(awk -v t="$tmp/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		echo "mount $mnt"
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	done
}

# leftover_cgroups prints and removes cgroups named after any container or
# pod arbor logged, anywhere, then removes the kubelet's (empty) cgroup tree
# and prints what of it could not be removed.
leftover_cgroups() {
	local ids d
	ids=$(grep -oE '(container_id|pod_sandbox_id)=[0-9a-f]{64}' "$OUT/arbor.log" | cut -d= -f2 | sort -u)
	if [[ -n $ids ]]; then
		for d in $(find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | grep -F "$ids" | sort -r); do
			echo "cgroup $d"
			rmdir "$d" 2>/dev/null
		done
	fi
	for d in $(remove_cgroot); do echo "cgroup $d"; done
}

# leftover_network prints veths still on the bridge, then deletes the bridge.
leftover_network() {
	[[ -n $bridge ]] || return 0
	ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print "veth " $2}'
	ip link del "$bridge" 2>/dev/null
	ip link show "$bridge" >/dev/null 2>&1 && echo "bridge $bridge"
}

# leftovers prints, and removes, what the run left on the host. Empty output
# means a clean host.
leftovers() {
	leftover_processes
	leftover_mounts
	leftover_cgroups
	leftover_network
}

# teardown stops the kubelet, arbor and the registry, checks that nothing is
# left, and removes the temp folder. It runs once (the EXIT trap calls it
# again after a normal run).
teardown() {
	((torn_down)) && return 0
	torn_down=1
	[[ -n $tmp ]] || return 0
	say "stopping the kubelet, arbor and the registry"
	stop_kubelet
	local left
	if [[ -n $arbor_pid ]]; then
		remove_pods
		stop_arbor
		if [[ $arbor_code == 0 ]]; then
			pass shutdown-arbor "arbor exited 0 on SIGTERM"
		else
			fail shutdown-arbor "arbor exit code $arbor_code"
		fi
	fi
	[[ -n $registry_pid ]] && kill -TERM "$registry_pid" 2>/dev/null && wait_gone "$registry_pid"
	left=$(leftovers)
	if [[ -z $left ]]; then
		pass shutdown-clean "no process, mount, cgroup, veth or bridge left"
	else
		fail shutdown-clean "left (now removed): $(tr '\n' ';' <<<"$left")"
	fi
	if [[ ${KEEP:-0} == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}

# cleanup is the EXIT trap: teardown, and the last line after a setup error.
cleanup() {
	local code=$?
	trap - EXIT INT TERM
	teardown
	[[ -n $setup_error ]] && echo "e2e-kubelet: FAIL (setup: $setup_error)"
	exit "$code"
}

# --- report ----------------------------------------------------------------------

# report_kubelet_errors prints the kubelet's error lines, counted by message
# with IDs masked, to stderr and $OUT/kubelet-errors.txt.
report_kubelet_errors() {
	grep -E '^E[0-9]{4} ' "$OUT/kubelet.log" |
		sed -E 's/^E[0-9]{4} [0-9:.]+ +[0-9]+ //; s/[0-9a-f]{64}/<id>/g; s/[0-9a-f-]{36}/<uid>/g' |
		cut -c1-300 | sort | uniq -c | sort -rn >"$OUT/kubelet-errors.txt"
	say "kubelet error lines: $(grep -cE '^E[0-9]{4} ' "$OUT/kubelet.log"), by message in $OUT/kubelet-errors.txt:"
	head -n 15 "$OUT/kubelet-errors.txt" >&2
}

summary() {
	local total=$((passed + ${#failed[@]}))
	say "logs: $OUT"
	if ((${#failed[@]} == 0)); then
		echo "e2e-kubelet: PASS ($total checks)"
		return 0
	fi
	echo "e2e-kubelet: FAIL (${#failed[@]} of $total checks failed: ${failed[*]})"
	return 1
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	[[ $(id -u) == 0 ]] || die "must run as root (kubelet, runc, CNI, mounts)"
	build
	mkdir -p "$OUT"
	OUT=$(cd "$OUT" && pwd)
	# Short: a unix socket path holds at most 107 bytes.
	tmp=$(mktemp -d /tmp/arbor-kubelet-XXXXXX)
	sock=$tmp/arbor.sock
	printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n' "$sock" "$sock" >"$tmp/crictl.yaml"
	crictl=("$bin/crictl" -c "$tmp/crictl.yaml")
	cgroot=/arbor-e2e-kubelet-${tmp##*-}
	start_registry
	write_registries_conf
	write_cni_conf arbor-kubelet arbkl 92
	start_arbor
	write_manifests
	start_kubelet
	check_two
	check_stats
	check_liveness
	check_crash
	check_evented
	check_infra
	check_userns
	check_removal
	kubelet_pods >"$OUT/pods-after.json" 2>/dev/null
	teardown
	report_kubelet_errors
	summary
}

# One line: bash reads a script as it runs, so nothing may follow main.
main "$@"; exit
