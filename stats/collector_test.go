package stats

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// dirLayers finds each container's writable layer at root/<id>.
type dirLayers struct{ root string }

func (d dirLayers) WritableLayer(id string) (string, string, error) {
	dir := filepath.Join(d.root, id)
	if _, err := os.Stat(dir); err != nil {
		return "", "", err
	}
	return dir, d.root, nil
}

func setUsage(t *testing.T, l Layout, rel string, ns uint64) {
	t.Helper()
	writeFiles(t, filepath.Join(l.Root, "cpuacct", rel), map[string]string{"cpuacct.usage": strconv.FormatUint(ns, 10)})
}

func TestCPURate(t *testing.T) {
	l := fakeV1(t, "c1", map[string]string{"cpuacct.usage": "0", "cpuacct.stat": "user 0\nsystem 0\n"})
	clk := &clock{now: time.Unix(1000, 0)}
	c := NewCollector(Options{Layout: l, Now: clk.Now}, discardLog())
	steps := []struct {
		name    string
		advance time.Duration
		usage   uint64
		want    int64 // -1: no rate
	}{
		{name: "first sample has no rate", usage: 1e9, want: -1},
		{name: "half a core over 10s", advance: 10 * time.Second, usage: 6e9, want: 5e8},
		{name: "a call within the window repeats the rate", advance: 100 * time.Millisecond, usage: 7e9, want: 5e8},
		{name: "two cores over 2s since the kept sample", advance: 1900 * time.Millisecond, usage: 10e9, want: 2e9},
		{name: "a recreated cgroup starts over", advance: 10 * time.Second, usage: 5, want: -1},
		{name: "and rates again after", advance: 10 * time.Second, usage: 5 + 1e9, want: 1e8},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Add(st.advance)
			setUsage(t, l, "c1", st.usage)
			s, err := c.Container(context.Background(), ContainerTarget{ID: "c1", CgroupPath: "/c1"})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case st.want < 0 && s.NanoCores != nil:
				t.Fatalf("rate %d, want none", *s.NanoCores)
			case st.want >= 0 && (s.NanoCores == nil || *s.NanoCores != uint64(st.want)):
				t.Fatalf("rate %v, want %d", s.NanoCores, st.want)
			}
		})
	}
}

func TestContainerWithoutCgroup(t *testing.T) {
	l := fakeV1(t, "c1", map[string]string{"cpuacct.usage": "1"})
	c := NewCollector(Options{Layout: l}, discardLog())
	s, err := c.Container(context.Background(), ContainerTarget{ID: "gone", CgroupPath: "/gone"})
	if err != nil || s.Cgroup != nil || s.NanoCores != nil {
		t.Fatalf("a container without a cgroup has no counters: %+v, %v", s, err)
	}
	writeFiles(t, filepath.Join(l.Root, "cpuacct", "bad"), map[string]string{"cpuacct.usage": "x"})
	if _, err := c.Container(context.Background(), ContainerTarget{ID: "bad", CgroupPath: "/bad"}); err == nil {
		t.Fatal("a garbled cgroup must be an error")
	}
}

func TestLayerCache(t *testing.T) {
	layers := t.TempDir()
	writeFiles(t, filepath.Join(layers, "c1"), map[string]string{"a": "hello"})
	clk := &clock{now: time.Unix(1000, 0)}
	l := fakeV1(t, "c1", map[string]string{"cpuacct.usage": "1"})
	c := NewCollector(Options{Layout: l, Layers: dirLayers{layers}, FsInterval: time.Minute, Now: clk.Now}, discardLog())
	ctx := context.Background()
	read := func() *DiskUsage {
		t.Helper()
		s, err := c.Container(ctx, ContainerTarget{ID: "c1", CgroupPath: "/c1"})
		if err != nil {
			t.Fatal(err)
		}
		return s.Layer
	}
	first := read()
	if first == nil || first.Inodes != 2 || first.Bytes == 0 || first.Mountpoint != layers ||
		first.Capacity == 0 || first.InodesFree == 0 || first.InodesFree > first.InodesTotal {
		t.Fatalf("first reading measures at once: %+v", first)
	}
	writeFiles(t, filepath.Join(layers, "c1"), map[string]string{"b": "more", "sub/c": "x"})
	if got := read(); got.Inodes != 2 {
		t.Fatalf("a cached reading is served until the refresh: %+v", got)
	}
	c.Refresh(ctx)
	if got := read(); got.Inodes != 5 {
		t.Fatalf("after a refresh the new files count: %+v", got)
	}
	clk.Add(4 * time.Minute)
	c.Refresh(ctx)
	if n := len(c.cachedLayers()); n != 0 || len(c.cpu) != 0 {
		t.Fatalf("a layer and CPU sample not asked for in three intervals must be dropped, %d layers and %d samples cached", n, len(c.cpu))
	}
	read()
	c.Forget("c1")
	if n := len(c.cachedLayers()); n != 0 {
		t.Fatalf("Forget must drop the layer, %d cached", n)
	}
	s, err := c.Container(ctx, ContainerTarget{ID: "nolayer"})
	if err != nil || s.Layer != nil {
		t.Fatalf("an unknown layer has no usage: %+v, %v", s.Layer, err)
	}
}

func TestServeStops(t *testing.T) {
	c := NewCollector(Options{Layout: Layout{Root: t.TempDir()}, FsInterval: time.Millisecond}, discardLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v at cancel", err)
	}
}

func TestPodSumsContainersWithoutParent(t *testing.T) {
	l := fakeV1(t, "c1", map[string]string{"cpuacct.usage": "100"})
	writeFiles(t, filepath.Join(l.Root, "cpuacct", "c2"), map[string]string{"cpuacct.usage": "23"})
	writeFiles(t, filepath.Join(l.Root, "memory", "c2"), map[string]string{"memory.usage_in_bytes": "5"})
	c := NewCollector(Options{Layout: l}, discardLog())
	p, err := c.Pod(context.Background(), PodTarget{ID: "p", Containers: []ContainerTarget{
		{ID: "c1", CgroupPath: "/c1"}, {ID: "c2", CgroupPath: "/c2"}, {ID: "c3", CgroupPath: "/gone"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Cgroup == nil || p.Cgroup.CPU.UsageNs != 123 || p.Cgroup.Memory.Usage != 10000005 || len(p.Containers) != 3 {
		t.Fatalf("pod %+v", p)
	}
	if p.Network != nil {
		t.Fatal("a pod without namespace or process has no network stats")
	}
	p, err = c.Pod(context.Background(), PodTarget{ID: "p", CgroupPath: "/c2"})
	if err != nil || p.Cgroup.CPU.UsageNs != 23 {
		t.Fatalf("a pod with a cgroup parent reads it: %+v, %v", p.Cgroup, err)
	}
}

func TestUsageCountsHardLinksOnce(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a": string(make([]byte, 8192)), "d/b": "x"})
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "d", "a-link")); err != nil {
		t.Fatal(err)
	}
	u, err := Usage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.Inodes != 4 || u.Bytes < 8192 {
		t.Fatalf("usage %+v: want 4 inodes (root, a, d, b) and at least 8 KiB", u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Usage(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled walk must stop: %v", err)
	}
	if _, err := Usage(context.Background(), filepath.Join(dir, "none")); err == nil {
		t.Fatal("a missing folder must be an error")
	}
}
