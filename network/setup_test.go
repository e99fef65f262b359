package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// setupPod runs Setup and registers a Teardown for the end of the test.
func setupPod(t *testing.T, m *Manager, pod Pod) Result {
	t.Helper()
	res, err := m.Setup(testContext(t), pod)
	if err != nil {
		t.Fatalf("Setup %s: %v", pod.Name, err)
	}
	t.Cleanup(func() {
		if err := m.Teardown(context.Background(), pod); err != nil {
			t.Errorf("cleanup Teardown %s: %v", pod.Name, err)
		}
	})
	return res
}

func TestPodNetwork(t *testing.T) {
	requireRoot(t)
	ctx := testContext(t)
	n := newTestNetwork(t)
	n.write(t)
	m := newTestManager(t, n.confDir)
	before := iptablesLines(t)

	hostPort := freeHostPort(t)
	a := newPod(t, m, "pod-a")
	a.PortMappings = []PortMapping{{Protocol: "TCP", ContainerPort: 8080, HostPort: hostPort}}
	b := newPod(t, m, "pod-b")
	resA := setupPod(t, m, a)
	resB := setupPod(t, m, b)
	ipA, ipB := resA.IPs[0], resB.IPs[0]
	serveGreeting(t, a.NetNSPath, ":8080", "hello from a")
	podChains := newPodChains(before, iptablesLines(t))

	t.Run("pods get an address in the subnet on eth0", func(t *testing.T) {
		for _, p := range []struct {
			pod Pod
			ip  net.IP
		}{{a, ipA}, {b, ipB}} {
			if !n.ipnet.Contains(p.ip) || p.ip.Equal(n.gateway) {
				t.Fatalf("%s got %s outside %s", p.pod.Name, p.ip, n.Subnet)
			}
			flags, ips := ifaceIn(t, p.pod.NetNSPath, "eth0")
			if flags&net.FlagUp == 0 || !slices.ContainsFunc(ips, p.ip.Equal) {
				t.Fatalf("%s eth0 flags %v addrs %v, want up with %s", p.pod.Name, flags, ips, p.ip)
			}
			if flags, _ := ifaceIn(t, p.pod.NetNSPath, "lo"); flags&net.FlagUp == 0 {
				t.Fatalf("%s lo is down", p.pod.Name)
			}
		}
		if ipA.Equal(ipB) {
			t.Fatalf("both pods got %s", ipA)
		}
	})

	t.Run("pods on the bridge reach each other", func(t *testing.T) {
		got, err := readGreeting(b.NetNSPath, net.JoinHostPort(ipA.String(), "8080"))
		if err != nil || got != "hello from a" {
			t.Fatalf("b -> a: %q, %v", got, err)
		}
	})

	t.Run("host port reachable from host", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1", n.gateway.String()} {
			addr := net.JoinHostPort(host, fmt.Sprint(hostPort))
			got, err := readGreeting("", addr)
			if err != nil || got != "hello from a" {
				t.Fatalf("host -> %s: %q, %v", addr, got, err)
			}
		}
	})

	t.Run("second setup is refused and keeps the attachment", func(t *testing.T) {
		if _, err := m.Setup(ctx, a); err == nil {
			t.Fatal("second Setup succeeded")
		}
		got, err := readGreeting(b.NetNSPath, net.JoinHostPort(ipA.String(), "8080"))
		if err != nil || got != "hello from a" {
			t.Fatalf("b -> a after refused setup: %q, %v", got, err)
		}
	})

	t.Run("status and check report the attachment", func(t *testing.T) {
		for _, p := range []struct {
			pod Pod
			ip  net.IP
		}{{a, ipA}, {b, ipB}} {
			res, err := m.Status(ctx, p.pod)
			if err != nil || !slices.ContainsFunc(res.IPs, p.ip.Equal) {
				t.Fatalf("Status(%s) = %v, %v; want %s", p.pod.Name, res.IPs, err, p.ip)
			}
		}
		atts, err := m.cni.GetCachedAttachments(a.ID)
		if err != nil || len(atts) != 2 {
			t.Fatalf("cached attachments = %d, %v; want lo and eth0", len(atts), err)
		}
		for _, att := range atts {
			if !slices.Contains(att.CniArgs, [2]string{"K8S_POD_NAME", "pod-a"}) {
				t.Errorf("%s attached without K8S args: %v", att.IfName, att.CniArgs)
			}
			if att.IfName == "eth0" && att.CapabilityArgs["portMappings"] == nil {
				t.Errorf("eth0 attached without portMappings: %v", att.CapabilityArgs)
			}
		}
		// Pod b only: Debian portmap 1.1.1 CHECK is broken with port mappings.
		if err := m.Check(ctx, b); err != nil {
			t.Fatalf("Check(%s): %v", b.Name, err)
		}
	})

	t.Run("teardown releases rules and lease and is idempotent", func(t *testing.T) {
		if len(podChains) == 0 {
			t.Fatal("setup created no port mapping chains")
		}
		assertLease(t, n, ipA, a.ID)
		for range 2 {
			if err := m.Teardown(ctx, a); err != nil {
				t.Fatalf("Teardown: %v", err)
			}
		}
		assertNoPodRules(t, iptablesLines(t), podChains, a, ipA)
		assertNoLease(t, n, ipA, a.ID)
		if _, err := readGreeting("", net.JoinHostPort("127.0.0.1", fmt.Sprint(hostPort))); err == nil {
			t.Fatal("host port still forwarded after teardown")
		}
		if _, err := m.Status(ctx, a); err == nil {
			t.Fatal("Status succeeded after teardown")
		}
		if err := m.Check(ctx, a); err == nil {
			t.Fatal("Check succeeded after teardown")
		}
	})

	t.Run("teardown after the netns is removed", func(t *testing.T) {
		assertLease(t, n, ipB, b.ID)
		if err := m.RemoveNetNS(b.NetNSPath); err != nil {
			t.Fatalf("RemoveNetNS: %v", err)
		}
		if mounted(t, b.NetNSPath) {
			t.Fatal("netns still mounted")
		}
		if _, err := m.Status(ctx, b); err == nil {
			t.Fatal("Status succeeded without netns")
		}
		for range 2 {
			if err := m.Teardown(ctx, b); err != nil {
				t.Fatalf("Teardown: %v", err)
			}
		}
		assertNoLease(t, n, ipB, b.ID)
	})
}

