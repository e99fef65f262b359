package exitmonitor

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type seen struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seen) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id]++
}

func (s *seen) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

func waitFor(t *testing.T, s *seen, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !s.has(id) {
		if time.Now().After(deadline) {
			t.Fatalf("exit of %s not reported", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReportsOldAndNewExits(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "before"), []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &seen{ids: map[string]int{}}
	m := New(dir, s.add, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()

	waitFor(t, s, "before")
	// An atomic write: a temporary file renamed into place.
	tmp := filepath.Join(dir, ".after.tmp")
	if err := os.WriteFile(tmp, []byte("137"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "after")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "after")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.has(".after.tmp") {
		t.Fatal("a temporary file was reported as a container")
	}
}

func TestSweepsWhileServing(t *testing.T) {
	m := New(t.TempDir(), func(string) {}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sweeps := make(chan struct{}, 10)
	m.Sweep = func() { sweeps <- struct{}{} }
	m.SweepInterval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	for range 3 {
		select {
		case <-sweeps:
		case <-time.After(5 * time.Second):
			t.Fatal("the monitor does not sweep")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
