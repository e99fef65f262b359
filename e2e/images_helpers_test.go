package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// jsonUint is a protobuf 64-bit integer as crictl prints it: a JSON string
// (protojson) or a plain number.
type jsonUint uint64

func (n *jsonUint) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 64)
	*n = jsonUint(v)
	return err
}

// criImage is one image as `crictl images -o json` and `crictl inspecti
// -o json` print it.
type criImage struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags"`
	RepoDigests []string `json:"repoDigests"`
	Size        jsonUint `json:"size"`
	UID         *struct {
		Value jsonUint `json:"value"`
	} `json:"uid"`
	Username string `json:"username"`
	Pinned   bool   `json:"pinned"`
}

// listImages returns `crictl images -o json`.
func listImages(t *testing.T, d *harness.Daemon) []criImage {
	t.Helper()
	out, err := d.Crictl("images", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Images []criImage `json:"images"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("crictl images -o json: %v\n%s", err, out)
	}
	return resp.Images
}

// imageByID returns the listed image with id, or nil.
func imageByID(imgs []criImage, id string) *criImage {
	for i := range imgs {
		if imgs[i].ID == id {
			return &imgs[i]
		}
	}
	return nil
}

// inspectImage returns `crictl inspecti -o json ref`: the status and the
// verbose info's "pinned" and image config user.
func inspectImage(t *testing.T, d *harness.Daemon, ref string) (criImage, string) {
	t.Helper()
	out, err := d.Crictl("inspecti", "-o", "json", ref)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Status criImage `json:"status"`
		Info   struct {
			ImageSpec struct {
				Config struct {
					User string `json:"User"`
				} `json:"config"`
			} `json:"imageSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("crictl inspecti -o json %s: %v\n%s", ref, err, out)
	}
	return resp.Status, resp.Info.ImageSpec.Config.User
}

