// Package supervisor is the glue between Arbor's services and
// github.com/thejerf/suture/v4: the root tree with one sub-supervisor per
// failure domain, the event hook that turns suture's events into log lines
// and restart counters, a wrapper that records each service's state and
// lets the fault injector break it, and an ordered graceful stop.
//
// suture backs off a whole supervisor once its children fail too often, so
// each failure domain gets its own sub-supervisor: a flapping hook watcher
// never pauses the CRI listener.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/thejerf/suture/v4"

	"github.com/arbor-cri/arbor/fault"
)

// Service is what the tree runs: suture's one-method contract plus a name.
// Serve runs until ctx is cancelled and must return soon after; returning
// an error or panicking gets it restarted with backoff.
type Service interface {
	Serve(ctx context.Context) error
	String() string
}

// ErrFatal wraps an error that should stop the whole daemon.
var ErrFatal = suture.ErrTerminateSupervisorTree

// Fatal marks err as one that stops the whole tree instead of restarting
// the service.
func Fatal(err error) error { return fmt.Errorf("%w: %w", ErrFatal, err) }

// Backoff is the restart policy of one sub-supervisor.
type Backoff struct {
	Threshold   float64       // decaying failure count that triggers backoff
	Decay       time.Duration // half-life of the failure count
	Backoff     time.Duration // pause once past the threshold
	StopTimeout time.Duration // how long a child may take to stop
}

func (b Backoff) spec(hook suture.EventHook) suture.Spec {
	return suture.Spec{
		EventHook:        hook,
		FailureThreshold: b.Threshold,
		FailureDecay:     b.Decay.Seconds(),
		FailureBackoff:   b.Backoff,
		Timeout:          b.StopTimeout,
	}
}

// Tree is the root supervisor and its failure domains.
type Tree struct {
	log    *slog.Logger
	root   *suture.Supervisor
	states *States
	faults *fault.Injector
	policy Backoff

	mu      sync.Mutex
	domains []*Domain // guarded by mu; in start order
}

// New returns an empty tree whose domains use policy unless given their own.
func New(log *slog.Logger, policy Backoff, faults *fault.Injector) *Tree {
	t := &Tree{log: log, states: newStates(), faults: faults, policy: policy}
	t.root = suture.New("arbor", policy.spec(t.hook))
	return t
}

// States returns the registry of service states that /tree reports.
func (t *Tree) States() *States { return t.states }

// Domain adds a failure domain: a sub-supervisor of the root with its own
// backoff. Domains start in the order they are added and stop in reverse.
func (t *Tree) Domain(name string) *Domain {
	d := &Domain{tree: t, name: name, sup: suture.New(name, t.policy.spec(t.hook))}
	t.mu.Lock()
	t.domains = append(t.domains, d)
	t.mu.Unlock()
	d.token = t.root.Add(d.sup)
	return d
}

// Serve runs the tree until ctx is cancelled or a service returns a fatal
// error. Call Stop first for an ordered shutdown.
func (t *Tree) Serve(ctx context.Context) error {
	err := t.root.Serve(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Stop removes the domains' services in reverse start order, each given
// the stop timeout, and names any that is stuck. It returns the names of
// stuck services.
func (t *Tree) Stop() []string {
	t.mu.Lock()
	domains := append([]*Domain(nil), t.domains...)
	t.mu.Unlock()
	var stuck []string
	for i := len(domains) - 1; i >= 0; i-- {
		stuck = append(stuck, domains[i].stop()...)
	}
	return stuck
}

// Domain is one failure domain of the tree.
type Domain struct {
	tree  *Tree
	name  string
	sup   *suture.Supervisor
	token suture.ServiceToken

	mu       sync.Mutex
	services []added // guarded by mu; in start order
}

type added struct {
	name  string
	token suture.ServiceToken
}

// Add starts svc in this domain under its name, with state tracking and
// fault injection.
func (d *Domain) Add(svc Service) {
	w := &wrapped{inner: svc, domain: d.name, states: d.tree.states, faults: d.tree.faults, log: d.tree.log}
	d.tree.states.register(svc.String(), d.name)
	token := d.sup.Add(w)
	d.mu.Lock()
	d.services = append(d.services, added{name: svc.String(), token: token})
	d.mu.Unlock()
}

func (d *Domain) stop() []string {
	d.mu.Lock()
	services := append([]added(nil), d.services...)
	d.services = nil
	d.mu.Unlock()
	timeout := d.tree.policy.StopTimeout
	var stuck []string
	for i := len(services) - 1; i >= 0; i-- {
		s := services[i]
		d.tree.log.Debug("Stopping service", "service", s.name)
		if err := d.sup.RemoveAndWait(s.token, timeout); err != nil {
			d.tree.log.Error("Service did not stop in time", "service", s.name, "timeout", timeout)
			stuck = append(stuck, s.name)
			continue
		}
		d.tree.states.set(s.name, StateStopped, nil)
	}
	return stuck
}
