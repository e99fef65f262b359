package supervisor

import (
	"sort"
	"sync"
	"time"
)

// State is where a service is in its life.
type State string

// The states a service goes through.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateFailed   State = "failed"   // returned an error or panicked; about to restart
	StateBackoff  State = "backoff"  // its domain is paused after too many failures
	StateStopped  State = "stopped"  // stopped for good
	StateFinished State = "finished" // returned without error and will not be restarted
)

// ServiceState is a snapshot of one service for `arbor status tree`.
type ServiceState struct {
	Name      string    `json:"name"`
	Domain    string    `json:"domain"`
	State     State     `json:"state"`
	Restarts  int       `json:"restarts"`
	Panics    int       `json:"panics"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
}

// States is the registry of service states. Its methods are safe for
// concurrent use.
type States struct {
	mu       sync.Mutex
	services map[string]*ServiceState // guarded by mu
	backoff  map[string]bool          // guarded by mu; domain name → paused
}

func newStates() *States {
	return &States{services: map[string]*ServiceState{}, backoff: map[string]bool{}}
}

func (s *States) register(name, domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[name] = &ServiceState{Name: name, Domain: domain, State: StateStarting, Since: time.Now()}
}

func (s *States) set(name string, st State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.services[name]
	if !ok {
		return
	}
	ss.State, ss.Since = st, time.Now()
	if err != nil {
		ss.LastError = err.Error()
	}
}

func (s *States) started(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.services[name]; ok {
		if ss.State != StateStarting {
			ss.Restarts++
		}
		ss.State, ss.Since = StateRunning, time.Now()
	}
}

func (s *States) countPanic(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.services[name]; ok {
		ss.Panics++
	}
}

func (s *States) setDomainBackoff(domain string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backoff[domain] = on
}

// Snapshot returns every service, sorted by domain and name. A service in
// a paused domain that is not running shows as backoff.
func (s *States) Snapshot() []ServiceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceState, 0, len(s.services))
	for _, ss := range s.services {
		c := *ss
		if s.backoff[c.Domain] && c.State == StateFailed {
			c.State = StateBackoff
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Domain != out[j].Domain {
			return out[i].Domain < out[j].Domain
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Get returns the state of one service.
func (s *States) Get(name string) (ServiceState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.services[name]
	if !ok {
		return ServiceState{}, false
	}
	return *ss, true
}
