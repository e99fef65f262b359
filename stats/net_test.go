package stats

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000000    4000    1    2    0     0          0         3   600000    3000    4    5    0     0       0          0
`

func TestParseNetDev(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []Interface
		ok   bool
	}{
		{name: "eth0 without loopback", in: netDev, ok: true, want: []Interface{{
			Name: "eth0", RxBytes: 5000000, RxPackets: 4000, RxErrors: 1, RxDropped: 2,
			TxBytes: 600000, TxPackets: 3000, TxErrors: 4, TxDropped: 5,
		}}},
		{name: "headers only", in: strings.Join(strings.Split(netDev, "\n")[:2], "\n"), ok: true},
		{name: "short line", in: "h\nh\n eth0: 1 2 3\n"},
		{name: "no name", in: "h\nh\n 1 2 3\n"},
		{name: "not a number", in: "h\nh\n eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNetDev(strings.NewReader(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !slices.Equal(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestReadNetworkOfNetns reads a real network namespace made for the test
// with a veth pair in it, through setns and through a process's /proc.
func TestReadNetworkOfNetns(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("unshare", "-n", "sh", "-c",
		"ip link add arbor-v0 type veth peer name arbor-v1 && ip link set arbor-v0 up && echo ready && exec sleep 300")
	pid := startReady(t, cmd)
	nsPath := filepath.Join("/proc", pid, "ns", "net")
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() (Network, error){
		"setns": func() (Network, error) { return ReadNetworkOfNetns(nsPath) },
		"proc":  func() (Network, error) { return ReadNetworkOfPid(cmd.Process.Pid) },
	} {
		t.Run(name, func(t *testing.T) {
			n, err := read()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, i := range n.Interfaces {
				names = append(names, i.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"arbor-v0", "arbor-v1"}) || n.Timestamp.IsZero() {
				t.Fatalf("interfaces %v at %v: want the namespace's veth pair only", names, n.Timestamp)
			}
		})
	}
	if after, _ := os.Readlink("/proc/self/ns/net"); after != self {
		t.Fatalf("the process changed network namespace: %s → %s", self, after)
	}
	if _, err := ReadNetworkOfNetns(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing namespace file must be an error")
	}
}
