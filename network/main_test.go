package network

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	restore := snapshotHostNetwork()
	code := m.Run()
	if err := restore(); err != nil {
		fmt.Fprintln(os.Stderr, "restoring host network state:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// snapshotHostNetwork records host state the plugins change (ip_forward,
// portmap's shared chains) and returns a function that puts back what the
// tests introduced, as far as no port mapping still uses it.
func snapshotHostNetwork() func() error {
	if os.Geteuid() != 0 {
		return func() error { return nil }
	}
	forward, _ := os.ReadFile(ipForwardPath)
	hadChains := hasHostportChains()
	return func() error {
		if len(forward) > 0 {
			if err := os.WriteFile(ipForwardPath, forward, 0o644); err != nil {
				return err
			}
		}
		if hadChains || !hasHostportChains() || hostportRulesInUse() {
			return nil
		}
		return removeHostportChains()
	}
}

func iptablesNAT(args ...string) (string, error) {
	out, err := exec.Command("iptables", append([]string{"-w", "-t", "nat"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func hasHostportChains() bool {
	_, err := iptablesNAT("-S", "CNI-HOSTPORT-DNAT")
	return err == nil
}

// hostportRulesInUse reports whether any pod still has port mappings.
func hostportRulesInUse() bool {
	out, err := iptablesNAT("-S", "CNI-HOSTPORT-DNAT")
	return err != nil || strings.Contains(out, "-A CNI-HOSTPORT-DNAT")
}

// removeHostportChains undoes portmap's one-time scaffolding. Pieces may be
// missing (portmap without snat makes fewer), so each step is best effort
// and only the end state is checked.
func removeHostportChains() error {
	steps := [][]string{
		{"-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
		{"-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
		{"-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
	}
	for _, c := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
		steps = append(steps, []string{"-F", c}, []string{"-X", c})
	}
	for _, s := range steps {
		iptablesNAT(s...)
	}
	if hasHostportChains() {
		return fmt.Errorf("portmap chains remain")
	}
	return nil
}
