package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateSysctls(t *testing.T) {
	tests := []struct {
		name                 string
		sysctls              map[string]string
		hostNetwork, hostIPC bool
		wantErr              string // substring; "" means valid
	}{
		{name: "none", sysctls: nil},
		{name: "net in pod netns", sysctls: map[string]string{"net.ipv4.ip_forward": "1"}},
		{name: "net slash form", sysctls: map[string]string{"net/ipv4/ip_unprivileged_port_start": "0"}},
		{name: "interface with dot", sysctls: map[string]string{"net.ipv4.conf.eth0/1.rp_filter": "1"}},
		{name: "net with host network", sysctls: map[string]string{"net.ipv4.ip_forward": "1"}, hostNetwork: true, wantErr: "net.ipv4.ip_forward"},
		{name: "ipc in pod ipc", sysctls: map[string]string{"kernel.shmmax": "1", "kernel.msgmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.msg_max": "10"}},
		{name: "ipc with host network only", sysctls: map[string]string{"kernel.shmmni": "1"}, hostNetwork: true},
		{name: "shm with host ipc", sysctls: map[string]string{"kernel.shmall": "1"}, hostIPC: true, wantErr: "kernel.shmall"},
		{name: "msg with host ipc", sysctls: map[string]string{"kernel.msgmnb": "1"}, hostIPC: true, wantErr: "kernel.msgmnb"},
		{name: "sem with host ipc", sysctls: map[string]string{"kernel.sem": "1"}, hostIPC: true, wantErr: "kernel.sem"},
		{name: "mqueue with host ipc", sysctls: map[string]string{"fs.mqueue.queues_max": "1"}, hostIPC: true, wantErr: "fs.mqueue.queues_max"},
		{name: "net with host ipc", sysctls: map[string]string{"net.core.somaxconn": "1024"}, hostIPC: true},
		{name: "not namespaced", sysctls: map[string]string{"kernel.panic": "1"}, wantErr: "kernel.panic"},
		{name: "vm not namespaced", sysctls: map[string]string{"vm.swappiness": "1"}, wantErr: "vm.swappiness"},
		{name: "path escape", sysctls: map[string]string{"net.//.//.kernel.panic": "1"}, wantErr: "invalid name"},
		{name: "empty component", sysctls: map[string]string{"net..ipv4": "1"}, wantErr: "invalid name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSysctls(tc.sysctls, tc.hostNetwork, tc.hostIPC)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ValidateSysctls: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestSysctlPath(t *testing.T) {
	tests := map[string]string{
		"net.ipv4.ip_forward":            "/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/1.rp_filter": "/proc/sys/net/ipv4/conf/eth0.1/rp_filter",
		"fs.mqueue.msg_max":              "/proc/sys/fs/mqueue/msg_max",
	}
	for name, want := range tests {
		if got, err := sysctlPath(name); err != nil || got != want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func readProc(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// otherValue returns a value for a numeric sysctl that differs from cur.
func otherValue(cur, a, b string) string {
	if cur == a {
		return b
	}
	return a
}

func TestApplySysctlsInPinnedNamespaces(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	paths, err := pinNew(filepath.Join(dir, "pod"), []nsKind{kindNet, kindIPC, kindUTS}, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	ns := Namespaces{Dir: filepath.Join(dir, "pod"), Net: paths["net"], IPC: paths["ipc"], UTS: paths["uts"]}
	t.Cleanup(func() {
		if err := UnpinNamespaces(ns); err != nil {
			t.Error(err)
		}
	})
	checks := []struct{ name, proc, flag, a, b string }{
		{"net.ipv4.ip_unprivileged_port_start", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "--net=" + ns.Net, "80", "81"},
		{"kernel.msgmax", "/proc/sys/kernel/msgmax", "--ipc=" + ns.IPC, "12345", "12346"},
		{"kernel/shmmni", "/proc/sys/kernel/shmmni", "--ipc=" + ns.IPC, "2000", "2001"},
		{"kernel.domainname", "/proc/sys/kernel/domainname", "--uts=" + ns.UTS, "pod.example", "pod2.example"},
	}
	sysctls, want, hostBefore := map[string]string{}, map[string]string{}, map[string]string{}
	for _, c := range checks {
		hostBefore[c.proc] = readProc(t, c.proc)
		want[c.proc] = otherValue(hostBefore[c.proc], c.a, c.b)
		sysctls[c.name] = want[c.proc]
	}
	if err := ApplySysctls(ns, sysctls); err != nil {
		t.Fatalf("ApplySysctls: %v", err)
	}
	for _, c := range checks {
		if got := run(t, "nsenter", c.flag, "cat", c.proc); got != want[c.proc] {
			t.Errorf("%s inside pod = %q, want %q", c.name, got, want[c.proc])
		}
		if got := readProc(t, c.proc); got != hostBefore[c.proc] {
			t.Errorf("host %s changed from %q to %q", c.name, hostBefore[c.proc], got)
		}
	}
	requireThreadsInHostNamespaces(t)
}

func TestApplySysctlsRefusesHostNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		ns      Namespaces
		sysctls map[string]string
	}{
		{name: "net without pod netns", ns: Namespaces{IPC: "/nonexistent/ipc"}, sysctls: map[string]string{"net.core.somaxconn": "1"}},
		{name: "ipc without pod ipc", ns: Namespaces{Net: "/nonexistent/net"}, sysctls: map[string]string{"kernel.msgmax": "1"}},
		{name: "uts without pod uts", ns: Namespaces{Net: "/nonexistent/net"}, sysctls: map[string]string{"kernel.hostname": "x"}},
		{name: "not namespaced", ns: Namespaces{Net: "/nonexistent/net"}, sysctls: map[string]string{"kernel.panic": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ApplySysctls(tc.ns, tc.sysctls)
			if err == nil {
				t.Fatal("ApplySysctls accepted a sysctl for a host namespace")
			}
			for name := range tc.sysctls {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}
