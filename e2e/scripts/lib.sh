# lib.sh: the set-up the critest and kubelet scripts share. Source it after
# defining say and die; it reads here, repo, bin, tmp, sock, OUT, LOG_LEVEL
# and the crictl array, and sets registry, registry_pid, bridge and
# arbor_pid.

public_registries=(registry.k8s.io k8s.gcr.io gcr.io public.ecr.aws docker.io)

free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# start_registry starts Debian's docker-registry on a free loopback port and
# pushes the fixture images to it.
start_registry() {
	local port
	port=$(free_port) || die "no free loopback port"
	registry=127.0.0.1:$port
	"$here/start-registry.sh" "$registry" "$tmp/registry/data" || die "registry did not start"
	registry_pid=$(cat "$tmp/registry/registry.pid")
	say "pushing the fixture images to $registry"
	(cd "$repo" && go run ./e2e/images/cmd/testimages -registry "$registry") >"$tmp/images.txt" ||
		die "pushing the test images failed"
	tail -n 1 "$tmp/images.txt" >&2
}

# write_registries_conf sends the public registries to the local one
# (prefix/location, never a mirror), so a pull never reaches the real host.
write_registries_conf() {
	mkdir -p "$tmp/registries.d"
	{
		printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
		for host in "${public_registries[@]}" "$registry"; do
			printf '\n[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$registry"
		done
	} >"$tmp/registries.conf"
}

# write_cni_conf NAME BRIDGE_PREFIX OCTET: a bridge of its own on a private
# 10.OCTET.x.0/24; no ipMasq and no default route, so pods reach nothing
# past this machine.
write_cni_conf() {
	bridge=$2$(head -c 2 /dev/urandom | od -An -tx1 | tr -d ' \n')
	local subnet=10.$3.$((20 + RANDOM % 200)).0/24
	mkdir -p "$tmp/cni"
	cat >"$tmp/cni/10-$1.conflist" <<EOF
{"cniVersion":"1.0.0","name":"$1","plugins":[
{"type":"bridge","bridge":"$bridge","isGateway":true,"ipMasq":false,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"$subnet"}]],"dataDir":"$tmp/ipam"}},
{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}
EOF
}

# start_arbor runs arbor on the temporary socket and folders (NRI's socket
# and plugin folders included) and waits until it serves; the array
# ARBOR_ARGS, when set, adds flags.
start_arbor() {
	: >"$tmp/arbor.conf"
	"$bin/arbor" --config "$tmp/arbor.conf" --config-dir "$tmp/conf.d" \
		--listen "$sock" --root "$tmp/root" --runroot "$tmp/run" --log-level "$LOG_LEVEL" \
		--registries-conf "$tmp/registries.conf" --registries-conf-dir "$tmp/registries.d" \
		--cni-config-dir "$tmp/cni" --pause-image registry.k8s.io/pause:3.10 \
		--nri-socket-path "$tmp/nri.sock" --nri-plugin-dir "$tmp/nri-plugins" \
		--nri-plugin-config-dir "$tmp/nri-conf" \
		--short-name-mode disabled ${ARBOR_ARGS[@]+"${ARBOR_ARGS[@]}"} >"$OUT/arbor.log" 2>&1 &
	arbor_pid=$!
	for _ in $(seq 1 200); do
		kill -0 "$arbor_pid" 2>/dev/null || die "arbor exited at start; see $OUT/arbor.log"
		"${crictl[@]}" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "arbor did not serve $sock within 20s"
}

# wait_gone PID [TENTHS]: waits up to TENTHS/10 s (default 5 s) for PID to
# exit, then kills it.
wait_gone() {
	for _ in $(seq 1 "${2:-50}"); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
}