// imageFsUsed returns the image file system's used bytes from `crictl
// imagefsinfo -o json`.
func imageFsUsed(t *testing.T, d *harness.Daemon) uint64 {
	t.Helper()
	out, err := d.Crictl("imagefsinfo", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Status struct {
			ImageFilesystems []struct {
				UsedBytes struct {
					Value jsonUint `json:"value"`
				} `json:"usedBytes"`
			} `json:"imageFilesystems"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Status.ImageFilesystems) == 0 {
		t.Fatalf("crictl imagefsinfo -o json: %v\n%s", err, out)
	}
	return uint64(resp.Status.ImageFilesystems[0].UsedBytes.Value)
}

// crictlPull pulls ref with crictl and returns the image reference crictl
// printed ("Image is up to date for X").
func crictlPull(t *testing.T, d *harness.Daemon, ref string, args ...string) string {
	t.Helper()
	out, err := d.Crictl(append(append([]string{"pull"}, args...), ref)...)
	if err != nil {
		t.Fatalf("%v\n--- daemon log tail ---\n%s", err, logTail(d, 3000))
	}
	_, id, ok := strings.Cut(strings.TrimSpace(out), "Image is up to date for ")
	if !ok {
		t.Fatalf("crictl pull %s printed %q", ref, out)
	}
	return id
}

// imageID is the storage image ID of a catalog image (the config digest's hex).
func imageID(img fixture.Image) string { return strings.TrimPrefix(img.ConfigDigest, "sha256:") }

// logTail is the end of the daemon log, for failure messages.
func logTail(d *harness.Daemon, n int) string {
	s := d.Log()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// writeRegistriesConf writes a registries.conf that marks each address
// insecure (plain HTTP) and disables short names; it returns the daemon
// flags that use it.
func writeRegistriesConf(t *testing.T, addrs ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", a)
	}
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--registries-conf", conf, "--registries-conf-dir", filepath.Join(dir, "registries.d"),
		"--short-name-mode", "disabled"}
}

// ownRegistry starts a fresh registry (with basic auth when user is set),
// pushes refs to it and stops it when the test ends.
func ownRegistry(t *testing.T, user, pass string, refs ...string) (*fixture.Registry, fixture.Catalog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg, err := fixture.StartRegistry(ctx, fixture.RegistryOptions{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	cat, err := fixture.BuildImagesWith(ctx, fixture.BuildOptions{Registry: reg.Addr(), Username: user, Password: pass, Refs: refs})
	if err != nil {
		t.Fatal(err)
	}
	return reg, cat
}

// storageLeftovers lists what a pull may leave in the store: layer
// folders of the graph driver, staged layers and files in the pull's
// temporary folder. The driver's own marker files and link folder are
// not leftovers.
func storageLeftovers(t *testing.T, d *harness.Daemon) []string {
	t.Helper()
	root := filepath.Join(d.Root, "storage")
	var out []string
	for _, dir := range []string{"overlay", "overlay/tempdirs", "overlay/staging", "vfs/dir", "tmp"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			if dir == "overlay" && (!e.IsDir() || e.Name() == "l" || e.Name() == "tempdirs" || e.Name() == "staging") {
				continue // driver markers, short links, folders checked on their own
			}
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// waitUntil polls cond every 50ms for up to limit and reports whether it held.
func waitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// daemonStatus returns a field ("VmRSS", "VmHWM") of the daemon's
// /proc/PID/status, found by its socket on the command line.
func daemonStatus(t *testing.T, d *harness.Daemon, field string) string {
	t.Helper()
	for _, p := range harness.ProcessesMatching(d.Socket) {
		pid, cmd, _ := strings.Cut(p, " ")
		if !strings.HasPrefix(cmd, harness.Bin()+" ") {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	t.Fatalf("no arbor process serving %s", d.Socket)
	return ""
}

// slowProxy forwards TCP connections to a registry, sending the answers at
// a limited total rate, so that a pull lasts long enough to be cut.
type slowProxy struct {
	ln        net.Listener
	target    string
	rate      int64 // bytes per second, over all connections
	forwarded atomic.Int64
	open      atomic.Int64 // client connections being served

	mu     sync.Mutex
	start  time.Time
	budget int64         // bytes scheduled since start
	gate   chan struct{} // while not nil, answers wait for it to close (Hold)
	conns  map[net.Conn]bool
	closed chan struct{}
	wg     sync.WaitGroup
}

// startSlowProxy listens on a free loopback port; Close runs with t's cleanup.
func startSlowProxy(t *testing.T, target string, rate int64) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{ln: ln, target: target, rate: rate, start: time.Now(), conns: map[net.Conn]bool{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *slowProxy) Addr() string { return p.ln.Addr().String() }

// Hold sends nothing until the returned release is called, then resumes
// at the rate: concurrent callers can gather before any answer arrives.
// Requests still reach the registry; only the answers wait.
func (p *slowProxy) Hold() (release func()) {
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.start, p.budget, p.gate = time.Now(), 0, nil
			p.mu.Unlock()
			close(gate)
		})
	}
}

// StopAccepting closes the listener: new connections are refused, open
// ones go on until their registry side ends.
func (p *slowProxy) StopAccepting() { _ = p.ln.Close() }

// Close stops accepting, cuts every connection and waits for its goroutines.
func (p *slowProxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closed:
	default:
		close(p.closed)
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *slowProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers (or, with add false, forgets) a connection; it refuses
// new ones after Close.
func (p *slowProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	select {
	case <-p.closed:
		return false
	default:
	}
	p.conns[c] = true
	return true
}

// serve pipes one client connection to the registry and back, throttled.
func (p *slowProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	p.open.Add(1)
	defer p.open.Add(-1)
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer upstream.Close()
	if !p.track(client, true) || !p.track(upstream, true) {
		return
	}
	defer p.track(client, false)
	defer p.track(upstream, false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(upstream, client)
		_ = upstream.Close()
	}()
	p.copySlowly(client, upstream)
	_ = client.Close()
	<-done
}

// copySlowly copies src to dst in small chunks, each after its turn under
// the shared rate.
func (p *slowProxy) copySlowly(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(n) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.forwarded.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

// wait sleeps until n more bytes fit the rate, and while the proxy is
// held; false once the proxy closes.
func (p *slowProxy) wait(n int) bool {
	p.mu.Lock()
	if gate := p.gate; gate != nil {
		p.mu.Unlock()
		select {
		case <-gate:
		case <-p.closed:
			return false
		}
		p.mu.Lock()
	}
	if idle := time.Since(p.start) - time.Duration(p.budget*int64(time.Second)/p.rate); idle > 0 {
		p.budget += int64(idle) * p.rate / int64(time.Second) // no bursts after idle time
	}
	p.budget += int64(n)
	due := p.start.Add(time.Duration(p.budget * int64(time.Second) / p.rate))
	p.mu.Unlock()
	select {
	case <-time.After(time.Until(due)):
		return true
	case <-p.closed:
		return false
	}
}

// compressedSize sums the image's layer blob sizes.
func compressedSize(img fixture.Image) uint64 {
	var n int64
	for _, l := range img.Layers {
		n += l.Size
	}
	return uint64(n)
}

// checkUser requires the UID (or none when uid < 0) and user name.
func checkUser(t *testing.T, st criImage, uid int64, username string) {
	t.Helper()
	switch {
	case uid >= 0 && (st.UID == nil || int64(st.UID.Value) != uid):
		t.Errorf("uid %+v, want %d", st.UID, uid)
	case uid < 0 && st.UID != nil:
		t.Errorf("uid %d, want none", st.UID.Value)
	}
	if st.Username != username {
		t.Errorf("username %q, want %q", st.Username, username)
	}
}

// checkImagesTable requires `crictl images --digests` to show the image in
// repository repo with tag, its digest and ID (both truncated to 13).
func checkImagesTable(t *testing.T, d *harness.Daemon, repo string, img fixture.Image, tag string) {
	t.Helper()
	out, err := d.Crictl("images", "--digests")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{repo, tag, strings.TrimPrefix(img.Digest, "sha256:")[:13], imageID(img)[:13]}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && slices.Equal(f[:4], want) {
			return
		}
	}
	t.Errorf("crictl images --digests has no row %v:\n%s", want, out)
}

// sameSet reports whether a and b hold the same strings in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// countRequests counts GETs of path that the registry answered.
func countRequests(t *testing.T, reg *fixture.Registry, path string) int {
	t.Helper()
	entries, err := reg.Requests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Method == "GET" && e.URI == path {
			n++
		}
	}
	return n
}

// unusedAddr returns a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// cancelOnStoredLayer returns a context that is cancelled once the pull
// has stored a layer in the graph driver (so the daemon must remove
// layers, not only temporary files).
func cancelOnStoredLayer(t *testing.T, d *harness.Daemon) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		stored := waitUntil(60*time.Second, func() bool {
			return ctx.Err() != nil || slices.ContainsFunc(storageLeftovers(t, d), isLayerDir)
		})
		if !stored {
			t.Errorf("no layer was stored within a minute")
		}
		cancel()
	}()
	return ctx, func() { cancel(); <-done }
}

// isLayerDir reports whether a storageLeftovers entry is a layer folder.
func isLayerDir(entry string) bool {
	dir, name := filepath.Split(entry)
	return (dir == "overlay/" || dir == "vfs/dir/") && len(name) == 64
}

// skopeoCopy copies ref into a fresh containers-storage and returns how
// long the copy took.
func skopeoCopy(t *testing.T, skopeo, ref string) time.Duration {
	t.Helper()
	dir, err := os.MkdirTemp("", harness.TestMarker+"skopeo-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	root, run := filepath.Join(dir, "root"), filepath.Join(dir, "run")
	dest := "containers-storage:[overlay@" + root + "+" + run + "]" + ref
	start := time.Now()
	out, err := exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, dest).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	// Unmount anything the overlay driver left mounted before removal.
	for _, m := range harness.MountsUnder(dir) {
		_ = exec.Command("umount", m).Run()
	}
	return took
}
