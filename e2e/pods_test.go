package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// TestCrictlLifecycle drives a pod and a container through their whole
// life with crictl, as an operator would.
func TestCrictlLifecycle(t *testing.T) {
	pt := newPodTest(t)
	dir := t.TempDir()
	pod := pt.podConfig("life")
	podFile := writeConfig(t, dir, "pod.json", pod)
	ctrFile := writeConfig(t, dir, "ctr.json", pt.ctrConfig("hello", "echo hello from $(hostname); sleep 3600"))

	podID := crictl(t, pt.d, "runp", podFile)
	ctrID := crictl(t, pt.d, "create", podID, ctrFile, podFile)
	crictl(t, pt.d, "start", ctrID)
	if out := crictl(t, pt.d, "ps", "-q", "--state", "running"); !strings.Contains(out, ctrID) {
		t.Fatalf("crictl ps does not list the running container:\n%s", out)
	}
	var inspect struct {
		Status struct {
			State string `json:"state"`
		} `json:"status"`
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(crictl(t, pt.d, "inspect", ctrID)), &inspect); err != nil {
		t.Fatal(err)
	}
	if inspect.Status.State != "CONTAINER_RUNNING" || inspect.Info.Pid <= 0 {
		t.Fatalf("inspect: %+v", inspect)
	}
	// ContainerStatus's image_ref is the digested reference the kubelet
	// shows as imageID; image_id is what PullImage returned. In a list,
	// image_ref stays the image ID, as containerd has it, which is what the
	// kubelet's image garbage collector compares with ListImages.
	img := pt.env.Catalog.MustImage(fixture.RefBusybox)
	digested := pt.env.Catalog.Registry + "/" + img.Repository + "@" + img.Digest
	if st := pt.status(ctrID); st.GetImageRef() != digested || st.GetImageId() != imageID(img) {
		t.Errorf("ContainerStatus image_ref %q image_id %q, want %q and %q", st.GetImageRef(), st.GetImageId(), digested, imageID(img))
	}
	listed, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{Id: ctrID}})
	if err != nil || len(listed.GetContainers()) != 1 {
		t.Fatalf("ListContainers %s: %v %v", ctrID, listed, err)
	}
	if c := listed.GetContainers()[0]; c.GetImageRef() != imageID(img) || c.GetImageId() != imageID(img) {
		t.Errorf("ListContainers image_ref %q image_id %q, want the image ID %s for both", c.GetImageRef(), c.GetImageId(), imageID(img))
	}
	waitFor(t, "the container's log line", func() bool {
		out, _ := pt.d.Crictl("logs", ctrID)
		return strings.Contains(out, "hello from life")
	})
	raw, err := os.ReadFile(filepath.Join(pod.LogDirectory, "hello.log"))
	if err != nil || !strings.Contains(string(raw), " stdout F hello from life") {
		t.Fatalf("log file is not in CRI format: %v\n%s", err, raw)
	}
	crictl(t, pt.d, "stop", "--timeout", "2", ctrID)
	crictl(t, pt.d, "rm", ctrID)
	crictl(t, pt.d, "stopp", podID)
	crictl(t, pt.d, "rmp", podID)
	// The kubelet stops and removes more than once; crictl checks first,
	// so ask the runtime directly.
	if _, err := pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Errorf("stopping a removed pod must succeed: %v", err)
	}
	if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Errorf("removing a removed pod must succeed: %v", err)
	}
	if out := crictl(t, pt.d, "pods", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("pods left: %s", out)
	}
	pt.finish()
}

func TestUsers(t *testing.T) {
	pt := newPodTest(t)
	pt.pull(fixture.RefUserUID)
	pt.pull(fixture.RefUserName)
	pod := pt.podConfig("users")
	podID := pt.runPod(pod)
	cases := []struct {
		name, image string
		runAs       *int64
		want        string
	}{
		{name: "numeric", image: fixture.RefUserUID, want: "uid=1002"},
		{name: "named", image: fixture.RefUserName, want: "uid=33(www-data) gid=33(www-data)"},
		{name: "override", image: fixture.RefUserName, runAs: ptr(int64(4242)), want: "uid=4242"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pt.ctrConfig(tc.name, "sleep 3600")
			cfg.Image.Image = pt.env.Image(tc.image)
			if tc.runAs != nil {
				cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *tc.runAs}
			}
			id := pt.createAndStart(podID, pod, cfg)
			if out := pt.exec(id, "id"); !strings.Contains(out, tc.want) {
				t.Errorf("id = %q, want %q", out, tc.want)
			}
			if u := pt.status(id).GetUser().GetLinux(); tc.runAs != nil && u.GetUid() != *tc.runAs {
				t.Errorf("status user %+v", u)
			}
		})
	}
	pt.finish()
}

