package events

import (
	"io"
	"log/slog"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// drain reads a subscription until its channel closes.
func drain[T any](s *Subscription[T]) []T {
	var out []T
	for v := range s.Events() {
		out = append(out, v)
	}
	return out
}

func TestDeliversInOrderToEverySubscriber(t *testing.T) {
	b := New[int](10, quiet())
	a, c := b.Subscribe(), b.Subscribe()
	for i := range 5 {
		b.Publish(i)
	}
	b.Unsubscribe(a)
	b.Unsubscribe(a) // twice is fine
	b.Publish(99)
	b.Close()
	for name, s := range map[string]*Subscription[int]{"unsubscribed": a, "closed": c} {
		got := drain(s)
		want := []int{0, 1, 2, 3, 4}
		if name == "closed" {
			want = append(want, 99)
		}
		if len(got) != len(want) {
			t.Fatalf("%s got %v, want %v", name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s got %v, want %v", name, got, want)
			}
		}
		if s.Dropped() {
			t.Fatalf("%s was not dropped", name)
		}
	}
	if n := b.Published(); n != 6 {
		t.Fatalf("published %d, want 6", n)
	}
}

// TestSlowSubscriberIsDropped publishes far past a stalled subscriber's
// buffer: Publish must never block on it (the loop would hang), the stalled
// one is dropped once, and a subscriber that keeps up gets everything.
func TestSlowSubscriberIsDropped(t *testing.T) {
	b := New[int](4, quiet())
	var drops int
	b.OnDrop = func() { drops++ }
	slow := b.Subscribe()
	fast := b.Subscribe()
	const n = 100
	for i := range n {
		b.Publish(i)
		if v, ok := <-fast.Events(); !ok || v != i {
			t.Fatalf("fast subscriber got %d (open %v), want %d", v, ok, i)
		}
	}
	if !slow.Dropped() || fast.Dropped() || b.Dropped() != 1 || drops != 1 {
		t.Fatalf("slow dropped=%v fast dropped=%v, broker dropped %d, hook %d: want the slow one dropped once",
			slow.Dropped(), fast.Dropped(), b.Dropped(), drops)
	}
	if kept := drain(slow); len(kept) != 4 || kept[3] != 3 {
		t.Fatalf("the dropped subscriber keeps its full buffer: %v", kept)
	}
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers, want the fast one", b.Subscribers())
	}
	b.Unsubscribe(slow) // unsubscribing a dropped one is fine
	b.Close()
	if _, ok := <-fast.Events(); ok {
		t.Fatal("Close must end the fast subscription")
	}
}

func TestClosedBroker(t *testing.T) {
	b := NewContainerBroker(0, quiet())
	b.Close()
	s := b.Subscribe()
	if _, ok := <-s.Events(); ok {
		t.Fatal("a subscription to a closed broker starts closed")
	}
	b.Publish(nil) // goes nowhere, does not panic
	if b.buffer != DefaultBuffer {
		t.Fatalf("buffer %d, want the default", b.buffer)
	}
}

func TestConcurrentPublishAndSubscribe(t *testing.T) {
	b := New[int](1, quiet())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				b.Publish(i)
			}
		})
		wg.Go(func() {
			for range 50 {
				s := b.Subscribe()
				select {
				case <-s.Events():
				default:
				}
				b.Unsubscribe(s)
			}
		})
	}
	wg.Wait()
	b.Close()
	if b.Subscribers() != 0 {
		t.Fatalf("%d subscribers left", b.Subscribers())
	}
}
