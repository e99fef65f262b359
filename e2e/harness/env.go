package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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
}

// SetupEnv starts the registry, pushes the images and writes the configs.
func SetupEnv(ctx context.Context) (*Env, error) {
	dir, err := os.MkdirTemp("", "arbor-env-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, CNIDir: filepath.Join(dir, "cni"), Bridge: "arbe2e" + randHex(2)}
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
{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.89.%d.0/24"}]],"dataDir":%q}},
{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}`,
		e.Bridge, subnetByte(e.Bridge), filepath.Join(e.Dir, "ipam"))
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

// Close stops the registry and removes the bridge and the folder.
func (e *Env) Close() {
	if e.Registry != nil {
		_ = e.Registry.Stop()
	}
	_ = exec.Command("ip", "link", "del", e.Bridge).Run()
	os.RemoveAll(e.Dir)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func subnetByte(s string) int {
	sum := 0
	for _, c := range s {
		sum += int(c)
	}
	return 100 + sum%150
}