func TestResourcesInCgroups(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("limits")
	podID := pt.runPod(pod)
	cfg := pt.ctrConfig("limited", "sleep 3600")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{
		MemoryLimitInBytes: 64 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000,
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}, // sent by every kubelet
	}
	id := pt.createAndStart(podID, pod, cfg)
	cg := pt.cgroupPath(id)
	checks := []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", fmt.Sprint(64 << 20)},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
	}
	for _, c := range checks {
		if got := readCgroup(t, c.ctrl, cg, c.file); got != c.want {
			t.Errorf("%s/%s = %s, want %s", c.ctrl, c.file, got, c.want)
		}
	}
	if !strings.HasPrefix(cg, pod.Linux.CgroupParent+"/") {
		t.Errorf("cgroup %s is not under the pod's parent %s", cg, pod.Linux.CgroupParent)
	}
	_, err := pt.cri.UpdateContainerResources(pt.ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuShares: 256}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readCgroup(t, "memory", cg, "memory.limit_in_bytes"); got != fmt.Sprint(96<<20) {
		t.Errorf("after update: memory limit %s", got)
	}
	if got := readCgroup(t, "cpu", cg, "cpu.shares"); got != "256" {
		t.Errorf("after update: cpu shares %s", got)
	}
	pt.finish()
}

func TestReadOnlyBindMount(t *testing.T) {
	pt := newPodTest(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "data"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := pt.podConfig("mounts")
	podID := pt.runPod(pod)
	cfg := pt.ctrConfig("reader", "sleep 3600")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: host, Readonly: true}}
	id := pt.createAndStart(podID, pod, cfg)
	if out := pt.exec(id, "cat", "/data/data"); out != "from the host" {
		t.Errorf("read %q", out)
	}
	resp, err := pt.cri.ExecSync(pt.ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"touch", "/data/new"}, Timeout: 10})
	if err != nil || resp.GetExitCode() == 0 {
		t.Errorf("writing a read-only mount must fail: %v %d", err, resp.GetExitCode())
	}
	if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
		t.Error("the write reached the host")
	}

	missing := pt.ctrConfig("missing", "true")
	missing.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x", HostPath: "/no/such/folder"}}
	_, err = pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: missing, SandboxConfig: pod})
	if err == nil || !strings.Contains(err.Error(), "host_path") {
		t.Errorf("a missing mount source must be refused naming the field: %v", err)
	}
	pt.finish()
}

func TestHostNetwork(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("hostnet")
	pod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	podID := pt.runPod(pod)
	id := pt.createAndStart(podID, pod, pt.ctrConfig("c", "sleep 3600"))
	host, _ := os.Hostname()
	if out := strings.TrimSpace(pt.exec(id, "hostname")); out != host {
		t.Errorf("hostname in a host-network pod = %q, want %q", out, host)
	}
	// The same network namespace as the host (this test process)...
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(pt.exec(id, "readlink", "/proc/self/ns/net")); out != hostNS {
		t.Errorf("network namespace in a host-network pod = %q, the host's is %q", out, hostNS)
	}
	// ...so the host's interfaces are there: each one that exists both
	// before and after the look (other tests may add and remove some).
	before := netDevNames(t, readFile(t, "/proc/net/dev"))
	inPod := netDevNames(t, pt.exec(id, "cat", "/proc/net/dev"))
	after := netDevNames(t, readFile(t, "/proc/net/dev"))
	for name := range before {
		if after[name] && !inPod[name] {
			t.Errorf("the host's interface %s is not visible in the pod; it sees %v", name, inPod)
		}
	}
	pt.finish()
}

// netDevNames returns the interface names of a /proc/net/dev text.
func netDevNames(t *testing.T, text string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			names[strings.TrimSpace(name)] = true
		}
	}
	if !names["lo"] {
		t.Fatalf("no lo in /proc/net/dev:\n%s", text)
	}
	return names
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPortMappingAndLocalhost(t *testing.T) {
	pt := newPodTest(t)
	port := freePort(t)
	pod := pt.podConfig("web")
	pod.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 8080, HostPort: int32(port)}}
	podID := pt.runPod(pod)
	pt.createAndStart(podID, pod, pt.ctrConfig("server",
		"mkdir -p /www && echo served-by-pod > /www/index.html && httpd -f -p 8080 -h /www"))
	client := pt.createAndStart(podID, pod, pt.ctrConfig("client", "sleep 3600"))

	waitFor(t, "the pod's web server through the host port", func() bool {
		body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port))
		return err == nil && strings.Contains(body, "served-by-pod")
	})
	if out := pt.exec(client, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"); !strings.Contains(out, "served-by-pod") {
		t.Errorf("the second container cannot reach the first over localhost: %q", out)
	}
	st, err := pt.cri.PodSandboxStatus(pt.ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil || net.ParseIP(st.GetStatus().GetNetwork().GetIp()) == nil {
		t.Fatalf("pod IP in status: %v %v", err, st)
	}
	pt.finish()
	if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Error("the host port still forwards after the pod was removed")
	}
}

