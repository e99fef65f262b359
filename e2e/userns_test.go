package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// usernsHostID is where the test pods' IDs start on the host.
const usernsHostID = 200000

func usernsMapping() []*runtimeapi.IDMapping {
	return []*runtimeapi.IDMapping{{ContainerId: 0, HostId: usernsHostID, Length: 65536}}
}

// usernsPod is a pod with its own user namespace, as the kubelet asks for
// one with hostUsers: false.
func (pt *podTest) usernsPod(name string) *runtimeapi.PodSandboxConfig {
	pod := pt.podConfig(name)
	pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{
		Mode: runtimeapi.NamespaceMode_POD, Uids: usernsMapping(), Gids: usernsMapping(),
	}
	return pod
}

// TestUserNamespacePod runs two containers in a pod with its own user
// namespace and checks what their root is and owns: inside it is uid 0,
// on the host it is usernsHostID; the image's files and an ID-mapped
// volume are its own, a plain volume shows its host owners shifted.
func TestUserNamespacePod(t *testing.T) {
	pt := newPodTest(t)
	st, err := pt.cri.Status(pt.ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.GetRuntimeHandlers() {
		if !h.GetFeatures().GetUserNamespaces() {
			t.Fatalf("handler %q does not report user namespaces", h.GetName())
		}
	}

	mapped, plain := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(mapped, "secret"), []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(plain, 0o777); err != nil {
		t.Fatal(err)
	}
	pod := pt.usernsPod("userns")
	podID := pt.runPod(pod)
	cfg := pt.ctrConfig("first", "sleep 3600")
	cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions
	cfg.Mounts = []*runtimeapi.Mount{
		{
			ContainerPath: "/mapped",
			HostPath:      mapped,
			UidMappings:   usernsMapping(),
			GidMappings:   usernsMapping(),
		},
		{ContainerPath: "/plain", HostPath: plain},
	}
	first := pt.createAndStart(podID, pod, cfg)
	second := pt.createAndStart(podID, pod, pt.ctrConfig("second", "sleep 3600"))

	t.Run("inside", func(t *testing.T) {
		if got := strings.Fields(pt.exec(first, "cat", "/proc/self/uid_map")); strings.Join(
			got,
			" ",
		) != fmt.Sprintf(
			"0 %d 65536",
			usernsHostID,
		) {
			t.Errorf("uid_map = %v", got)
		}
		if got := strings.TrimSpace(pt.exec(first, "id", "-u")); got != "0" {
			t.Errorf("id -u = %q", got)
		}
		if got := strings.TrimSpace(pt.exec(first, "hostname")); got != "userns" {
			t.Errorf("hostname = %q", got)
		}
		// sysfs mounts only where the pod's network namespace belongs to
		// its user namespace.
		if got := pt.exec(first, "ls", "/sys/class/net"); !strings.Contains(got, "eth0") {
			t.Errorf("/sys/class/net = %q", got)
		}
	})
	t.Run("host view", func(t *testing.T) {
		pid := pt.pid(first)
		if uid := procUID(t, pid); uid != usernsHostID {
			t.Errorf("container root is uid %d on the host, want %d", uid, usernsHostID)
		}
		self, _ := os.Readlink("/proc/self/ns/user")
		a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
		b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pt.pid(second)))
		if a == self || a != b {
			t.Errorf("user namespaces: host %s, first %s, second %s", self, a, b)
		}
	})
	t.Run("rootfs", func(t *testing.T) {
		if got := strings.Fields(pt.exec(first, "stat", "-c", "%u:%g", "/bin", "/etc")); strings.Join(
			got,
			" ",
		) != "0:0 0:0" {
			t.Errorf("image files owned by %v inside, want 0:0", got)
		}
		pt.exec(first, "sh", "-c", "echo x > /etc/written && chown 1:1 /etc/written")
		if got := strings.TrimSpace(pt.exec(first, "stat", "-c", "%u", "/etc/written")); got != "1" {
			t.Errorf("chown inside: owner %q", got)
		}
	})
	t.Run("ID-mapped volume", func(t *testing.T) {
		if got := pt.exec(first, "cat", "/mapped/secret"); got != "root only" {
			t.Errorf("read %q", got)
		}
		pt.exec(first, "touch", "/mapped/made")
		if uid := fileUID(t, filepath.Join(mapped, "made")); uid != 0 {
			t.Errorf(
				"file made by the pod's root through an ID-mapped volume is uid %d on the host, want 0",
				uid,
			)
		}
	})
	t.Run("plain volume", func(t *testing.T) {
		pt.exec(first, "touch", "/plain/made")
		if uid := fileUID(t, filepath.Join(plain, "made")); uid != usernsHostID {
			t.Errorf(
				"file made by the pod's root through a plain volume is uid %d on the host, want %d",
				uid,
				usernsHostID,
			)
		}
		if got := strings.TrimSpace(pt.exec(first, "stat", "-c", "%u", "/mapped/secret")); got != "0" {
			t.Errorf("mapped file owner %q inside, want 0", got)
		}
	})
	t.Run("shared PID namespace", func(t *testing.T) {
		shared := pt.usernsPod("userns-shared")
		shared.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		sharedID := pt.runPod(shared)
		c := pt.ctrConfig("ps", "sleep 3600")
		c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		id := pt.createAndStart(sharedID, shared, c)
		// PID 1 is the pause process, running as the image's user 65535
		// inside the pod's user namespace.
		if got := strings.Fields(pt.exec(id, "stat", "-c", "%u", "/proc/1")); len(got) != 1 ||
			got[0] != "65535" {
			t.Errorf("PID 1 runs as %v inside, want 65535", got)
		}
		if got := strings.Fields(pt.exec(id, "cat", "/proc/self/uid_map")); strings.Join(
			got,
			" ",
		) != fmt.Sprintf(
			"0 %d 65536",
			usernsHostID,
		) {
			t.Errorf("uid_map = %v", got)
		}
	})
	t.Run("restart", func(t *testing.T) {
		if err := pt.d.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := pt.d.Wait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		pt.restart(t)
		if got := strings.TrimSpace(pt.exec(first, "id", "-u")); got != "0" {
			t.Errorf("after a restart, id -u = %q", got)
		}
		second := pt.createAndStart(podID, pod, pt.ctrConfig("after-restart", "sleep 3600"))
		if got := strings.Fields(pt.exec(second, "cat", "/proc/self/uid_map")); strings.Join(
			got,
			" ",
		) != fmt.Sprintf(
			"0 %d 65536",
			usernsHostID,
		) {
			t.Errorf("after a restart, a new container's uid_map = %v", got)
		}
	})
	t.Run("missing ID-mapped host path", func(t *testing.T) {
		c := pt.ctrConfig("missing", "true")
		c.Mounts = []*runtimeapi.Mount{
			{
				ContainerPath: "/m",
				HostPath:      "/no/such/folder",
				UidMappings:   usernsMapping(),
				GidMappings:   usernsMapping(),
			},
		}
		_, err := pt.cri.CreateContainer(
			pt.ctx,
			&runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c, SandboxConfig: pod},
		)
		if status.Code(err) != codes.InvalidArgument ||
			!strings.Contains(err.Error(), "mounts[0].host_path") {
			t.Errorf("want InvalidArgument naming mounts[0].host_path, got %v", err)
		}
	})
	t.Run("mappings without a pod user namespace", func(t *testing.T) {
		hostPod := pt.podConfig("hostusers")
		hostID := pt.runPod(hostPod)
		c := pt.ctrConfig("idmapped", "true")
		c.Mounts = []*runtimeapi.Mount{
			{
				ContainerPath: "/m",
				HostPath:      mapped,
				UidMappings:   usernsMapping(),
				GidMappings:   usernsMapping(),
			},
		}
		_, err := pt.cri.CreateContainer(
			pt.ctx,
			&runtimeapi.CreateContainerRequest{PodSandboxId: hostID, Config: c, SandboxConfig: hostPod},
		)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "mounts[0]") {
			t.Errorf("want InvalidArgument naming the mount, got %v", err)
		}
	})
	pt.finish()
	if left, _ := filepath.Glob(filepath.Join(pt.d.Dir, "*", "idmap", "*")); len(left) > 0 {
		t.Errorf("staged ID-mapped mounts left: %v", left)
	}
}

