// Package safe keeps a panic in a goroutine the daemon starts itself from
// ending the process. The CRI boundary recovers the panics of handlers and
// suture those of services, but each covers only its own goroutine: a
// goroutine started beside them runs bare. Call turns a panic into an
// error, Go logs it, and Group hands it back to the goroutine that waits,
// where the boundary or the supervisor deals with it as with any other.
package safe

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// Panic is a recovered panic with the stack of the goroutine it ended.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// recovered turns the value recover returned into a *Panic (nil for none).
func recovered(r any) *Panic {
	if r == nil {
		return nil
	}
	return &Panic{Value: r, Stack: debug.Stack()}
}

// Call runs f and returns its error, or its panic as a *Panic.
func Call(f func() error) (err error) {
	defer func() {
		if p := recovered(recover()); p != nil {
			err = p
		}
	}()
	return f()
}

// Go runs f in a new goroutine. A panic in it is logged as an error with
// its stack, naming what the goroutine did, and goes no further.
func Go(log *slog.Logger, what string, f func()) {
	go func() {
		if err := Call(func() error { f(); return nil }); err != nil {
			Log(log, what, err)
		}
	}()
}

// Log logs err; a *Panic is logged with its stack.
func Log(log *slog.Logger, what string, err error) {
	if p, ok := err.(*Panic); ok {
		log.Error("Goroutine panicked", "goroutine", what, "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
		return
	}
	log.Error("Goroutine failed", "goroutine", what, "error", err)
}

// Group runs goroutines and waits for them; the first panic among them is
// raised again, as a *Panic, in the goroutine that calls Wait.
type Group struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	first *Panic // guarded by mu
}

// Go runs f in a goroutine of the group.
func (g *Group) Go(f func()) {
	g.wg.Go(func() {
		defer func() {
			if p := recovered(recover()); p != nil {
				g.mu.Lock()
				if g.first == nil {
					g.first = p
				}
				g.mu.Unlock()
			}
		}()
		f()
	})
}

// Wait waits for every goroutine of the group, then panics with the first
// panic among them, if there was one.
func (g *Group) Wait() {
	g.wg.Wait()
	g.mu.Lock()
	p := g.first
	g.mu.Unlock()
	if p != nil {
		panic(p)
	}
}
