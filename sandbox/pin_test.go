package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/internal/nsfile"
)

// pinTestNetNS pins a fresh network namespace at dir/net with the same
// pinning PinNamespaces uses and removes it when the test ends.
func pinTestNetNS(t *testing.T, dir string) string {
	t.Helper()
	paths, err := pinNew(dir, []nsKind{kindNet}, func() error { return nil })
	if err != nil {
		t.Fatalf("pinning test netns: %v", err)
	}
	t.Cleanup(func() {
		if err := UnpinNamespaces(Namespaces{Dir: dir}); err != nil {
			t.Errorf("removing test netns: %v", err)
		}
	})
	return paths["net"]
}

func TestPinNamespacesIPCUTSNet(t *testing.T) {
	requireRoot(t)
	nsDir := t.TempDir()
	hostName, _ := os.Hostname()
	ns, err := PinNamespaces(context.Background(), Options{ID: "pod-a", NsDir: nsDir, Hostname: "arbor-pod-a"})
	if err != nil {
		t.Fatalf("PinNamespaces: %v", err)
	}
	t.Cleanup(func() { UnpinNamespaces(ns) })
	dir := filepath.Join(nsDir, "pod-a")
	want := Namespaces{Dir: dir, IPC: filepath.Join(dir, "ipc"), UTS: filepath.Join(dir, "uts"), Net: filepath.Join(dir, "net")}
	if ns != want {
		t.Fatalf("namespaces = %+v, want %+v", ns, want)
	}
	if got := run(t, "nsenter", "--ipc="+ns.IPC, "--uts="+ns.UTS, "hostname"); got != "arbor-pod-a" {
		t.Errorf("hostname in pod UTS namespace = %q, want arbor-pod-a", got)
	}
	for kind, path := range map[string]string{"ipc": ns.IPC, "uts": ns.UTS, "net": ns.Net} {
		inside := run(t, "nsenter", "--"+kind+"="+path, "readlink", "/proc/self/ns/"+kind)
		if inside == hostNS[kind] {
			t.Errorf("%s namespace inside = host's %s", kind, inside)
		}
	}
	if now, _ := os.Hostname(); now != hostName {
		t.Errorf("host hostname changed from %q to %q", hostName, now)
	}
	requireThreadsInHostNamespaces(t)
	for i := range 2 {
		if err := UnpinNamespaces(ns); err != nil {
			t.Fatalf("UnpinNamespaces #%d: %v", i+1, err)
		}
		requireNoMounts(t, nsDir)
		requireNotExist(t, dir)
	}
}

// requireThreadsInHostNamespaces waits until no thread of this process is
// (the leader included) in another IPC, UTS or network namespace than the
// process started in: the pinning threads must have been thrown away.
func requireThreadsInHostNamespaces(t *testing.T) {
	t.Helper()
	var stray []string
	for range 100 {
		if stray = strayThreads(t); len(stray) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("threads left in pod namespaces: %v", stray)
}

func strayThreads(t *testing.T) []string {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var stray []string
	for _, task := range tasks {
		for _, kind := range []string{"ipc", "uts", "net"} {
			link, err := os.Readlink(fmt.Sprintf("/proc/self/task/%s/ns/%s", task.Name(), kind))
			if err == nil && link != hostNS[kind] {
				stray = append(stray, task.Name()+"/"+kind)
			}
		}
	}
	return stray
}

func TestPinNamespacesModes(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name                string
		hostNetwork, hostIP bool
		callback            bool
		wantIPC, wantUTS    bool
		wantNet             string // "", "local" or "callback"
	}{
		{name: "all host", hostNetwork: true, hostIP: true},
		{name: "host network", hostNetwork: true, wantIPC: true},
		{name: "host ipc", hostIP: true, callback: true, wantUTS: true, wantNet: "callback"},
		{name: "net from callback", callback: true, wantIPC: true, wantUTS: true, wantNet: "callback"},
		{name: "net pinned locally", wantIPC: true, wantUTS: true, wantNet: "local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nsDir, netDir := t.TempDir(), t.TempDir()
			opts := Options{ID: "pod", NsDir: nsDir, HostNetwork: tc.hostNetwork, HostIPC: tc.hostIP, Hostname: "h"}
			var cbPath string
			if tc.callback {
				opts.NewNetNS = func(string) (string, error) { cbPath = pinTestNetNS(t, netDir); return cbPath, nil }
			}
			ns, err := PinNamespaces(context.Background(), opts)
			if err != nil {
				t.Fatalf("PinNamespaces: %v", err)
			}
			checkPinned(t, "ipc", ns.IPC, tc.wantIPC)
			checkPinned(t, "uts", ns.UTS, tc.wantUTS)
			switch tc.wantNet {
			case "":
				checkPinned(t, "net", ns.Net, false)
			case "callback":
				if ns.Net != cbPath {
					t.Errorf("net = %q, want callback's %q", ns.Net, cbPath)
				}
			case "local":
				checkPinned(t, "net", ns.Net, true)
			}
			if err := UnpinNamespaces(ns); err != nil {
				t.Fatalf("UnpinNamespaces: %v", err)
			}
			requireNoMounts(t, nsDir)
			if tc.callback && !nsfile.IsPinned(cbPath) {
				t.Errorf("UnpinNamespaces removed the caller's netns %s", cbPath)
			}
			if entries, _ := os.ReadDir(nsDir); len(entries) != 0 {
				t.Errorf("ns dir not empty after unpin: %v", entries)
			}
		})
	}
}