// TestUserNamespaceBadInput checks that user namespace requests the
// runtime cannot honour are refused up front and leave nothing.
func TestUserNamespaceBadInput(t *testing.T) {
	pt := newPodTest(t)
	cases := []struct {
		name, want string
		edit       func(*runtimeapi.NamespaceOption)
	}{
		{
			"mode CONTAINER",
			"CONTAINER is not supported",
			func(o *runtimeapi.NamespaceOption) { o.UsernsOptions.Mode = runtimeapi.NamespaceMode_CONTAINER },
		},
		{
			"mode TARGET",
			"TARGET is not supported",
			func(o *runtimeapi.NamespaceOption) { o.UsernsOptions.Mode = runtimeapi.NamespaceMode_TARGET },
		},
		{"two mappings", "exactly one mapping", func(o *runtimeapi.NamespaceOption) {
			o.UsernsOptions.Uids = append(
				o.UsernsOptions.Uids,
				&runtimeapi.IDMapping{ContainerId: 65536, HostId: 1000, Length: 10},
			)
		}},
		{
			"root not mapped",
			"container ID 0",
			func(o *runtimeapi.NamespaceOption) { o.UsernsOptions.Gids[0].ContainerId = 1 },
		},
		{
			"no mapping",
			"exactly one mapping",
			func(o *runtimeapi.NamespaceOption) { o.UsernsOptions.Uids = nil },
		},
		{
			"host network",
			"node's network",
			func(o *runtimeapi.NamespaceOption) { o.Network = runtimeapi.NamespaceMode_NODE },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := pt.usernsPod(strings.ReplaceAll(tc.name, " ", "-"))
			tc.edit(pod.Linux.SecurityContext.NamespaceOptions)
			_, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "userns_options") {
				t.Errorf("want InvalidArgument naming userns_options and %q, got %v", tc.want, err)
			}
		})
	}
	pod := pt.usernsPod("other")
	podID := pt.runPod(pod)
	c := pt.ctrConfig("differs", "true")
	c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{
		Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}, Gids: usernsMapping(),
	}
	_, err := pt.cri.CreateContainer(
		pt.ctx,
		&runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c, SandboxConfig: pod},
	)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "differs from the pod's") {
		t.Errorf("a container with other mappings than its pod: want InvalidArgument, got %v", err)
	}
	if out := crictl(t, pt.d, "pods", "-q"); len(strings.Fields(out)) != 1 {
		t.Errorf("refused pods were kept: %q", out)
	}
	pt.finish()
}

// pid is a running container's process ID on the host.
func (pt *podTest) pid(id string) int {
	pt.t.Helper()
	var info struct {
		Pid int `json:"pid"`
	}
	resp, err := pt.cri.ContainerStatus(
		pt.ctx,
		&runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true},
	)
	if err != nil {
		pt.t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		pt.t.Fatalf("no pid in verbose status: %v", err)
	}
	return info.Pid
}

// procUID is the real uid of a host process.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			var uid int
			fmt.Sscan(f[1], &uid)
			return uid
		}
	}
	t.Fatalf("no Uid line for pid %d", pid)
	return -1
}

func fileUID(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}