func TestTeardownWithoutCache(t *testing.T) {
	requireRoot(t)
	ctx := testContext(t)
	n := newTestNetwork(t)
	n.write(t)
	m := newTestManager(t, n.confDir)
	before := iptablesLines(t)
	pod := newPod(t, m, "pod-c")
	pod.PortMappings = []PortMapping{{ContainerPort: 80, HostPort: freeHostPort(t), HostIP: "127.0.0.1"}}
	res := setupPod(t, m, pod)
	chains := newPodChains(before, iptablesLines(t))
	if len(chains) == 0 {
		t.Fatal("setup created no port mapping chains")
	}

	// A manager with an empty cache (as after losing /var/lib/cni) must
	// still release everything from the pod description alone.
	fresh := newTestManager(t, n.confDir)
	if err := fresh.RemoveNetNS(pod.NetNSPath); err == nil {
		t.Fatal("RemoveNetNS of another manager's dir succeeded")
	}
	if err := m.RemoveNetNS(pod.NetNSPath); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Teardown(ctx, pod); err != nil {
		t.Fatalf("Teardown without cache: %v", err)
	}
	assertNoPodRules(t, iptablesLines(t), chains, pod, res.IPs[0])
	assertNoLease(t, n, res.IPs[0], pod.ID)
}

func TestSetupRollsBackOnPluginFailure(t *testing.T) {
	requireRoot(t)
	n := newTestNetwork(t)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
	  {"type":"bridge","bridge":%q,"isGateway":true,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}},
	  {"type":"tuning","sysctl":{"net.ipv4.conf.eth0.no_such_sysctl":"1"}}]}`, n.Name, n.Bridge, n.DataDir, n.Subnet)
	if err := os.WriteFile(filepath.Join(n.confDir, "10-fail.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, n.confDir)
	pod := newPod(t, m, "pod-fail")
	if _, err := m.Setup(testContext(t), pod); err == nil || !strings.Contains(err.Error(), "tuning") {
		t.Fatalf("Setup = %v, want tuning failure", err)
	}
	if ids := n.leaseIDs(t); slices.Contains(ids, pod.ID) {
		t.Fatalf("lease kept after failed setup: %v", ids)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge)); err != nil {
		t.Fatalf("bridge plugin never ran: %v", err)
	}
	if ports, _ := os.ReadDir(filepath.Join("/sys/class/net", n.Bridge, "brif")); len(ports) != 0 {
		t.Fatalf("veth left on bridge: %d ports", len(ports))
	}
	if atts, _ := m.cni.GetCachedAttachments(pod.ID); len(atts) != 0 {
		t.Fatalf("cni cache kept %d attachments", len(atts))
	}
}

func TestSetupRejectsMissingNetworkOrNetNS(t *testing.T) {
	requireRoot(t)
	m := newTestManager(t, "")
	pod := newPod(t, m, "pod-x")
	ctx := testContext(t)
	if _, err := m.Setup(ctx, pod); err == nil || !strings.Contains(err.Error(), "no CNI configuration") {
		t.Fatalf("Setup without config = %v", err)
	}
	pod.NetNSPath = filepath.Join(t.TempDir(), "missing")
	if _, err := m.Setup(ctx, pod); err == nil {
		t.Fatal("Setup with a missing netns succeeded")
	}
	if _, err := m.Setup(ctx, Pod{}); err == nil {
		t.Fatal("Setup without id succeeded")
	}
}

// newPodChains returns the per-pod chains (CNI-* except the shared
// CNI-HOSTPORT-* ones) declared in after but not in before.
func newPodChains(before, after map[string]bool) []string {
	var chains []string
	for _, l := range added(before, after) {
		if strings.HasPrefix(l, ":CNI-") && !strings.HasPrefix(l, ":CNI-HOSTPORT-") {
			chains = append(chains, strings.Fields(l)[0][1:])
		}
	}
	return chains
}

func assertNoPodRules(t *testing.T, lines map[string]bool, chains []string, pod Pod, ip net.IP) {
	t.Helper()
	for l := range lines {
		hasChain := slices.ContainsFunc(chains, func(c string) bool { return strings.Contains(l, c) })
		if hasChain || strings.Contains(l, pod.ID) || strings.Contains(l, ip.String()+"/") {
			t.Errorf("iptables rule left after teardown: %s", l)
		}
	}
}

func assertLease(t *testing.T, n *testNetwork, ip net.IP, id string) {
	t.Helper()
	data, err := os.ReadFile(n.leaseFile(ip))
	if err != nil || !strings.Contains(string(data), id) {
		t.Fatalf("lease for %s: %q, %v; want held by %s", ip, data, err, id)
	}
}

func assertNoLease(t *testing.T, n *testNetwork, ip net.IP, id string) {
	t.Helper()
	if _, err := os.Stat(n.leaseFile(ip)); !os.IsNotExist(err) {
		t.Errorf("lease file for %s remains: %v", ip, err)
	}
	if slices.Contains(n.leaseIDs(t), id) {
		t.Errorf("pod %s still holds a lease", id)
	}
}