func TestExitCodesAndOOM(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("exits")
	podID := pt.runPod(pod)
	cases := []struct {
		name, script string
		memory       int64
		code         int32
		reason       string
	}{
		{name: "success", script: "true", code: 0, reason: "Completed"},
		{name: "failure", script: "exit 3", code: 3, reason: "Error"},
		{name: "oom", script: "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", memory: 32 << 20, code: 137, reason: "OOMKilled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pt.ctrConfig(tc.name, tc.script)
			if tc.memory > 0 {
				cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: tc.memory}
			}
			st := pt.waitExit(pt.createAndStart(podID, pod, cfg))
			if st.GetExitCode() != tc.code || st.GetReason() != tc.reason {
				t.Errorf("exit %d reason %q, want %d %q", st.GetExitCode(), st.GetReason(), tc.code, tc.reason)
			}
			if st.GetFinishedAt() < st.GetStartedAt() || st.GetStartedAt() == 0 {
				t.Errorf("times: started %d finished %d", st.GetStartedAt(), st.GetFinishedAt())
			}
		})
	}
	pt.finish()
}

// TestCyclesLeaveNothing runs 100 create/start/stop/remove cycles and
// compares mounts, processes, cgroup folders, storage containers and exit
// files before and after.
func TestCyclesLeaveNothing(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("cycles")
	podID := pt.runPod(pod)
	before := snapshot(t, pt)
	for i := range 100 {
		id := pt.createAndStart(podID, pod, pt.ctrConfig(fmt.Sprintf("c%d", i), "sleep 3600"))
		if _, err := pt.cri.StopContainer(pt.ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
			t.Fatal(err)
		}
		if _, err := pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if after := snapshot(t, pt); after != before {
		t.Errorf("100 cycles left things behind:\nbefore %s\nafter  %s", before, after)
	}
	pt.finish()
}

// snapshot counts what a container leaves on the host while it exists.
func snapshot(t *testing.T, pt *podTest) string {
	t.Helper()
	count := func(pattern string) int {
		m, _ := filepath.Glob(pattern)
		n := 0
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				n++
			}
		}
		return n
	}
	return fmt.Sprintf("mounts=%d processes=%d cgroups=%d storage=%d exits=%d bundles=%d",
		len(harness.MountsUnder(pt.d.Dir)), len(harness.ProcessesMatching(pt.d.Dir)),
		cgroupFolders(pt.cgroup), count(filepath.Join(pt.d.Root, "storage/overlay-containers/*")),
		len(glob(filepath.Join(pt.d.RunRoot, "exits/*"))), count(filepath.Join(pt.d.RunRoot, "containers/*")))
}

func TestBadInput(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("bad")
	podID := pt.runPod(pod)
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"pod without metadata", func() error {
			_, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}})
			return err
		}, "InvalidArgument"},
		{"unknown runtime handler", func() error {
			_, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: pt.podConfig("other"), RuntimeHandler: "kata"})
			return err
		}, "InvalidArgument"},
		{"same pod name twice", func() error {
			_, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
			return err
		}, "AlreadyExists"},
		{"unknown pod", func() error {
			_, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "feedbeef", Config: pt.ctrConfig("x", "true"), SandboxConfig: pod})
			return err
		}, "NotFound"},
		{"log path outside the pod folder", func() error {
			cfg := pt.ctrConfig("escape", "true")
			cfg.LogPath = "../../etc/evil.log"
			_, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			return err
		}, "InvalidArgument"},
		{"start a missing container", func() error {
			_, err := pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: "feedbeef"})
			return err
		}, "NotFound"},
		{"bad seccomp profile", func() error {
			cfg := pt.ctrConfig("seccomp", "true")
			cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/no/such/profile.json"}
			_, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			return err
		}, "InvalidArgument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want %s, got %v", tc.want, err)
			}
		})
	}
	ctrs, _ := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{})
	if len(ctrs.GetContainers()) != 0 {
		t.Errorf("a refused call left containers: %v", ctrs.GetContainers())
	}
	pt.finish()
}

func writeConfig(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func crictl(t *testing.T, d *harness.Daemon, args ...string) string {
	t.Helper()
	out, err := d.Crictl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func ptr[T any](v T) *T { return &v }

func glob(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

// cgroupFolders counts the folders below parent in every hierarchy.
func cgroupFolders(parent string) int {
	n := 0
	for _, root := range glob("/sys/fs/cgroup/*") {
		_ = filepath.WalkDir(filepath.Join(root, parent), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				n++
			}
			return nil
		})
	}
	return n
}

// TestSharedCgroupParentRemoved: the first pod makes a parent folder that
// a second pod then shares. Removing the first pod cannot remove the
// folder; removing the second, last, pod must.
func TestSharedCgroupParentRemoved(t *testing.T) {
	pt := newPodTest(t)
	first, second := pt.podConfig("first"), pt.podConfig("second")
	shared := pt.cgroup + "/shared"
	first.Linux.CgroupParent, second.Linux.CgroupParent = shared+"/first", shared+"/second"
	firstID, secondID := pt.runPod(first), pt.runPod(second)
	for _, id := range []string{firstID, secondID} {
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("removing pod %s: %v", id, err)
		}
	}
	if left := glob("/sys/fs/cgroup/*" + shared); len(left) > 0 {
		t.Errorf("the shared parent outlived every pod in it: %v", left)
	}
	pt.finish()
}
