package images

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHost is a registry name that only exists in the test registries.conf.
const fakeHost = "registry.example.test"

// testEnv is a Service on a temp store with its own registries.conf.
type testEnv struct {
	svc  *Service
	cfg  Config
	logs *syncBuffer
	dir  string
}

// envOptions tunes newEnv.
type envOptions struct {
	registries []string // hosts marked insecure; the first also backs fakeHost
	search     []string // unqualified-search registries
	mutate     func(*Config)
}

// newEnv opens a Service with overlay storage in t.TempDir() and closes
// it (unmounting everything) when the test ends.
func newEnv(t *testing.T, opts envOptions) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{dir: dir, logs: &syncBuffer{}}
	must(t, os.MkdirAll(filepath.Join(dir, "registries.d"), 0o755))
	writeFile(t, filepath.Join(dir, "registries.conf"), registriesConf(opts))
	writeFile(t, filepath.Join(dir, "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`)
	e.cfg = Config{
		Root:                filepath.Join(dir, "root"),
		RunRoot:             filepath.Join(dir, "run"),
		Driver:              "overlay",
		RegistriesConf:      filepath.Join(dir, "registries.conf"),
		RegistriesConfDir:   filepath.Join(dir, "registries.d"),
		SignaturePolicy:     filepath.Join(dir, "policy.json"),
		AuthFile:            filepath.Join(dir, "auth.json"),
		PullProgressTimeout: time.Minute,
		PauseImage:          fakeHost + "/pause:3.10",
	}
	if opts.mutate != nil {
		opts.mutate(&e.cfg)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(e.logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := Open(e.cfg, log)
	if err != nil {
		t.Fatalf("opening service: %v", err)
	}
	e.svc = svc
	t.Cleanup(func() {
		svc.flights.close()
		if _, err := svc.store.Shutdown(true); err != nil {
			t.Errorf("shutting down store: %v", err)
		}
	})
	return e
}

// registriesConf renders a registries.conf for opts.
func registriesConf(opts envOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unqualified-search-registries = [%s]\nshort-name-mode = \"enforcing\"\n", quoteList(opts.search))
	for _, host := range opts.registries {
		fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", host)
	}
	if len(opts.registries) > 0 {
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", fakeHost, opts.registries[0])
	}
	return b.String()
}

func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(quoted, ", ")
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// layerCount returns the number of layers in the store.
func (e *testEnv) layerCount(t *testing.T) int {
	t.Helper()
	layers, err := e.svc.store.Layers()
	must(t, err)
	return len(layers)
}

// imageCount returns the number of images in the store.
func (e *testEnv) imageCount(t *testing.T) int {
	t.Helper()
	imgs, err := e.svc.store.Images()
	must(t, err)
	return len(imgs)
}

// stallProxy forwards to a registry but holds the body of one blob after
// sending half of it, until released or the client goes away.
type stallProxy struct {
	addr    string
	digest  string
	stalled chan struct{} // closed when the first stall begins
	release chan struct{}
	once    sync.Once
	relOnce sync.Once
}

// startStallProxy proxies to the registry at target, stalling blob digest.
func startStallProxy(t *testing.T, target, digest string) *stallProxy {
	t.Helper()
	p := &stallProxy{digest: digest, stalled: make(chan struct{}), release: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ModifyResponse = p.modify
	rp.FlushInterval = -1
	srv := httptest.NewServer(rp)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(func() {
		p.unblock()
		srv.CloseClientConnections()
		srv.Close()
	})
	return p
}

// unblock lets stalled bodies finish.
func (p *stallProxy) unblock() { p.relOnce.Do(func() { close(p.release) }) }

// modify wraps the stalled blob's body.
func (p *stallProxy) modify(resp *http.Response) error {
	req := resp.Request
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/blobs/"+p.digest) && resp.StatusCode == http.StatusOK {
		resp.Body = &stallBody{ReadCloser: resp.Body, proxy: p, left: resp.ContentLength / 2, done: req.Context().Done()}
	}
	return nil
}

// stallBody passes `left` bytes, then blocks until release or done.
type stallBody struct {
	io.ReadCloser
	proxy *stallProxy
	left  int64
	done  <-chan struct{}
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.proxy.once.Do(func() { close(b.proxy.stalled) })
		select {
		case <-b.proxy.release:
			return b.ReadCloser.Read(p)
		case <-b.done:
			return 0, io.ErrUnexpectedEOF
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
