// Package events fans container events out to subscribers, as the CRI's
// GetContainerEvents stream needs. Publishing never blocks: each
// subscriber has a bounded buffer, and a subscriber whose buffer is full
// is dropped (its channel closed, Dropped reporting true) and counted,
// so a stalled client can never hold up a container operation.
package events

import (
	"log/slog"
	"sync"
	"sync/atomic"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultBuffer is the per-subscriber buffer when none is configured.
const DefaultBuffer = 1000

// Broker delivers every published value to every current subscriber. It
// is safe for concurrent use; the zero value is not usable, use New.
type Broker[T any] struct {
	buffer int
	log    *slog.Logger
	// OnDrop, if set before use, is called (outside the broker's lock)
	// each time a slow subscriber is dropped, for metrics.
	OnDrop func()

	mu     sync.Mutex
	subs   map[*Subscription[T]]struct{} // guarded by mu
	closed bool                          // guarded by mu

	dropped   atomic.Uint64
	published atomic.Uint64
}

// ContainerBroker is the broker of CRI container events.
type ContainerBroker = Broker[*runtimeapi.ContainerEventResponse]

// New returns a broker whose subscribers each buffer up to buffer values
// (DefaultBuffer when buffer <= 0).
func New[T any](buffer int, log *slog.Logger) *Broker[T] {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Broker[T]{buffer: buffer, log: log, subs: map[*Subscription[T]]struct{}{}}
}

// NewContainerBroker returns a broker of CRI container events.
func NewContainerBroker(buffer int, log *slog.Logger) *ContainerBroker {
	return New[*runtimeapi.ContainerEventResponse](buffer, log)
}

// Subscription is one subscriber's view of a broker.
type Subscription[T any] struct {
	ch      chan T
	dropped atomic.Bool
}

// Events delivers the published values in order. It is closed when the
// subscription ends: by Unsubscribe, by Close of the broker, or because
// the subscriber fell behind (then Dropped is true).
func (s *Subscription[T]) Events() <-chan T { return s.ch }

// Dropped reports whether the broker dropped this subscriber for being too
// slow; values published after its buffer filled were lost to it.
func (s *Subscription[T]) Dropped() bool { return s.dropped.Load() }

// Subscribe adds a subscriber. On a closed broker the subscription's
// channel is already closed.
func (b *Broker[T]) Subscribe() *Subscription[T] {
	s := &Subscription[T]{ch: make(chan T, b.buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Unsubscribe ends a subscription and closes its channel; ending one that
// already ended is fine.
func (b *Broker[T]) Unsubscribe(s *Subscription[T]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// Publish hands v to every subscriber without waiting: a subscriber whose
// buffer is full is dropped instead.
func (b *Broker[T]) Publish(v T) {
	b.published.Add(1)
	var dropped int
	b.mu.Lock()
	for s := range b.subs {
		select {
		case s.ch <- v:
		default:
			delete(b.subs, s)
			s.dropped.Store(true)
			close(s.ch)
			dropped++
		}
	}
	b.mu.Unlock()
	for range dropped {
		b.dropped.Add(1)
		b.log.Warn("Dropped a slow event subscriber", "buffer", b.buffer)
		if b.OnDrop != nil {
			b.OnDrop()
		}
	}
}

// Close ends every subscription; later subscriptions start closed and
// later publishes go nowhere.
func (b *Broker[T]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

// Subscribers is the number of current subscribers.
func (b *Broker[T]) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Dropped is how many subscribers were dropped for being too slow.
func (b *Broker[T]) Dropped() uint64 { return b.dropped.Load() }

// Published is how many values were published.
func (b *Broker[T]) Published() uint64 { return b.published.Load() }
