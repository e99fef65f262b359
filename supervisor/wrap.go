package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/arbor-cri/arbor/fault"
)

// errPanicked records a run that ended in a panic; suture logs the panic
// itself through the hook.
var errPanicked = errors.New("panicked")

// wrapped runs a Service, records its state and lets the fault injector
// break it: a fault armed for the service's name fails the next run at
// start, or the current run at once (its context is cancelled, and when it
// has returned the fault fires in the supervisor's goroutine).
type wrapped struct {
	inner  Service
	domain string
	states *States
	faults *fault.Injector
	log    *slog.Logger
}

func (w *wrapped) String() string { return w.inner.String() }

func (w *wrapped) Serve(ctx context.Context) error {
	name := w.inner.String()
	if m, ok := w.faults.Take(name); ok {
		return w.fire(ctx, m)
	}
	w.states.started(name)

	finished := false
	defer func() {
		if !finished {
			w.states.set(name, StateFailed, errPanicked)
		}
	}()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	injected, wait := w.watchFaults(runCtx, cancel, name)
	err := w.inner.Serve(runCtx)
	cancel()
	wait()
	finished = true

	if m := injected(); m != nil {
		return w.fire(ctx, *m)
	}
	switch {
	case ctx.Err() != nil:
		w.states.set(name, StateStopped, nil)
	case err == nil:
		w.states.set(name, StateFinished, nil)
	default:
		w.states.set(name, StateFailed, err)
	}
	return err
}

// watchFaults cancels the run when a fault is armed for name. It returns
// the fault that fired, if any, and a function that waits for the watcher.
func (w *wrapped) watchFaults(ctx context.Context, cancel func(), name string) (func() *fault.Mode, func()) {
	notify := w.faults.Notify(name)
	var (
		wg    sync.WaitGroup
		fired *fault.Mode
	)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-notify:
				if m, ok := w.faults.Take(name); ok {
					fired = &m
					cancel()
					return
				}
			}
		}
	})
	return func() *fault.Mode { return fired }, wg.Wait
}

// fire fails the current run of the service in mode m.
func (w *wrapped) fire(ctx context.Context, m fault.Mode) error {
	name := w.inner.String()
	var err error
	switch m.Kind {
	case fault.Panic:
		w.states.set(name, StateFailed, errPanicked)
		panic(fmt.Sprintf("injected panic in service %s", name))
	case fault.Delay:
		_ = fault.Fire(ctx, name, m)
		err = fmt.Errorf("service %s: injected delay of %s: %w", name, m.Delay, fault.ErrInjected)
	default:
		err = fault.Fire(ctx, name, m)
	}
	w.states.set(name, StateFailed, err)
	return err
}
