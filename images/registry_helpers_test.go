package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/crypto/bcrypt"

	"github.com/arbor-cri/arbor/internal/syncbuf"
)

// dnsDials counts DNS queries the Go resolver tried to send. TestMain
// replaces the default resolver so that no test ever sends DNS traffic
// off the machine and so that tests can prove no lookup happened.
var dnsDials atomic.Int64

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			dnsDials.Add(1)
			return nil, errors.New("dns is disabled in tests")
		},
	}
	os.Exit(m.Run())
}

// testRegistry is a Debian docker-registry process on 127.0.0.1.
type testRegistry struct {
	addr    string
	logPath string
}

// registryOptions configures startRegistry.
type registryOptions struct {
	user, password string // htpasswd credentials; empty means no auth
}

// startRegistry runs /usr/bin/docker-registry with a temp data folder.
func startRegistry(t *testing.T, opts registryOptions) *testRegistry {
	t.Helper()
	if _, err := os.Stat("/usr/bin/docker-registry"); err != nil {
		t.Skipf("docker-registry not installed: %v", err)
	}
	dir := t.TempDir()
	r := &testRegistry{addr: freeAddr(t), logPath: filepath.Join(dir, "registry.log")}
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, r.config(t, dir, opts))
	logFile, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
	})
	r.waitReady(t)
	return r
}

// config renders the registry's YAML configuration.
func (r *testRegistry) config(t *testing.T, dir string, opts registryOptions) string {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: arbor-test-secret
`, filepath.Join(dir, "data"), r.addr)
	if opts.user == "" {
		return cfg
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(opts.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	writeFile(t, htpasswd, opts.user+":"+string(hash)+"\n")
	return cfg + fmt.Sprintf("auth:\n  htpasswd:\n    realm: arbor-test\n    path: %s\n", htpasswd)
}

// waitReady polls /v2/ until the registry answers (bounded).
func (r *testRegistry) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	for range 100 {
		resp, err := client.Get("http://" + r.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(r.logPath)
	t.Fatalf("docker-registry did not start on %s:\n%s", r.addr, log)
}

// blobGets counts GET requests for one blob in the registry access log.
func (r *testRegistry) blobGets(t *testing.T, digest string) int {
	t.Helper()
	log, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"GET /v2/[^ ]+/blobs/` + regexp.QuoteMeta(digest) + ` `)
	return len(re.FindAll(log, -1))
}

// freeAddr returns a currently free 127.0.0.1 TCP address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeFile writes content to path or fails the test.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct{ syncbuf.Buffer }

// count returns how many log lines contain all of parts.
func (b *syncBuffer) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
