# kubelet.sh: sourced by e2e/scripts/e2e-kubelet.sh; runs a real kubelet in
# standalone mode (no API server, static pods only) against a CRI socket.
#
# Needs from the caller: say, die, free_port, $tmp (temp folder), $sock (CRI
# socket), $OUT (logs), $node (node name), $cgroot (cgroup root, used when
# CGROUPS_PER_QOS=true), $VERBOSITY, $KUBELET (binary), $FEATURE_GATES
# (NAME=bool,...; may be empty).
# Sets: kubelet_pid, kubelet_port, kwork (the kubelet's folder, $tmp/kubelet),
# manifests (the static pod folder).
#
# What this host needs from a kubelet: failCgroupV1 false (1.35+ refuses cgroup
# v1 otherwise), the cgroupfs driver, oomScoreAdj 0 (root lacks
# CAP_SYS_RESOURCE), no iptables chains, and a private mount namespace in
# which /var/lib, /var/log and the six kernel tunables it insists on are its
# own, so nothing on the host changes.

# kubelet_config writes the KubeletConfiguration to $kwork/config.yaml.
kubelet_config() {
	local healthz=$1 nofile cgroups gates="" gate
	nofile=$(ulimit -Hn)
	[[ $nofile == unlimited ]] && nofile=1000000
	if [[ $CGROUPS_PER_QOS == true ]]; then
		cgroups="cgroupsPerQOS: true
cgroupRoot: \"$cgroot\"
enforceNodeAllocatable: [\"pods\"]"
	else
		cgroups="cgroupsPerQOS: false
enforceNodeAllocatable: []"
	fi
	if [[ -n $FEATURE_GATES ]]; then
		gates="featureGates:"
		for gate in ${FEATURE_GATES//,/ }; do
			gates+=$'\n'"  ${gate%%=*}: ${gate#*=}"
		done
	fi
	cat >"$kwork/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: "$manifests"
fileCheckFrequency: 2s
syncFrequency: 10s
containerRuntimeEndpoint: "unix://$sock"
imageServiceEndpoint: "unix://$sock"
runtimeRequestTimeout: 2m
podLogsDir: "$kwork/pod-logs"
cgroupDriver: cgroupfs
$cgroups
$gates
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
maxOpenFiles: $nofile
protectKernelDefaults: false
makeIPTablesUtilChains: false
volumePluginDir: "$kwork/volume-plugins"
resolvConf: "/etc/resolv.conf"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
address: 127.0.0.1
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
EOF
}

# make_cgroot creates the kubelet's cgroup root in every v1 hierarchy (it
# must exist before the kubelet starts), cpuset filled from the parent.
make_cgroot() {
	[[ $CGROUPS_PER_QOS == true ]] || return 0
	local d
	for d in /sys/fs/cgroup/*/; do
		[[ $d == */unified/ || ! -f $d/cgroup.procs ]] && continue
		mkdir -p "$d${cgroot#/}" || die "creating cgroup $d${cgroot#/}"
		if [[ -f $d/cpuset.cpus ]]; then
			cat "$d/cpuset.cpus" >"$d${cgroot#/}/cpuset.cpus"
			cat "$d/cpuset.mems" >"$d${cgroot#/}/cpuset.mems"
		fi
	done
}

# remove_cgroot removes the kubelet's cgroup tree, deepest first; what cannot
# be removed (a process still in it) is printed.
remove_cgroot() {
	[[ $CGROUPS_PER_QOS == true && -n $cgroot ]] || return 0
	local d
	for d in /sys/fs/cgroup/*/"${cgroot#/}"; do
		[[ -d $d ]] || continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		[[ -d $d ]] && echo "$d"
	done
}

# isolation_script prints the shell run in the kubelet's mount namespace
# before it execs the kubelet.
isolation_script() {
	local kv k v f binds=""
	for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
		kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
		k=${kv%%=*} v=${kv#*=}
		[[ -f /proc/sys/$k && $(cat "/proc/sys/$k") != "$v" ]] || continue
		f=$kwork/ns/sysctl-${k//\//.}
		echo "$v" >"$f"
		binds+="mount --bind '$f' '/proc/sys/$k' && "
	done
	echo "mount --make-rslave /proc && mount --make-slave / && $binds" \
		"mount --bind '$kwork/var-log' /var/log && mount --bind '$kwork/var-lib' /var/lib && exec \"\$@\""
}

# start_kubelet starts the kubelet and waits until its healthz answers.
start_kubelet() {
	kwork=$tmp/kubelet
	mkdir -p "$kwork"/{root,pod-logs,pki,volume-plugins,var-log/containers,var-lib/kubelet/device-plugins,ns}
	local healthz
	healthz=$(free_port) || die "no free loopback port"
	kubelet_port=$(free_port) || die "no free loopback port"
	[[ $kubelet_port == "$healthz" ]] && die "port clash, run again"
	kubelet_config "$healthz"
	make_cgroot
	# The root dir is a shared mount in the host namespace, so that mounts the
	# kubelet makes under it (volumes) reach arbor's namespace.
	mount --bind "$kwork/root" "$kwork/root" && mount --make-rshared "$kwork/root" ||
		die "making $kwork/root a shared mount"
	local args=(--config="$kwork/config.yaml" --root-dir="$kwork/root" --cert-dir="$kwork/pki"
		--hostname-override="$node" --v="$VERBOSITY")
	[[ ${CRI_TRACE:-0} == 1 ]] && args+=(--vmodule=remote_runtime=10,remote_image=10)
	say "starting kubelet $("$KUBELET" --version 2>/dev/null | cut -d' ' -f2) (log $OUT/kubelet.log)"
	setsid unshare --mount --propagation unchanged -- /bin/sh -c "$(isolation_script)" kubelet \
		"$KUBELET" "${args[@]}" >"$OUT/kubelet.log" 2>&1 </dev/null &
	kubelet_pid=$!
	for _ in $(seq 1 120); do
		kill -0 "$kubelet_pid" 2>/dev/null || die "kubelet exited at start (see $OUT/kubelet.log): $(grep -E '^[EF][0-9]{4}' "$OUT/kubelet.log" | tail -n 2)"
		curl -fsS -m 2 "http://127.0.0.1:$healthz/healthz" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "kubelet healthz did not answer within 60s"
}

# kubelet_pods prints the kubelet's own view of its pods (GET /pods: the pod
# manager's pods with the status manager's status for static pods).
kubelet_pods() {
	curl -fsSk -m 10 "https://127.0.0.1:$kubelet_port/pods"
}

# kubelet_stats prints the kubelet's /stats/summary.
kubelet_stats() {
	curl -fsSk -m 20 "https://127.0.0.1:$kubelet_port/stats/summary"
}

# stop_kubelet sends SIGTERM (SIGKILL after 30 s) and undoes the root dir's
# mounts. Stopping the kubelet leaves its pods to the runtime.
stop_kubelet() {
	[[ -n $kubelet_pid ]] || return 0
	kill -TERM "$kubelet_pid" 2>/dev/null
	wait_gone "$kubelet_pid" 300
	wait "$kubelet_pid" 2>/dev/null
	kubelet_pid=""
	if grep -qF " $kwork/root" /proc/self/mountinfo; then
		umount -R "$kwork/root" 2>/dev/null || umount -R -l "$kwork/root" 2>/dev/null
	fi
}
