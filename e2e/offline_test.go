package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
)

// TestNothingLeavesTheMachine runs the daemon in its own mount namespace
// with a resolv.conf that names only 127.0.0.1, under strace, and pulls
// each public registry name once through the registries.conf rewrite. Any
// connection to port 53 or to an address that is not loopback fails the
// test: the rewrite must be applied before any name is resolved.
func TestNothingLeavesTheMachine(t *testing.T) {
	env := sharedEnv(t)
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(dir, "strace.log")
	// sh -c takes $0 and $1 from the words after the script; "$@" starts
	// at $1, so that is shifted off before the daemon's command line.
	wrap := []string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		`mount --bind "$0" /etc/resolv.conf && t="$1" && shift && exec strace -f -qq -e trace=connect,sendto -o "$t" "$@"`,
		resolv, trace}
	d := harness.Start(t, harness.Options{Shared: env, Wrap: wrap})
	cri := d.Client(t)

	refs := []string{
		"registry.k8s.io/pause:3.10",
		"k8s.gcr.io/pause:3.9",
		"registry.k8s.io/e2e-test-images/busybox:1.29-2",
		"gcr.io/k8s-staging-cri-tools/test-image-1:latest",
		"public.ecr.aws/docker/library/busybox:1.35.0-glibc",
	}
	for _, ref := range refs {
		if _, err := cri.PullImage(t.Context(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			t.Errorf("pulling %s through the rewrite: %v", ref, err)
		}
	}
	d.Stop(t)

	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "connect(") {
		t.Fatal("strace recorded no connect call at all: the check would prove nothing")
	}
	for _, bad := range offMachine(string(data)) {
		t.Errorf("traffic that could leave the machine: %s", bad)
	}
}

var (
	inetAddr  = regexp.MustCompile(`sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([0-9.]+)"\)`)
	inet6Addr = regexp.MustCompile(`sa_family=AF_INET6, sin6_port=htons\((\d+)\).*inet_pton\(AF_INET6, "([0-9a-f:.]+)"`)
)

// offMachine returns the traced calls that connect or send to port 53 or
// to an address outside loopback.
func offMachine(trace string) []string {
	var bad []string
	for _, line := range strings.Split(trace, "\n") {
		for _, re := range []*regexp.Regexp{inetAddr, inet6Addr} {
			m := re.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			port, addr := m[1], m[2]
			loopback := strings.HasPrefix(addr, "127.") || addr == "::1"
			if port == "53" || !loopback {
				bad = append(bad, strings.TrimSpace(line))
			}
		}
	}
	return bad
}

func TestOffMachineParser(t *testing.T) {
	trace := strings.Join([]string{
		`12 connect(7, {sa_family=AF_INET, sin_port=htons(40123), sin_addr=inet_addr("127.0.0.1")}, 16) = 0`,
		`12 connect(8, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.1")}, 16) = 0`,
		`12 connect(9, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("34.96.108.209")}, 16) = -1`,
		`12 connect(10, {sa_family=AF_UNIX, sun_path="/run/x.sock"}, 110) = 0`,
		`12 connect(11, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2600::1", &sin6_addr), sin6_scope_id=0}, 28) = -1`,
	}, "\n")
	if got := offMachine(trace); len(got) != 3 {
		t.Fatalf("want the port 53, public IPv4 and public IPv6 lines, got %d: %v", len(got), got)
	}
}
