package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/arbor-cri/arbor/oci"
)

// leakOptions ignores goroutines that live for the whole process.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*Typed[...]).updateUnfinishedWorkLoop"),
}

// TestMain fails the run if any goroutine is left once the tests pass. It
// looks for a few seconds: the SPDY client's connection shutdown lingers
// for its one-second close timeout after a TLS close error.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		code = findLeaks(5 * time.Second)
	}
	os.Exit(code)
}

func findLeaks(limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		err := goleak.Find(leakOptions...)
		if err == nil {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests: %v\n", err)
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testLog() *slog.Logger {
	if os.Getenv("STREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeBackend answers lookups from maps and runs streams through funcs.
type fakeBackend struct {
	containers map[string]error  // id → ContainerRunning result
	pods       map[string]string // pod id → netns path
	podErrs    map[string]error  // pod id → PodNetNS error
	exec       func(ctx context.Context, id string, opts oci.ExecOptions) (int, error)
	attach     func(ctx context.Context, id string, opts AttachOptions) error
}

func (f *fakeBackend) ContainerRunning(id string) error {
	err, ok := f.containers[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return err
}

func (f *fakeBackend) PodNetNS(id string) (string, error) {
	if err, ok := f.podErrs[id]; ok {
		return "", err
	}
	ns, ok := f.pods[id]
	if !ok {
		return "", fmt.Errorf("pod %s: %w", id, ErrNotFound)
	}
	return ns, nil
}

func (f *fakeBackend) ExecIn(ctx context.Context, id string, opts oci.ExecOptions) (int, error) {
	return f.exec(ctx, id, opts)
}

func (f *fakeBackend) AttachTo(ctx context.Context, id string, opts AttachOptions) error {
	return f.attach(ctx, id, opts)
}

// serving is a Service running Serve in the background.
type serving struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startService builds a service over b and serves it until the test ends
// (or stop is called).
func startService(t *testing.T, cfg Config, b Backend) *serving {
	t.Helper()
	svc, err := New(cfg, b, testLog())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s := &serving{svc: svc}
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *serving) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done, s.once = cancel, make(chan error, 1), sync.Once{}
	go func() { s.done <- s.svc.Serve(ctx) }()
	waitServing(t, s.svc)
}

// stop cancels Serve and waits for it to return nil.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("Serve did not return after cancel")
		}
	})
}

// waitServing waits until the service has a run.
func waitServing(t *testing.T, svc *Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := svc.activeRun(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("service never started serving")
}

// runningBackend knows one running container "c1" and one pod "p1" on the
// host network.
func runningBackend() *fakeBackend {
	return &fakeBackend{
		containers: map[string]error{"c1": nil},
		pods:       map[string]string{"p1": ""},
	}
}

// stream runs a SPDY client (the kubelet's) against a streaming URL.
func stream(ctx context.Context, t *testing.T, cfg *rest.Config, rawURL string, opts remotecommand.StreamOptions) error {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parsing url: %v", err)
	}
	if cfg == nil {
		cfg = &rest.Config{}
	}
	exec, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatalf("NewSPDYExecutor: %v", err)
	}
	return exec.StreamWithContext(ctx, opts)
}

// oneSize is a TerminalSizeQueue that reports one size and then ends.
type oneSize struct {
	size *remotecommand.TerminalSize
}

func (q *oneSize) Next() *remotecommand.TerminalSize {
	s := q.size
	q.size = nil
	return s
}

var errFake = errors.New("fake backend failure")
