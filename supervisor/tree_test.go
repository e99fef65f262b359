package supervisor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/internal/syncbuf"
)

func TestMain(m *testing.M) {
	// suture leaves goroutines behind for a RemoveAndWait that timed out;
	// only the stuck service test makes one. removeService.func1.1 sends on
	// the channel of the RemoveAndWait that gave up, which nobody reads any
	// more. removeService.func1 reports the stop timeout to its supervisor,
	// which nobody hears if that supervisor finished stopping first (the
	// test cancels the tree right after Stop).
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/thejerf/suture/v4.(*Supervisor).removeService.func1.1"),
		goleak.IgnoreTopFunction("github.com/thejerf/suture/v4.(*Supervisor).removeService.func1"))
}

// fake is a service driven by commands on its channel: "fail" returns an
// error, "panic" panics, "hang" ignores cancellation until released.
type fake struct {
	name    string
	cmds    chan string
	started chan struct{}
	release chan struct{}
}

func newFake(name string) *fake {
	return &fake{name: name, cmds: make(chan string), started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (f *fake) String() string { return f.name }

func (f *fake) Serve(ctx context.Context) error {
	f.started <- struct{}{}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case c := <-f.cmds:
		switch c {
		case "fail":
			return errors.New("told to fail")
		case "panic":
			panic("told to panic")
		case "hang":
			<-f.release
		}
	}
	return nil
}

var fast = Backoff{Threshold: 3, Decay: time.Second, Backoff: 300 * time.Millisecond, StopTimeout: 200 * time.Millisecond}

func startTree(t *testing.T, faults *fault.Injector) (*Tree, *syncbuf.Buffer) {
	t.Helper()
	return startTreeWith(t, fast, faults)
}

// startTreeWith is startTree with its own restart policy.
func startTreeWith(t *testing.T, policy Backoff, faults *fault.Injector) (*Tree, *syncbuf.Buffer) {
	t.Helper()
	sink := &syncbuf.Buffer{}
	return New(slog.New(slog.NewTextHandler(sink, nil)), policy, faults), sink
}

// backedOff returns the supervisor of each "Supervisor backing off" line.
func backedOff(logs string) []string {
	var sups []string
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, `msg="Supervisor backing off"`) {
			continue
		}
		for field := range strings.FieldsSeq(line) {
			if sup, ok := strings.CutPrefix(field, "supervisor="); ok {
				sups = append(sups, sup)
			}
		}
	}
	return sups
}

func serve(t *testing.T, tree *Tree) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tree.Serve(ctx) }()
	return cancel, done
}

func waitStart(t *testing.T, f *fake) {
	t.Helper()
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not start", f.name)
	}
}

