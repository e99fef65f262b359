package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nriPlugin is an NRI plugin for the test: it records events, adjusts
// every container (an environment variable, a tmpfs mount, a memory
// limit) and refuses a container named "refused".
type nriPlugin struct {
	mu     sync.Mutex
	events []string // "Event id"
	synced []string // pod and container IDs of the synchronization
	ready  chan struct{}
}

func (p *nriPlugin) record(event, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, event+" "+id)
}

func (p *nriPlugin) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func (p *nriPlugin) Synchronize(
	_ context.Context,
	pods []*api.PodSandbox,
	ctrs []*api.Container,
) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pod := range pods {
		p.synced = append(p.synced, pod.GetId())
	}
	for _, c := range ctrs {
		p.synced = append(p.synced, c.GetId())
	}
	close(p.ready)
	return nil, nil
}

func (p *nriPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox", pod.GetId())
	return nil
}

func (p *nriPlugin) UpdatePodSandbox(
	_ context.Context,
	pod *api.PodSandbox,
	_, res *api.LinuxResources,
) error {
	p.record(fmt.Sprintf("UpdatePodSandbox(memory=%d)", res.GetMemory().GetLimit().GetValue()), pod.GetId())
	return nil
}

func (p *nriPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox", pod.GetId())
	return nil
}

func (p *nriPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox", pod.GetId())
	return nil
}

func (p *nriPlugin) CreateContainer(
	_ context.Context,
	_ *api.PodSandbox,
	c *api.Container,
) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	if c.GetName() == "refused" {
		return nil, nil, errors.New("the test plugin refuses this container")
	}
	p.record("CreateContainer", c.GetId())
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("ARBOR_NRI", "adjusted")
	adj.AddMount(
		&api.Mount{
			Destination: "/nri-tmp",
			Type:        "tmpfs",
			Source:      "tmpfs",
			Options:     []string{"nosuid", "size=1m"},
		},
	)
	adj.SetLinuxMemoryLimit(96 << 20)
	return adj, nil, nil
}

func (p *nriPlugin) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer", c.GetId())
	return nil
}

func (p *nriPlugin) StopContainer(
	_ context.Context,
	_ *api.PodSandbox,
	c *api.Container,
) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer", c.GetId())
	return nil, nil
}

func (p *nriPlugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer", c.GetId())
	return nil
}

// connectNRIPlugin connects p to the daemon's NRI socket and waits until
// it is synchronized.
func connectNRIPlugin(t testing.TB, socket string, p *nriPlugin) {
	t.Helper()
	s, err := stub.New(
		p,
		stub.WithSocketPath(socket),
		stub.WithPluginName("arbor-e2e"),
		stub.WithPluginIdx("50"),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatalf("connecting the NRI plugin: %v", err)
	}
	t.Cleanup(func() { cancel(); s.Stop(); s.Wait() })
	select {
	case <-p.ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the NRI plugin was not synchronized")
	}
}

