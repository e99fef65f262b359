// Package fault injects failures on purpose, so that tests and users can
// prove that Arbor survives its own faults. An Injector is armed through
// the daemon's /debug/fault endpoint (only with --enable-fault-injection)
// with a target (a supervised service, a CRI method or a named point inside
// a create or remove path), a Mode and a count; the next count calls or
// runs of that target then fail that way.
//
// A nil *Injector is valid and never fires, so production paths call it
// unconditionally.
package fault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrInjected is returned by a target armed with ModeError.
var ErrInjected = errors.New("injected fault")

// Kind is how an armed target fails.
type Kind string

// The kinds of fault.
const (
	Panic Kind = "panic" // the target panics
	Error Kind = "error" // the target returns ErrInjected
	Delay Kind = "delay" // the target stalls for Mode.Delay, then goes on
	Exit  Kind = "exit"  // the whole process dies at once, as with SIGKILL
)

// Mode is a Kind with its parameter.
type Mode struct {
	Kind  Kind
	Delay time.Duration
}

func (m Mode) String() string {
	if m.Kind == Delay {
		return fmt.Sprintf("delay=%s", m.Delay)
	}
	return string(m.Kind)
}

// ParseMode reads "panic", "error", "exit" or "delay=DURATION".
func ParseMode(s string) (Mode, error) {
	if d, ok := strings.CutPrefix(s, "delay="); ok {
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 {
			return Mode{}, fmt.Errorf("mode %q: delay needs a duration such as delay=2s", s)
		}
		return Mode{Kind: Delay, Delay: v}, nil
	}
	switch k := Kind(s); k {
	case Panic, Error, Exit:
		return Mode{Kind: k}, nil
	}
	return Mode{}, fmt.Errorf("mode %q: want panic, error, exit or delay=DURATION", s)
}

type arm struct {
	mode  Mode
	count int
}

// Armed describes one armed target.
type Armed struct {
	Target    string `json:"target"`
	Mode      string `json:"mode"`
	Remaining int    `json:"remaining"`
}

// Injector holds the armed targets. Its methods are safe for concurrent use.
type Injector struct {
	log *slog.Logger

	mu      sync.Mutex
	armed   map[string]*arm          // guarded by mu
	waiters map[string]chan struct{} // guarded by mu; signalled on Arm
}

// New returns an Injector with nothing armed.
func New(log *slog.Logger) *Injector {
	return &Injector{log: log, armed: map[string]*arm{}, waiters: map[string]chan struct{}{}}
}

// Arm makes the next count calls or runs of target fail with m.
func (in *Injector) Arm(target string, m Mode, count int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed[target] = &arm{mode: m, count: count}
	if ch, ok := in.waiters[target]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	in.log.Warn("Fault armed", "target", target, "mode", m.String(), "count", count)
}

// Take consumes one armed fault of target, if there is one.
func (in *Injector) Take(target string) (Mode, bool) {
	if in == nil {
		return Mode{}, false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	a, ok := in.armed[target]
	if !ok {
		return Mode{}, false
	}
	a.count--
	if a.count <= 0 {
		delete(in.armed, target)
	}
	in.log.Warn("Fault fired", "target", target, "mode", a.mode.String())
	return a.mode, true
}

// Notify returns a channel that receives a value whenever target is armed.
// A long-running service selects on it to fail while it runs.
func (in *Injector) Notify(target string) <-chan struct{} {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	ch, ok := in.waiters[target]
	if !ok {
		ch = make(chan struct{}, 1)
		in.waiters[target] = ch
	}
	return ch
}

// List returns the armed targets, sorted by name.
func (in *Injector) List() []Armed {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Armed, 0, len(in.armed))
	for t, a := range in.armed {
		out = append(out, Armed{Target: t, Mode: a.mode.String(), Remaining: a.count})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// Point is a named place in a call path. If target is armed it fails
// there: it panics, returns ErrInjected, sleeps (returning early with the
// context's error) or kills the process.
func (in *Injector) Point(ctx context.Context, target string) error {
	m, ok := in.Take(target)
	if !ok {
		return nil
	}
	return Fire(ctx, target, m)
}

// Fire makes the caller fail in mode m at target.
func Fire(ctx context.Context, target string, m Mode) error {
	switch m.Kind {
	case Panic:
		panic(fmt.Sprintf("injected panic at %s", target))
	case Error:
		return fmt.Errorf("%s: %w", target, ErrInjected)
	case Delay:
		// A slow step goes on even when its caller has given up, as a
		// slow disk or network would; ctx only ends the wait early.
		t := time.NewTimer(m.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	case Exit:
		Die()
	}
	return nil
}

// Die ends the process at once, as SIGKILL does: no deferred calls, no
// clean-shutdown file.
func Die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered asynchronously
}
