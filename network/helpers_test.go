package network

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsthread"
)

// requireRoot skips tests that need namespaces, mounts and iptables.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces, mounts and iptables")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestManager returns a Manager whose directories all live in t.TempDir.
func newTestManager(t *testing.T, confDir string) *Manager {
	t.Helper()
	root := t.TempDir()
	if confDir == "" {
		confDir = filepath.Join(root, "net.d")
	}
	m, err := New(Config{
		ConfDir:  confDir,
		NetNSDir: filepath.Join(root, "netns"),
		CacheDir: filepath.Join(root, "cache"),
	}, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testNetwork is a bridge network private to one test.
type testNetwork struct {
	BridgeConfig
	confDir string
	gateway net.IP
	ipnet   *net.IPNet
}

// newTestNetwork writes a conflist with a unique bridge, subnet and lease
// dir into a fresh conf dir and deletes the bridge when the test ends.
func newTestNetwork(t *testing.T) *testNetwork {
	t.Helper()
	subnet := freeSubnet(t)
	_, ipnet, _ := net.ParseCIDR(subnet)
	gw := make(net.IP, 4)
	copy(gw, ipnet.IP.To4())
	gw[3] = 1
	n := &testNetwork{
		BridgeConfig: BridgeConfig{
			Name:    "arbor-test-" + randomHex(t, 4),
			Bridge:  "arbt" + randomHex(t, 4),
			Subnet:  subnet,
			DataDir: filepath.Join(t.TempDir(), "ipam"),
		},
		confDir: t.TempDir(),
		gateway: gw,
		ipnet:   ipnet,
	}
	t.Cleanup(func() { deleteLink(t, n.Bridge) })
	return n
}

func (n *testNetwork) write(t *testing.T) {
	t.Helper()
	if _, err := WriteBridgeConfig(n.confDir, n.BridgeConfig); err != nil {
		t.Fatalf("WriteBridgeConfig: %v", err)
	}
}

// leaseFile is host-local's record of ip for this network.
func (n *testNetwork) leaseFile(ip net.IP) string {
	return filepath.Join(n.DataDir, n.Name, ip.String())
}

// leaseIDs returns the container IDs holding leases in this network.
func (n *testNetwork) leaseIDs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.DataDir, n.Name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(n.DataDir, n.Name, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.Fields(string(data))[0])
	}
	return ids
}

// freeSubnet picks a 10.88.x.0/24 that no host route overlaps.
func freeSubnet(t *testing.T) string {
	t.Helper()
	routes, err := os.ReadFile("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		x, _ := rand.Int(rand.Reader, big.NewInt(150))
		subnet := fmt.Sprintf("10.88.%d.0/24", 100+x.Int64())
		hexDst := fmt.Sprintf("%02X%02X580A", 0, 100+x.Int64())
		if !strings.Contains(string(routes), hexDst) {
			return subnet
		}
	}
	t.Fatal("no free test subnet")
	return ""
}

func deleteLink(t *testing.T, name string) {
	if _, err := os.Stat("/sys/class/net/" + name); err != nil {
		return
	}
	if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
		t.Errorf("deleting link %s: %v: %s", name, err, out)
	}
}

// newPod creates a netns for a new pod and removes it when the test ends.
func newPod(t *testing.T, m *Manager, name string) Pod {
	t.Helper()
	id := randomHex(t, 32)
	path, err := m.NewNetNS(id)
	if err != nil {
		t.Fatalf("NewNetNS: %v", err)
	}
	t.Cleanup(func() {
		if err := m.RemoveNetNS(path); err != nil {
			t.Errorf("RemoveNetNS: %v", err)
		}
	})
	return Pod{ID: id, Name: name, Namespace: "default", UID: randomHex(t, 16), NetNSPath: path}
}

// inNetNS runs fn on a locked thread inside the netns at path.
func inNetNS(path string, fn func() error) error {
	return nsthread.Run(func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return fn()
	})
}

// ifaceIn returns the flags and IPv4 addresses of iface inside netns.
func ifaceIn(t *testing.T, netns, iface string) (net.Flags, []net.IP) {
	t.Helper()
	var flags net.Flags
	var ips []net.IP
	err := inNetNS(netns, func() error {
		i, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		flags = i.Flags
		addrs, err := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				ips = append(ips, ipn.IP)
			}
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading %s in %s: %v", iface, netns, err)
	}
	return flags, ips
}

// serveGreeting listens on addr inside netns and answers every connection
// with greeting; it stops when the test ends.
func serveGreeting(t *testing.T, netns, addr, greeting string) {
	t.Helper()
	var l net.Listener
	err := inNetNS(netns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening in netns: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, greeting+"\n")
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
}

// readGreeting connects to addr (from netns, or the host when netns is "")
// and returns the first line received.
func readGreeting(netns, addr string) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 10*time.Second)
		return err
	}
	var err error
	if netns == "" {
		err = dial()
	} else {
		err = inNetNS(netns, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// freeHostPort returns a TCP port nothing listens on right now.
func freeHostPort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// iptablesLines returns iptables-save output as a set of lines.
func iptablesLines(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines[l] = true
		}
	}
	return lines
}

// added returns lines in after that are not in before.
func added(before, after map[string]bool) []string {
	var out []string
	for l := range after {
		if !before[l] {
			out = append(out, l)
		}
	}
	return out
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}
