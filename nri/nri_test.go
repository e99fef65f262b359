package nri

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
)

func TestNilManager(t *testing.T) {
	var m *Manager
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	m.BlockSync()()
	if err := m.RunPodSandbox(t.Context(), &api.PodSandbox{}); err != nil {
		t.Fatal(err)
	}
	resp, err := m.CreateContainer(t.Context(), &api.PodSandbox{}, &api.Container{})
	if err != nil || resp.GetAdjust() != nil {
		t.Fatalf("nil manager create: %v %v", resp, err)
	}
	m.Stop()
}

// TestServeRestarts starts and stops the service twice on one socket, as
// the supervisor does after a failure, and checks that the socket is
// served while it runs and gone after.
func TestServeRestarts(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Config{SocketPath: dir + "/nri.sock", PluginDir: dir + "/plugins", PluginConfigDir: dir + "/conf"},
		emptyRuntime{}, "arbor-test", "0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Serve(ctx) }()
		waitSocket(t, dir+"/nri.sock", true)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		waitSocket(t, dir+"/nri.sock", false)
	}
}

type emptyRuntime struct{}

func (emptyRuntime) Snapshot(context.Context) ([]*api.PodSandbox, []*api.Container) { return nil, nil }
func (emptyRuntime) UpdateContainers(context.Context, []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	return nil, nil
}

// waitSocket waits (up to 10 s, for a loaded machine) until a unix socket
// at path accepts (up) or is gone.
func waitSocket(t *testing.T, path string, up bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if c != nil {
			c.Close()
		}
		if (err == nil) == up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket %s: want up=%v, dial error %v", path, up, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
