// Package safe keeps a panic in a goroutine the daemon starts itself from
// ending the process. The CRI boundary recovers the panics of handlers and
// suture those of services, but each covers only its own goroutine: a
// goroutine started beside them runs bare. Call turns a panic into an
// error, Run and Go also log it, and Group hands it back to the goroutine
// that waits, where the boundary or the supervisor deals with it as with
// any other.
package safe

import (
	"errors"
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

// Recovered turns what recover returned into a *Panic with the stack of
// the goroutine it is called in, which during the panic is still the
// panicking one; nil stays nil and a *Panic raised again stays as it was.
func Recovered(r any) *Panic {
	switch r := r.(type) {
	case nil:
		return nil
	case *Panic:
		return r
	default:
		return &Panic{Value: r, Stack: debug.Stack()}
	}
}

// Call runs f and returns its error, or its panic as a *Panic.
func Call(f func() error) (err error) {
	defer func() {
		if p := Recovered(recover()); p != nil {
			err = p
		}
	}()
	return f()
}

// Run runs f in this goroutine. A panic in it is logged as an error with
// its stack, naming what f does, and returned as a *Panic.
func Run(log *slog.Logger, what string, f func()) error {
	err := Call(func() error { f(); return nil })
	if err != nil {
		Log(log, what, err)
	}
	return err
}

// Go runs f in a new goroutine, as Run does.
func Go(log *slog.Logger, what string, f func()) {
	go func() { _ = Run(log, what, f) }()
}

// Log logs err as the failure of what; a *Panic is logged with its stack.
func Log(log *slog.Logger, what string, err error) {
	var p *Panic
	if errors.As(err, &p) {
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
			if p := Recovered(recover()); p != nil {
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