// checkPinned checks that path is a mounted namespace file when want, and
// empty otherwise.
func checkPinned(t *testing.T, kind, path string, want bool) {
	t.Helper()
	if !want {
		if path != "" {
			t.Errorf("%s = %q, want host's (empty)", kind, path)
		}
		return
	}
	if !nsfile.IsPinned(path) {
		t.Errorf("%s path %q is not a mounted namespace", kind, path)
	}
}

func TestPinNamespacesRollback(t *testing.T) {
	requireRoot(t)
	t.Run("net callback fails", func(t *testing.T) {
		nsDir := t.TempDir()
		boom := errors.New("boom")
		var pinnedBefore bool
		_, err := PinNamespaces(context.Background(), Options{ID: "pod", NsDir: nsDir,
			NewNetNS: func(string) (string, error) {
				pinnedBefore = nsfile.IsPinned(filepath.Join(nsDir, "pod", "ipc")) &&
					nsfile.IsPinned(filepath.Join(nsDir, "pod", "uts"))
				return "", boom
			}})
		if !errors.Is(err, boom) {
			t.Fatalf("error = %v, want the callback's", err)
		}
		if !pinnedBefore {
			t.Fatal("ipc and uts were not pinned when the net callback ran")
		}
		requireNoMounts(t, nsDir)
		requireNotExist(t, filepath.Join(nsDir, "pod"))
	})
	t.Run("stale mount point", func(t *testing.T) {
		nsDir := t.TempDir()
		dir := filepath.Join(nsDir, "pod")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "uts"), nil, 0o444); err != nil {
			t.Fatal(err)
		}
		_, err := PinNamespaces(context.Background(), Options{ID: "pod", NsDir: nsDir})
		if err == nil || !strings.Contains(err.Error(), "mount point") {
			t.Fatalf("error = %v, want mount point error", err)
		}
		requireNoMounts(t, nsDir)
		requireNotExist(t, filepath.Join(dir, "ipc"))
		requireNotExist(t, filepath.Join(dir, "net"))
	})
	t.Run("canceled context", func(t *testing.T) {
		nsDir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := PinNamespaces(ctx, Options{ID: "pod", NsDir: nsDir}); !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		requireNotExist(t, filepath.Join(nsDir, "pod"))
	})
}

func TestPinNamespacesInvalidOptions(t *testing.T) {
	tests := map[string]Options{
		"empty id":      {},
		"dot dot id":    {ID: ".."},
		"slash in id":   {ID: "a/b"},
		"long hostname": {ID: "pod", Hostname: strings.Repeat("h", 65)},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			opts.NsDir = t.TempDir()
			if _, err := PinNamespaces(context.Background(), opts); err == nil {
				t.Fatal("PinNamespaces accepted invalid options")
			}
			if entries, _ := os.ReadDir(opts.NsDir); len(entries) != 0 {
				t.Errorf("files left: %v", entries)
			}
		})
	}
}

// TestPinLeavesNoThreadInPodNamespaces pins repeatedly so that the pinning
// goroutine lands on the main thread at some point, which the runtime
// cannot throw away.
func TestPinLeavesNoThreadInPodNamespaces(t *testing.T) {
	requireRoot(t)
	nsDir := t.TempDir()
	for i := range 30 {
		ns, err := PinNamespaces(context.Background(), Options{ID: fmt.Sprint("pod-", i), NsDir: nsDir, Hostname: "p"})
		if err != nil {
			t.Fatalf("PinNamespaces #%d: %v", i, err)
		}
		if err := UnpinNamespaces(ns); err != nil {
			t.Fatalf("UnpinNamespaces #%d: %v", i, err)
		}
	}
	requireThreadsInHostNamespaces(t)
	if h, _ := os.Hostname(); h == "p" {
		t.Error("a goroutine thread kept the pod hostname")
	}
}