// TestNRIPlugin runs the daemon with NRI and a real plugin on its socket:
// the plugin is synchronized with what exists, its adjustments reach the
// container, its refusal fails a create and leaves nothing, and it sees
// each event once and in order, a container's own exit included.
func TestNRIPlugin(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "nri.sock")
	pt := newPodTest(
		t,
		"--nri-socket-path",
		socket,
		"--nri-plugin-dir",
		filepath.Join(dir, "plugins"),
		"--nri-plugin-config-dir",
		filepath.Join(dir, "conf"),
	)

	before := pt.podConfig("nri-before")
	beforeID := pt.runPod(before)
	beforeCtr := pt.createAndStart(beforeID, before, pt.ctrConfig("c", "sleep 3600"))
	p := &nriPlugin{ready: make(chan struct{})}
	connectNRIPlugin(t, socket, p)
	p.mu.Lock()
	synced := slices.Clone(p.synced)
	p.mu.Unlock()
	if !slices.Contains(synced, beforeID) || !slices.Contains(synced, beforeCtr) {
		t.Errorf("synchronization %v lacks the pod %s or its container %s", synced, beforeID, beforeCtr)
	}

	pod := pt.podConfig("nri")
	podID := pt.runPod(pod)
	adjusted := pt.createAndStart(podID, pod, pt.ctrConfig("adjusted", "sleep 3600"))
	t.Run("adjustments", func(t *testing.T) {
		if env := pt.exec(adjusted, "env"); !strings.Contains(env, "ARBOR_NRI=adjusted") {
			t.Errorf("environment lacks the plugin's variable:\n%s", env)
		}
		if mounts := pt.exec(adjusted, "cat", "/proc/mounts"); !strings.Contains(mounts, " /nri-tmp tmpfs ") {
			t.Errorf("no tmpfs at /nri-tmp:\n%s", mounts)
		}
		if got := readCgroup(t, "memory", pt.cgroupPath(adjusted), "memory.limit_in_bytes"); got != fmt.Sprint(
			96<<20,
		) {
			t.Errorf("memory limit %s, want the plugin's %d", got, 96<<20)
		}
	})
	t.Run("refusal", func(t *testing.T) {
		_, err := pt.cri.CreateContainer(
			pt.ctx,
			&runtimeapi.CreateContainerRequest{
				PodSandboxId:  podID,
				Config:        pt.ctrConfig("refused", "true"),
				SandboxConfig: pod,
			},
		)
		if err == nil || !strings.Contains(err.Error(), "refuses this container") {
			t.Fatalf("want the plugin's refusal, got %v", err)
		}
		ctrs, _ := pt.cri.ListContainers(
			pt.ctx,
			&runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}},
		)
		if len(ctrs.GetContainers()) != 1 {
			t.Errorf("a refused container is listed: %v", ctrs.GetContainers())
		}
		bundles, _ := os.ReadDir(filepath.Join(pt.d.Dir, "run", "containers"))
		if len(bundles) != 2 {
			t.Errorf("bundles %d, want 2: a refused container left one", len(bundles))
		}
		// The name is free again.
		pt.createAndStart(podID, pod, pt.ctrConfig("refused-retry", "sleep 3600"))
	})
	t.Run("own exit", func(t *testing.T) {
		id := pt.createAndStart(podID, pod, pt.ctrConfig("quits", "exit 3"))
		pt.waitExit(id)
		waitFor(t, "StopContainer for a container that exited on its own", func() bool {
			return slices.Contains(p.seen(), "StopContainer "+id)
		})
		if _, err := pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"CreateContainer " + id,
			"StartContainer " + id,
			"StopContainer " + id,
			"RemoveContainer " + id,
		}
		if got := only(p.seen(), id); !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
	})
	t.Run("pod update and stop once", func(t *testing.T) {
		if _, err := pt.cri.UpdatePodSandboxResources(pt.ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
			PodSandboxId: podID, Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20},
		}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
		waitFor(
			t,
			"RemovePodSandbox",
			func() bool { return slices.Contains(p.seen(), "RemovePodSandbox "+podID) },
		)
		want := []string{
			"RunPodSandbox " + podID,
			fmt.Sprintf("UpdatePodSandbox(memory=%d) %s", 256<<20, podID),
			"StopPodSandbox " + podID,
			"RemovePodSandbox " + podID,
		}
		if got := only(p.seen(), podID); !slices.Equal(got, want) {
			t.Errorf("pod events %v, want %v", got, want)
		}
	})
	pt.finish()
	if _, err := os.Stat(socket); err == nil {
		t.Error("the NRI socket is left after the daemon stopped")
	}
}

// only keeps the events about id.
func only(events []string, id string) []string {
	var out []string
	for _, e := range events {
		if strings.HasSuffix(e, " "+id) {
			out = append(out, e)
		}
	}
	return out
}
