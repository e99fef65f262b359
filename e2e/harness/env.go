package harness

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/e2e/fixture"
)

// PublicRegistries are the hosts the test images are named under; the
// environment's registries.conf sends each to the local registry with
// `location =`, so nothing is ever fetched from, or resolved for, them.
var PublicRegistries = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "public.ecr.aws", "docker.io"}

// Env is what the e2e tests share: a local registry with the test images,
// a registries.conf that maps the public registries to it, and a CNI
// network of the tests' own (a bridge with no route off the machine).
type Env struct {
	Dir            string
	Registry       *fixture.Registry
	Catalog        fixture.Catalog
	RegistriesConf string
	CNIDir         string
	Bridge         string
	Subnet         *net.IPNet

	subnetLock *os.File // held while the environment lives; see reserveSubnet
}

// LazyEnv is the environment a test binary's tests share: set up by the
// first test that asks for it, torn down by Close in TestMain.
type LazyEnv struct {
	once sync.Once
	env  *Env
	err  error
}

// Get sets the environment up the first time (within 5 minutes) and
// returns it; a failed set-up fails every test that asks.
func (l *LazyEnv) Get(t testing.TB) *Env {
	t.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		l.env, l.err = SetupEnv(ctx)
	})
	if l.err != nil {
		t.Fatalf("test environment: %v", l.err)
	}
	return l.env
}

// Close tears the environment down if it was set up.
func (l *LazyEnv) Close() {
	if l.env != nil {
		l.env.Close()
	}
}

// SetupEnv starts the registry, pushes the images and writes the configs.
func SetupEnv(ctx context.Context) (*Env, error) {
	dir, err := os.MkdirTemp("", "arbor-env-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, CNIDir: filepath.Join(dir, "cni")}
	if err := e.reserveSubnet(); err != nil {
		e.Close()
		return nil, err
	}
	if e.Registry, err = fixture.StartRegistry(ctx, fixture.RegistryOptions{Dir: filepath.Join(dir, "registry")}); err != nil {
		e.Close()
		return nil, fmt.Errorf("starting registry: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if e.Catalog, err = fixture.BuildImages(ctx, e.Registry.Addr(), quiet); err != nil {
		e.Close()
		return nil, fmt.Errorf("building images: %w", err)
	}
	if err := e.writeConfigs(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) writeConfigs() error {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n")
	for _, host := range append(PublicRegistries, e.Registry.Addr()) {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", host, e.Registry.Addr())
	}
	e.RegistriesConf = filepath.Join(e.Dir, "registries.conf")
	if err := os.WriteFile(e.RegistriesConf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(e.CNIDir, 0o755); err != nil {
		return err
	}
	// A private subnet that exists only on this bridge: no default route,
	// no masquerade, so pods cannot reach past the machine.
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"arbor-e2e","plugins":[
{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}},
{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}`,
		e.Bridge, e.Subnet.String(), filepath.Join(e.Dir, "ipam"))
	return os.WriteFile(filepath.Join(e.CNIDir, "10-arbor-e2e.conflist"), []byte(conf), 0o644)
}

// Args are the daemon flags that use the environment.
func (e *Env) Args() []string {
	return []string{
		"--registries-conf", e.RegistriesConf, "--registries-conf-dir", filepath.Join(e.Dir, "registries.d"),
		"--cni-config-dir", e.CNIDir, "--pause-image", "registry.k8s.io/pause:3.10",
		"--short-name-mode", "disabled",
	}
}

// Image returns the name of a test image as the tests use it: under the
// local registry's address.
func (e *Env) Image(ref string) string { return e.Catalog.Reference(ref) }

// Close stops the registry, removes the bridge and the folder and gives
// the subnet back.
func (e *Env) Close() {
	if e.Registry != nil {
		_ = e.Registry.Stop()
	}
	if e.Bridge != "" {
		_ = exec.Command("ip", "link", "del", e.Bridge).Run()
	}
	os.RemoveAll(e.Dir)
	if e.subnetLock != nil {
		e.subnetLock.Close() // releases the flock
	}
}

// subnetLockDir holds one lock file per test subnet. The files stay: a
// lock file removed while another process opens it would let two holders
// in.
var subnetLockDir = filepath.Join(os.TempDir(), "arbor-test-subnets")

// reserveSubnet picks the environment's pod subnet, 10.89.N.0/24 with N
// in 100..249, and names the bridge after it. Test packages run in
// parallel (go test ./e2e/...) and each sets up its own environment, and
// a bridge appears only with the first pod, so the host's routes alone
// cannot tell a subnet another run is about to use: each run holds an
// exclusive flock on the subnet's lock file while its environment lives.
// A subnet is also skipped when the host has a route or an address in
// it (its own networks, a bridge a killed run left) or a link by the
// bridge's name.
func (e *Env) reserveSubnet() error {
	if err := os.MkdirAll(subnetLockDir, 0o755); err != nil {
		return err
	}
	const first, count = 100, 150
	start := randInt(count)
	for i := range count {
		n := first + (start+i)%count
		subnet := &net.IPNet{IP: net.IPv4(10, 89, byte(n), 0).To4(), Mask: net.CIDRMask(24, 32)}
		bridge := fmt.Sprintf("arbe2e%d", n)
		if _, err := net.InterfaceByName(bridge); err == nil {
			continue
		}
		if used, err := subnetInUse(subnet); err != nil {
			return err
		} else if used {
			continue
		}
		f, err := os.OpenFile(filepath.Join(subnetLockDir, fmt.Sprintf("10.89.%d.0-24.lock", n)), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue // another test run holds it
			}
			return fmt.Errorf("locking subnet %s: %w", subnet, err)
		}
		// Checked again under the lock: a run that held it until just now
		// may have left its bridge behind.
		if used, err := subnetInUse(subnet); err != nil || used {
			f.Close()
			if err != nil {
				return err
			}
			continue
		}
		e.Subnet, e.Bridge, e.subnetLock = subnet, bridge, f
		return nil
	}
	return fmt.Errorf("no free test subnet in 10.89.%d.0/24..10.89.%d.0/24", first, first+count-1)
}

// subnetInUse reports whether the host has a route (other than a default
// route) or an address that overlaps subnet.
func subnetInUse(subnet *net.IPNet) (bool, error) {
	overlaps := func(n *net.IPNet) bool { return n.Contains(subnet.IP) || subnet.Contains(n.IP) }
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, fmt.Errorf("listing the host's addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && overlaps(&net.IPNet{IP: n.IP.Mask(n.Mask), Mask: n.Mask}) {
			return true, nil
		}
	}
	routes, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(routes), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, err1 := procRouteIP(f[1])
		mask, err2 := procRouteIP(f[7])
		if err1 != nil || err2 != nil {
			continue
		}
		if ones, _ := net.IPMask(mask).Size(); ones == 0 {
			continue // a default route covers everything
		}
		if overlaps(&net.IPNet{IP: dst.Mask(net.IPMask(mask)), Mask: net.IPMask(mask)}) {
			return true, nil
		}
	}
	return false, nil
}

// procRouteIP decodes an address of /proc/net/route: the kernel prints
// the network-order bytes as one native-endian 32-bit hex number.
func procRouteIP(s string) (net.IP, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return nil, err
	}
	b := make(net.IP, 4)
	binary.NativeEndian.PutUint32(b, uint32(v))
	return b, nil
}

func randInt(n int) int {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}
