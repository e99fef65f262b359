package cri

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/internal/safe"
)

func TestReadAheadKeepsOrderAndSkips(t *testing.T) {
	xs := make([]int, 3*readBatch+5)
	for i := range xs {
		xs[i] = i
	}
	got := slices.Collect(readAhead(context.Background(), xs, func(x *int) (int, bool) {
		return *x * 10, *x%7 != 0
	}))
	var want []int
	for _, x := range xs {
		if x%7 != 0 {
			want = append(want, x*10)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("readAhead = %v, want %v", got, want)
	}
}

// TestReadAheadReadsAtOnce needs readWorkers reads in flight together: each
// read waits until that many have started.
func TestReadAheadReadsAtOnce(t *testing.T) {
	defer func(n int) { readWorkers = n }(readWorkers)
	readWorkers = 4
	var mu sync.Mutex
	started := 0
	all := make(chan struct{})
	read := func(x *int) (int, bool) {
		mu.Lock()
		if started++; started == readWorkers {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Error("reads ran one after another")
		}
		return *x, true
	}
	if got := slices.Collect(readAhead(context.Background(), []int{1, 2, 3, 4}, read)); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("readAhead = %v", got)
	}
}

func TestReadAheadStops(t *testing.T) {
	xs := make([]int, 4*readBatch)
	var mu sync.Mutex
	reads := 0
	count := func(x *int) (int, bool) {
		mu.Lock()
		reads++
		mu.Unlock()
		return *x, true
	}
	// A consumer that stops after one item leaves the later batches unread.
	for range readAhead(context.Background(), xs, count) {
		break
	}
	if reads != readBatch {
		t.Errorf("%d reads after the consumer stopped at the first item, want one batch of %d", reads, readBatch)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reads = 0
	if got := slices.Collect(readAhead(ctx, xs, count)); len(got) != 0 || reads != 0 {
		t.Errorf("with an ended context: %d items, %d reads", len(got), reads)
	}
}

// TestReadAheadRaisesAPanic: a read that panics in a worker panics the
// consumer's goroutine, where the CRI boundary recovers, with the
// worker's stack.
func TestReadAheadRaisesAPanic(t *testing.T) {
	defer func() {
		p, ok := recover().(*safe.Panic)
		if !ok || p.Value != "bad cgroup" || !strings.Contains(string(p.Stack), "readahead_test.go") {
			t.Errorf("consumer recovered %v, want the worker's *safe.Panic", p)
		}
	}()
	for range readAhead(context.Background(), []int{1, 2, 3}, func(x *int) (int, bool) {
		if *x == 2 {
			panic("bad cgroup")
		}
		return *x, true
	}) {
	}
	t.Error("readAhead ended without the panic")
}