// waitFor polls cond until it holds, failing the test after five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRestartAfterFailureAndPanic(t *testing.T) {
	tree, sink := startTree(t, nil)
	svc := newFake("worker")
	tree.Domain("core").Add(svc)
	cancel, done := serve(t, tree)

	waitStart(t, svc)
	svc.cmds <- "fail"
	waitStart(t, svc)
	svc.cmds <- "panic"
	waitStart(t, svc)

	// suture reports a failure to the hook while it restarts the service,
	// so the new run can start before the hook has logged and counted.
	for _, want := range []string{"Service failed", "told to fail", "Service panicked", "told to panic"} {
		waitFor(t, "log line "+want, func() bool { return strings.Contains(sink.String(), want) })
	}
	st, _ := tree.States().Get("worker")
	if st.Restarts != 2 || st.Panics != 1 || st.State != StateRunning {
		t.Fatalf("state after a failure and a panic: %+v", st)
	}
	tree.Stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBackoffPausesOnlyItsDomain(t *testing.T) {
	// The 4 failures must count as more than 3 however slowly a loaded
	// machine gets through them, so they hardly decay here.
	policy := Backoff{Threshold: 3, Decay: 30 * time.Second, Backoff: 300 * time.Millisecond, StopTimeout: time.Second}
	tree, sink := startTreeWith(t, policy, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", sink.String())
		}
	})
	flappy, steady := newFake("flappy"), newFake("steady")
	tree.Domain("core").Add(steady)
	tree.Domain("hooks").Add(flappy)
	cancel, done := serve(t, tree)
	waitStart(t, steady)

	for range 4 {
		waitStart(t, flappy)
		flappy.cmds <- "fail"
	}
	waitFor(t, "the hooks domain to back off", func() bool {
		return slices.Contains(backedOff(sink.String()), "hooks")
	})
	// The other domain keeps serving while hooks is paused.
	steady.cmds <- "fail"
	waitStart(t, steady)
	waitStart(t, flappy) // and the flapping service comes back after its pause
	if sups := backedOff(sink.String()); slices.ContainsFunc(sups, func(s string) bool { return s != "hooks" }) {
		t.Fatalf("supervisors that backed off: %v, want only hooks", sups)
	}

	tree.Stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStuckServiceIsNamedAndStopStillEnds(t *testing.T) {
	// The stop timeout applies to the healthy service too, so it must be
	// long enough for a loaded machine to stop that one in time.
	policy := fast
	policy.StopTimeout = time.Second
	tree, sink := startTreeWith(t, policy, nil)
	hung, other := newFake("stuck"), newFake("other")
	d := tree.Domain("core")
	d.Add(other)
	d.Add(hung)
	cancel, done := serve(t, tree)
	waitStart(t, other)
	waitStart(t, hung)
	hung.cmds <- "hang"

	start := time.Now()
	stuck := tree.Stop()
	cancel()
	if len(stuck) != 1 || stuck[0] != "stuck" {
		t.Fatalf("stuck services = %v", stuck)
	}
	if !strings.Contains(sink.String(), "Service did not stop in time") {
		t.Fatalf("log does not name the stuck service:\n%s", sink.String())
	}
	// The stuck service costs one stop timeout, the healthy one next to
	// nothing; five leave room for a slow machine but not for a hang.
	if took := time.Since(start); took > 5*policy.StopTimeout {
		t.Fatalf("stop took %s", took)
	}
	close(hung.release)
	<-done
	if st, _ := tree.States().Get("other"); st.State != StateStopped {
		t.Fatalf("other service state %s", st.State)
	}
}

func TestStopOrderIsReverse(t *testing.T) {
	tree, _ := startTree(t, nil)
	var mu sync.Mutex
	var order []string
	record := func(name string) *orderSvc {
		return &orderSvc{name: name, stopped: func() { mu.Lock(); order = append(order, name); mu.Unlock() }}
	}
	a := tree.Domain("a")
	a.Add(record("a1"))
	a.Add(record("a2"))
	tree.Domain("b").Add(record("b1"))
	cancel, done := serve(t, tree)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := tree.States().Get("b1"); st.State == StateRunning {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	tree.Stop()
	cancel()
	<-done
	if got := strings.Join(order, ","); got != "b1,a2,a1" {
		t.Fatalf("stop order %s, want b1,a2,a1", got)
	}
}

type orderSvc struct {
	name    string
	stopped func()
}

func (o *orderSvc) String() string { return o.name }
func (o *orderSvc) Serve(ctx context.Context) error {
	<-ctx.Done()
	o.stopped()
	return nil
}

func TestInjectedFaults(t *testing.T) {
	in := fault.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	tree, sink := startTree(t, in)
	svc := newFake("listener")
	tree.Domain("core").Add(svc)
	cancel, done := serve(t, tree)
	waitStart(t, svc)

	in.Arm("listener", fault.Mode{Kind: fault.Panic}, 1)
	waitStart(t, svc)
	in.Arm("listener", fault.Mode{Kind: fault.Error}, 2) // fails the running one and the next run
	waitStart(t, svc)

	st, _ := tree.States().Get("listener")
	if st.Panics != 1 || st.Restarts < 2 {
		t.Fatalf("after injected faults: %+v", st)
	}
	if !strings.Contains(sink.String(), "injected panic in service listener") {
		t.Fatalf("log lacks the injected panic:\n%s", sink.String())
	}
	tree.Stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFatalStopsTree(t *testing.T) {
	tree, _ := startTree(t, nil)
	tree.Domain("core").Add(fatalSvc{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := tree.Serve(ctx)
	if ctx.Err() != nil || !errors.Is(err, ErrFatal) {
		t.Fatalf("a fatal error did not stop the tree: %v (context: %v)", err, ctx.Err())
	}
}

type fatalSvc struct{}

func (fatalSvc) String() string { return "fatal" }
func (fatalSvc) Serve(context.Context) error {
	return Fatal(errors.New("socket is served by another process"))
}
