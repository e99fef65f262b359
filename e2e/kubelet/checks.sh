# checks.sh: sourced by e2e/scripts/e2e-kubelet.sh; the checks on the static
# pods in e2e/kubelet/manifests, each through crictl (arbor's view) and the
# kubelet's /pods (the kubelet's view). Each check calls pass or fail once.
#
# Needs from the caller: say, $crictl (array), $node, $manifests, $OUT,
# kubelet_pods (kubelet.sh). Fills: passed, failed.

pass() {
	passed=$((passed + 1))
	say "PASS $1: $2"
}

fail() {
	failed+=("$1")
	say "FAIL $1: $2"
}

# wait_until SECONDS CMD...: runs CMD every 2 s until it succeeds (0) or
# SECONDS have passed (1).
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 2
	done
}

# ctrs POD prints crictl's JSON list of every container (any state) of the
# static pod POD (named POD-$node by the kubelet).
ctrs() {
	"${crictl[@]}" ps -a -o json --label "io.kubernetes.pod.name=$1-$node"
}

# running_count POD prints how many of POD's containers crictl shows Running.
running_count() {
	ctrs "$1" | jq '[.containers[] | select(.state == "CONTAINER_RUNNING")] | length'
}

# max_attempt POD NAME prints the highest attempt of container NAME in POD.
max_attempt() {
	ctrs "$1" | jq --arg n "$2" '[.containers[] | select(.metadata.name == $n) | .metadata.attempt // 0] | max // -1'
}

# kpod POD prints the kubelet's view of POD (from /pods) as JSON.
kpod() {
	kubelet_pods | jq -e --arg n "$1-$node" '.items[] | select(.metadata.name == $n)'
}

# kpod_jq POD FILTER: true when jq -e FILTER holds for the kubelet's POD.
kpod_jq() {
	kpod "$1" | jq -e "$2" >/dev/null
}

# probe_logged RESULT: the kubelet logged a liveness probe RESULT
# ("Probe succeeded" or "Probe failed") for the liveness pod.
probe_logged() {
	grep -F "\"$1\"" "$OUT/kubelet.log" | grep -F 'probeType="Liveness"' |
		grep -qF "pod=\"default/liveness-$node\""
}

write_manifests() {
	manifests=$tmp/manifests
	mkdir -p "$manifests"
	cp "$repo/e2e/kubelet/manifests/"*.yaml "$manifests/" || die "copying the manifests"
	cp -r "$manifests" "$OUT/manifests"
}

check_two() {
	if wait_until 240 test_eq 2 running_count two; then
		pass two "crictl shows both containers of two-$node Running"
	else
		fail two "crictl: $(ctrs two | jq -c '[.containers[] | {name: .metadata.name, state}]')"
	fi
	local ok='.status.phase == "Running" and (.status.podIP // "") != "" and
		([.status.containerStatuses[]? | select(.state.running != null and .ready)] | length) == 2'
	if wait_until 60 kpod_jq two "$ok"; then
		pass two-kubelet "the kubelet reports two-$node Running, IP $(kpod two | jq -r .status.podIP), both containers running and ready"
	else
		fail two-kubelet "kubelet status: $(kpod two | jq -c '.status | {phase, podIP, containerStatuses}')"
	fi
}

