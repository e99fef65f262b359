package images

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/arbor-cri/arbor/internal/safe"
)

func TestFlightJoinReportsTheWaiters(t *testing.T) {
	g := newFlightGroup(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer g.close()
	release := make(chan struct{})
	fn := func(context.Context) (string, error) {
		<-release
		return "id", nil
	}
	noJoin := func(int) { t.Error("the first caller must start the pull, not join one") }
	results := make(chan string, 3)
	go func() {
		id, _ := g.do(context.Background(), "k", noJoin, fn)
		results <- id
	}()
	waitFor(t, "the first caller", func() bool { return g.waiting() == 1 })
	joins := make(chan int, 2)
	for i := range 2 {
		go func() {
			id, _ := g.do(context.Background(), "k", func(n int) { joins <- n }, fn)
			results <- id
		}()
		waitFor(t, "a joining caller", func() bool { return len(joins) > 0 })
		if n := <-joins; n != i+2 {
			t.Errorf("caller %d joined with %d waiting, want %d", i+2, n, i+2)
		}
	}
	close(release)
	for range 3 {
		if id := <-results; id != "id" {
			t.Errorf("caller got %q", id)
		}
	}
}

// TestFlightPanicIsTheError: a pull that panics (it runs in a goroutine of
// its own) fails for every caller with a *safe.Panic, and the next pull of
// the key starts afresh.
func TestFlightPanicIsTheError(t *testing.T) {
	g := newFlightGroup(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer g.close()
	_, err := g.do(context.Background(), "k", nil, func(context.Context) (string, error) { panic("library bug") })
	var p *safe.Panic
	if !errors.As(err, &p) || p.Value != "library bug" {
		t.Fatalf("a panicking pull returned %v, want its *safe.Panic", err)
	}
	id, err := g.do(context.Background(), "k", nil, func(context.Context) (string, error) { return "id", nil })
	if err != nil || id != "id" {
		t.Fatalf("the pull after a panic: %q, %v", id, err)
	}
}
