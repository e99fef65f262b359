package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// readPodFile reads path and checks it is the only file in its folder
// (no temporary file left) with mode 0644.
func readPodFile(t *testing.T, path string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only %s", len(entries), filepath.Base(path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func hostFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestWriteResolvConf(t *testing.T) {
	tests := []struct {
		name    string
		dns     *runtimeapi.DNSConfig
		want    string // "host" means the host's /etc/resolv.conf
		wantErr bool
	}{
		{name: "nil copies host", dns: nil, want: "host"},
		{name: "empty copies host", dns: &runtimeapi.DNSConfig{}, want: "host"},
		{name: "cluster first", dns: &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10", "fd00::a"},
			Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:  []string{"ndots:5", "edns0"},
		}, want: "search default.svc.cluster.local svc.cluster.local cluster.local\n" +
			"nameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5 edns0\n"},
		{name: "servers only", dns: &runtimeapi.DNSConfig{Servers: []string{"192.0.2.53"}},
			want: "nameserver 192.0.2.53\n"},
		{name: "options only", dns: &runtimeapi.DNSConfig{Options: []string{"single-request"}},
			want: "options single-request\n"},
		{name: "bad server", dns: &runtimeapi.DNSConfig{Servers: []string{"dns.example"}}, wantErr: true},
		{name: "search injects a line", dns: &runtimeapi.DNSConfig{Searches: []string{"a\nnameserver 1.2.3.4"}}, wantErr: true},
		{name: "empty option", dns: &runtimeapi.DNSConfig{Options: []string{""}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			err := WriteResolvConf(path, tc.dns)
			if tc.wantErr {
				if err == nil {
					t.Fatal("WriteResolvConf accepted invalid config")
				}
				requireNotExist(t, path)
				return
			}
			if err != nil {
				t.Fatalf("WriteResolvConf: %v", err)
			}
			want := tc.want
			if want == "host" {
				want = hostFile(t, "/etc/resolv.conf")
			}
			if got := readPodFile(t, path); got != want {
				t.Errorf("resolv.conf =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestWriteHosts(t *testing.T) {
	tests := []struct {
		name        string
		hostname    string
		ips         []string
		hostNetwork bool
		want        string // "host" means the host's /etc/hosts
		wantErr     bool
	}{
		{name: "dual stack", hostname: "web-0", ips: []string{"10.88.0.5", "fd00::5"},
			want: hostsHeader + "10.88.0.5\tweb-0\nfd00::5\tweb-0\n"},
		{name: "no ip yet", hostname: "web-0", want: hostsHeader + "127.0.1.1\tweb-0\n"},
		{name: "host network copies host", hostname: "ignored", ips: []string{"10.0.0.1"}, hostNetwork: true, want: "host"},
		{name: "bad ip", hostname: "web-0", ips: []string{"10.0.0.300"}, wantErr: true},
		{name: "hostname with space", hostname: "web 0", wantErr: true},
		{name: "empty hostname", hostname: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hosts")
			err := WriteHosts(path, tc.hostname, tc.ips, tc.hostNetwork)
			if tc.wantErr {
				if err == nil {
					t.Fatal("WriteHosts accepted invalid input")
				}
				requireNotExist(t, path)
				return
			}
			if err != nil {
				t.Fatalf("WriteHosts: %v", err)
			}
			want := tc.want
			if want == "host" {
				want = hostFile(t, "/etc/hosts")
			}
			if got := readPodFile(t, path); got != want {
				t.Errorf("hosts =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestWriteHostname(t *testing.T) {
	node, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, hostname, want string
		wantErr              bool
	}{
		{name: "pod hostname", hostname: "web-0", want: "web-0\n"},
		{name: "empty is node's", hostname: "", want: node + "\n"},
		{name: "newline", hostname: "a\nb", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hostname")
			err := WriteHostname(path, tc.hostname)
			if tc.wantErr {
				if err == nil {
					t.Fatal("WriteHostname accepted invalid hostname")
				}
				requireNotExist(t, path)
				return
			}
			if err != nil {
				t.Fatalf("WriteHostname: %v", err)
			}
			if got := readPodFile(t, path); got != tc.want {
				t.Errorf("hostname = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteReplacesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hostname")
	for _, h := range []string{"first-name-that-is-long", "second"} {
		if err := WriteHostname(path, h); err != nil {
			t.Fatal(err)
		}
	}
	if got := readPodFile(t, path); got != "second\n" {
		t.Errorf("hostname = %q, want second", got)
	}
}

func TestFilePaths(t *testing.T) {
	f := FilePaths("/run/arbor/pods/p1", false)
	if f.HostsPath != "/run/arbor/pods/p1/hosts" || f.ResolvConfPath != "/run/arbor/pods/p1/resolv.conf" ||
		f.HostnamePath != "/run/arbor/pods/p1/hostname" || f.ShmPath != "/run/arbor/pods/p1/shm" {
		t.Errorf("FilePaths = %+v", f)
	}
	if f := FilePaths("/p", true); f.ShmPath != "" {
		t.Errorf("ShmPath with host IPC = %q, want empty", f.ShmPath)
	}
}
