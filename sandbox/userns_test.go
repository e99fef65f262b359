package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsfile"
)

const testHostID = 300000

func testUserNS() *UserNS {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: testHostID, Size: 65536}}
	return &UserNS{UIDs: m, GIDs: m}
}

// adoptInto pins from at dir/<id>, standing in for network.Manager's
// AdoptNetNS.
func adoptInto(t *testing.T, dir string) func(id, from string) (string, error) {
	return func(id, from string) (string, error) {
		p := filepath.Join(dir, id)
		if err := createMountPoint(p); err != nil {
			return "", err
		}
		t.Cleanup(func() { unpinFile(p) })
		return p, unix.Mount(from, p, "none", unix.MS_BIND, "")
	}
}

func TestPinNamespacesWithUserNS(t *testing.T) {
	requireRoot(t)
	nsDir, netDir := t.TempDir(), t.TempDir()
	ns, err := PinNamespaces(context.Background(), Options{
		ID: "pod-u", NsDir: nsDir, Hostname: "arbor-pod-u", UserNS: testUserNS(),
		NewNetNS:   func(string) (string, error) { t.Fatal("NewNetNS called for a pod user namespace"); return "", nil },
		AdoptNetNS: adoptInto(t, netDir),
	})
	if err != nil {
		t.Fatalf("PinNamespaces: %v", err)
	}
	t.Cleanup(func() { UnpinNamespaces(ns) })
	if ns.User == "" || ns.Net != filepath.Join(netDir, "pod-u") {
		t.Fatalf("namespaces = %+v", ns)
	}
	if got := strings.Fields(run(t, "nsenter", "--user="+ns.User, "cat", "/proc/self/uid_map")); strings.Join(got, " ") != "0 300000 65536" {
		t.Errorf("uid_map in the pod user namespace = %v", got)
	}
	// Containers that join call setgroups(2): it must stay allowed there.
	if got := run(t, "nsenter", "--user="+ns.User, "cat", "/proc/self/setgroups"); got != "allow" {
		t.Errorf("setgroups in the pod user namespace = %q", got)
	}
	// Each other namespace belongs to the pod's user namespace.
	owner := nsInode(t, ns.User)
	for kind, path := range map[string]string{"net": ns.Net, "ipc": ns.IPC, "uts": ns.UTS} {
		if got := ownerInode(t, path); got != owner {
			t.Errorf("%s namespace belongs to user namespace %d, want the pod's %d", kind, got, owner)
		}
	}
	if got := run(t, "nsenter", "--uts="+ns.UTS, "hostname"); got != "arbor-pod-u" {
		t.Errorf("hostname = %q", got)
	}
	requireThreadsInHostNamespaces(t)
	if err := UnpinNamespaces(ns); err != nil {
		t.Fatal(err)
	}
	requireNoMounts(t, nsDir)
	requireNotExist(t, filepath.Join(nsDir, "pod-u"))
}

func TestPinNamespacesUserNSRefusesHostNamespaces(t *testing.T) {
	for name, opts := range map[string]Options{
		"host network": {ID: "x", UserNS: testUserNS(), HostNetwork: true},
		"host ipc":     {ID: "x", UserNS: testUserNS(), HostIPC: true},
		"no adopt":     {ID: "x", UserNS: testUserNS(), NewNetNS: func(string) (string, error) { return "", nil }},
	} {
		t.Run(name, func(t *testing.T) {
			opts.NsDir = t.TempDir()
			if _, err := PinNamespaces(context.Background(), opts); err == nil {
				t.Fatal("accepted")
			}
			requireNoMounts(t, opts.NsDir)
		})
	}
}

func TestIDMappedMount(t *testing.T) {
	requireRoot(t)
	ns, err := PinNamespaces(context.Background(), Options{ID: "pod-m", NsDir: t.TempDir(), UserNS: testUserNS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnpinNamespaces(ns) })
	src, target := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(src, "f"), 5, 5); err != nil {
		t.Fatal(err)
	}
	if err := IDMappedMount(src, target, ns.User); err != nil {
		t.Fatal(err)
	}
	defer nsfile.UnmountAll(target)
	fi, err := os.Stat(filepath.Join(target, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != testHostID+5 {
		t.Errorf("uid through the ID-mapped mount = %d, want %d", uid, testHostID+5)
	}
	if err := nsfile.UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	requireNoMounts(t, target)
	if err := IDMappedMount(src, target, "/nonexistent"); err == nil {
		t.Error("a missing user namespace was accepted")
	}
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// ownerInode is the inode of the user namespace owning the namespace at
// path (ioctl NS_GET_USERNS).
func ownerInode(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const nsGetUserns = 0xb701
	fd, err := unix.IoctlRetInt(int(f.Fd()), nsGetUserns)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
