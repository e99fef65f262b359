package images

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/arbor-cri/arbor/internal/safe"
)

// flightGroup runs at most one pull per key at a time and lets every
// concurrent caller with that key wait for the same result. The shared
// pull runs on its own context: a caller that gives up only stops waiting,
// and the pull is cancelled once every waiting caller has given up.
type flightGroup struct {
	log     *slog.Logger
	mu      sync.Mutex
	flights map[string]*flight
	base    context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup // one per running pull goroutine
}

// flight is one shared pull.
type flight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	waiters int
	id      string
	err     error
}

func newFlightGroup(log *slog.Logger) *flightGroup {
	base, stop := context.WithCancel(context.Background())
	return &flightGroup{log: log, flights: map[string]*flight{}, base: base, stop: stop}
}

// do returns the result of fn for key, starting fn unless a pull with the
// same key is already running; joining one, it calls joined (if not nil)
// with the number of callers now waiting on it. It returns ctx's error if
// ctx ends first.
func (g *flightGroup) do(ctx context.Context, key string, joined func(waiters int),
	fn func(context.Context) (string, error),
) (string, error) {
	f, waiters, started := g.join(key, fn)
	if !started && joined != nil {
		joined(waiters)
	}
	select {
	case <-f.done:
		return f.id, f.err
	case <-ctx.Done():
		g.leave(key, f)
		return "", ctx.Err()
	}
}

// join registers the caller on the running flight for key or starts one
// (started). It returns the flight and its number of waiting callers.
func (g *flightGroup) join(key string, fn func(context.Context) (string, error)) (f *flight, waiters int, started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.flights[key]
	if !ok {
		ctx, cancel := context.WithCancel(g.base)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.flights[key] = f
		g.wg.Add(1)
		go g.run(ctx, key, f, fn)
	}
	f.waiters++
	return f, f.waiters, !ok
}

// leave unregisters a caller that stopped waiting; the last one to leave
// cancels the pull and forgets it so that a later caller starts afresh.
func (g *flightGroup) leave(key string, f *flight) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	f.cancel()
	if g.flights[key] == f {
		delete(g.flights, key)
	}
}

// run executes fn and publishes its result to the waiters. A panic in fn
// (storage and image library code runs here, in a goroutine of its own)
// is logged once and is their error, a *safe.Panic.
func (g *flightGroup) run(ctx context.Context, key string, f *flight, fn func(context.Context) (string, error)) {
	defer g.wg.Done()
	var id string
	err := safe.Call(func() (err error) {
		id, err = fn(ctx)
		return err
	})
	var p *safe.Panic
	if errors.As(err, &p) {
		safe.Log(g.log, "shared image pull", p) // once; each caller's failed call names the image
	}
	g.mu.Lock()
	f.id, f.err = id, err
	if g.flights[key] == f {
		delete(g.flights, key)
	}
	g.mu.Unlock()
	f.cancel()
	close(f.done)
}

// waiting returns how many callers wait on running pulls (for tests).
func (g *flightGroup) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, f := range g.flights {
		n += f.waiters
	}
	return n
}

// close cancels all running pulls and waits for them to finish.
func (g *flightGroup) close() {
	g.stop()
	g.wg.Wait()
}
