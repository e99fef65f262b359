package safe

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/internal/syncbuf"
)

func TestCall(t *testing.T) {
	want := errors.New("plain")
	if err := Call(func() error { return want }); err != want {
		t.Errorf("Call of an error = %v", err)
	}
	err := Call(func() error { panic("boom") })
	var p *Panic
	if !errors.As(err, &p) || p.Value != "boom" || !strings.Contains(string(p.Stack), "safe_test.go") {
		t.Fatalf("Call of a panic = %v (%T), want a *Panic with the stack", err, err)
	}
}

func TestGoLogsAPanic(t *testing.T) {
	var out syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	Go(log, "test worker", func() { panic("boom") })
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "Goroutine panicked") {
		if time.Now().After(deadline) {
			t.Fatalf("no panic logged: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := out.String(); !strings.Contains(s, `goroutine="test worker"`) || !strings.Contains(s, "panic=boom") || !strings.Contains(s, "stack=") {
		t.Errorf("log line %q lacks the goroutine, the panic or the stack", s)
	}
}

func TestGroupRaisesThePanicInWait(t *testing.T) {
	var g Group
	ran := 0
	var mu sync.Mutex
	for i := range 3 {
		g.Go(func() {
			mu.Lock()
			ran++
			mu.Unlock()
			if i == 1 {
				panic("worker 1")
			}
		})
	}
	defer func() {
		p, ok := recover().(*Panic)
		if !ok || p.Value != "worker 1" || ran != 3 {
			t.Errorf("Wait raised %v after %d workers ran, want the *Panic of worker 1 after all 3", p, ran)
		}
	}()
	g.Wait()
	t.Error("Wait returned despite a panic")
}

func TestGroupWithoutPanic(t *testing.T) {
	var g Group
	n := 0
	var mu sync.Mutex
	for range 5 {
		g.Go(func() { mu.Lock(); n++; mu.Unlock() })
	}
	g.Wait()
	if n != 5 {
		t.Errorf("%d of 5 ran", n)
	}
}

func TestRecoveredKeepsARaisedPanic(t *testing.T) {
	if Recovered(nil) != nil {
		t.Error("Recovered(nil) is not nil")
	}
	p := &Panic{Value: "first", Stack: []byte("the first stack")}
	if got := Recovered(p); got != p {
		t.Errorf("Recovered of a *Panic = %v, want the same one with its stack", got)
	}
	if got := Recovered("fresh"); got.Value != "fresh" || !strings.Contains(string(got.Stack), "safe_test.go") {
		t.Errorf("Recovered(\"fresh\") = %+v, want a *Panic with this stack", got)
	}
}

func TestRunLogsAndReturnsAPanic(t *testing.T) {
	var out syncbuf.Buffer
	err := Run(slog.New(slog.NewTextHandler(&out, nil)), "inline", func() { panic("boom") })
	var p *Panic
	if !errors.As(err, &p) || !strings.Contains(out.String(), `goroutine=inline`) {
		t.Errorf("Run = %v, log %q; want the *Panic returned and logged", err, out.String())
	}
	if err := Run(slog.New(slog.NewTextHandler(&out, nil)), "calm", func() {}); err != nil {
		t.Errorf("Run of a calm f = %v", err)
	}
}