# check_stats: the kubelet's /stats/summary (built from arbor's
# ListContainerStats and ImageFsInfo) has CPU and memory for both containers
# of the two pod.
check_stats() {
	local ok='[.pods[] | select(.podRef.name == $n) | .containers[] |
		select((.cpu.usageCoreNanoSeconds // 0) > 0 and (.memory.workingSetBytes // 0) > 0)] | length == 2'
	if wait_until 60 stats_jq "$ok"; then
		pass stats-kubelet "the kubelet's /stats/summary has CPU and memory for both containers of two-$node"
	else
		fail stats-kubelet "summary of two-$node: $(kubelet_stats | jq -c --arg n "two-$node" '[.pods[] | select(.podRef.name == $n) | .containers[] | {name, cpu, memory}]')"
	fi
}

# stats_jq FILTER: true when jq -e FILTER (with $n the two pod's name) holds
# for the kubelet's /stats/summary.
stats_jq() {
	kubelet_stats | jq -e --arg n "two-$node" "$1" >/dev/null
}

check_liveness() {
	if wait_until 120 probe_logged "Probe succeeded"; then
		pass liveness-ok "the exec probe (cat /tmp/healthy) succeeded while the file existed"
	else
		fail liveness-ok "no successful liveness probe in the kubelet log (VERBOSITY must be 3 or more)"
	fi
	if wait_until 120 test_ge 1 max_attempt liveness probed && probe_logged "Probe failed"; then
		pass liveness-restart "the probe failed after the file was removed; the kubelet restarted the container (attempt $(max_attempt liveness probed))"
	else
		fail liveness-restart "attempt $(max_attempt liveness probed); failed probe logged: $(probe_logged 'Probe failed' && echo yes || echo no)"
	fi
	if wait_until 60 kpod_jq liveness '.status.containerStatuses[0].restartCount >= 1'; then
		pass liveness-kubelet "the kubelet counts $(kpod liveness | jq .status.containerStatuses[0].restartCount) restart(s)"
	else
		fail liveness-kubelet "kubelet status: $(kpod liveness | jq -c .status.containerStatuses)"
	fi
}

check_crash() {
	if wait_until 180 test_ge 2 max_attempt crash crasher; then
		pass crash "attempts of the crashing container rise (attempt $(max_attempt crash crasher))"
	else
		fail crash "attempt $(max_attempt crash crasher): $(ctrs crash | jq -c '[.containers[] | {attempt: .metadata.attempt, state}]')"
	fi
	local exited code
	exited=$(ctrs crash | jq -r '[.containers[] | select(.state == "CONTAINER_EXITED")][0].id // empty')
	code=$([[ -n $exited ]] && "${crictl[@]}" inspect -o json "$exited" | jq .status.exitCode)
	if [[ $code == 1 ]]; then
		pass crash-exit "arbor reports exit code 1 for an exited attempt"
	else
		fail crash-exit "exit code of an exited attempt: '${code}'"
	fi
	local ok='.status.containerStatuses[0] | .restartCount >= 2 and
		((.lastState.terminated.exitCode // .state.terminated.exitCode) == 1)'
	if wait_until 60 kpod_jq crash "$ok"; then
		pass crash-kubelet "the kubelet counts $(kpod crash | jq .status.containerStatuses[0].restartCount) restarts, exit code 1, state $(kpod crash | jq -c '.status.containerStatuses[0].state | keys')"
	else
		fail crash-kubelet "kubelet status: $(kpod crash | jq -c .status.containerStatuses)"
	fi
}

# check_evented runs when the kubelet has EventedPLEG: arbor's container
# events reach it (stopped events make it relist the pod at once) and none
# lacks the pod's status, and the kubelet never gave up on the stream.
check_evented() {
	[[ ,$FEATURE_GATES, == *,EventedPLEG=true,* ]] || return 0
	local relists bad
	relists=$(grep -cF '"Evented PLEG: requested pod relist after container termination"' "$OUT/kubelet.log")
	bad=$(grep -cE 'Evented PLEG: (received ContainerEventResponse with nil|disabling container-termination)' "$OUT/kubelet.log")
	if ((relists > 0 && bad == 0)); then
		pass evented "the kubelet relisted $relists time(s) on arbor's container stopped events; no event lacked the pod's status"
	else
		fail evented "relists on stopped events: $relists; events without a pod status or a stream given up: $bad"
	fi
}

# userns_exec CMD...: runs CMD in the userns pod's running container.
userns_exec() {
	local id
	id=$(ctrs userns | jq -r '[.containers[] | select(.state == "CONTAINER_RUNNING")][0].id // empty')
	[[ -n $id ]] && "${crictl[@]}" exec "$id" "$@"
}

# userns_map prints /proc/self/uid_map of the userns pod's container, on one
# line.
userns_map() {
	userns_exec cat /proc/self/uid_map | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'
}

# mapped_root: the userns pod's root is mapped to a host ID other than 0.
mapped_root() {
	local m
	m=$(userns_map) && [[ $m =~ ^0\ ([0-9]+)\ ([0-9]+)$ ]] && ((BASH_REMATCH[1] > 0))
}

check_userns() {
	if wait_until 120 mapped_root; then
		pass userns "hostUsers: false runs the container in its own user namespace (uid_map: $(userns_map))"
	else
		fail userns "uid_map: '$(userns_map)'; containers: $(ctrs userns | jq -c '[.containers[] | {name: .metadata.name, state}]')"
	fi
	# The kubelet asks for every volume (here /etc/hosts and the termination
	# log) to be ID-mapped: the node's root-owned files are the pod root's.
	local owners
	owners=$(userns_exec stat -c %u /etc/hosts /dev/termination-log | tr '\n' ' ')
	if [[ $owners == "0 0 " ]]; then
		pass userns-mounts "the kubelet's mounts are ID-mapped: /etc/hosts and /dev/termination-log are owned by the pod's root"
	else
		fail userns-mounts "owners inside of /etc/hosts and /dev/termination-log: '$owners' (65534 means not ID-mapped)"
	fi
	if wait_until 60 kpod_jq userns '.status.phase == "Running"'; then
		pass userns-kubelet "the kubelet reports userns-$node Running"
	else
		fail userns-kubelet "kubelet status: $(kpod userns | jq -c '.status | {phase, conditions, containerStatuses}')"
	fi
}

# all_gone: the kubelet has no pods and arbor has no pods or containers.
all_gone() {
	[[ $(kubelet_pods | jq '.items | length') == 0 ]] &&
		[[ -z $("${crictl[@]}" pods -q) ]] && [[ -z $("${crictl[@]}" ps -a -q) ]]
}

# ready_pod POD prints the ID of POD's ready sandbox.
ready_pod() {
	"${crictl[@]}" pods -q --state ready --label "io.kubernetes.pod.name=$1-$node" | head -1
}

# check_infra kills the infra process of the pod that shares its PID
# namespace: arbor reports that sandbox not ready, and the kubelet makes a
# new one and runs the container in it again.
check_infra() {
	local old pid new
	if ! wait_until 120 test_eq 1 running_count shared; then
		fail infra "the shared-PID pod never ran: $(ctrs shared | jq -c '[.containers[] | {name: .metadata.name, state}]')"
		return
	fi
	old=$(ready_pod shared)
	pid=$("${crictl[@]}" inspectp -o json "$old" | jq -r '.info.pid // empty')
	if [[ -z $pid || $pid == 0 ]] || ! kill -KILL "$pid"; then
		fail infra "no infra process to kill in pod $old (pid '$pid')"
		return
	fi
	new_ready() {
		new=$(ready_pod shared)
		[[ -n $new && $new != "$old" ]] && [[ $(running_count shared) == 1 ]]
	}
	if wait_until 120 new_ready; then
		pass infra "killing the infra process (pid $pid) made sandbox ${old:0:12} not ready; the kubelet made ${new:0:12} and runs the container again"
	else
		fail infra "after killing pid $pid: sandboxes $("${crictl[@]}" pods -o json --label "io.kubernetes.pod.name=shared-$node" | jq -c '[.items[] | {id: .id[:12], state, attempt: .metadata.attempt}]')"
	fi
}

check_removal() {
	kubelet_pods >"$OUT/pods.json" 2>/dev/null
	rm -f "$manifests"/*.yaml
	say "manifests removed; waiting for the kubelet to stop and remove the pods"
	local start=$SECONDS
	if wait_until 300 all_gone; then
		pass removal "the kubelet stopped and removed every pod and container through arbor in $((SECONDS - start))s"
	else
		fail removal "left: kubelet $(kubelet_pods | jq -c '[.items[].metadata.name]'), pods $("${crictl[@]}" pods -q | wc -l), containers $("${crictl[@]}" ps -a -q | wc -l)"
	fi
}

test_eq() { [[ $("${@:2}") == "$1" ]]; }
test_ge() {
	local v
	v=$("${@:2}") && [[ $v =~ ^[0-9]+$ ]] && ((v >= $1))
}
