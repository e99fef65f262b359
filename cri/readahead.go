package cri

import (
	"context"
	"iter"
	"runtime"
	"slices"
	"sync/atomic"

	"github.com/arbor-cri/arbor/internal/safe"
)

// readBatch is how many objects readAhead reads before it yields them:
// enough to keep every worker busy, few enough that a streaming list
// holds little.
const readBatch = 64

// readWorkers is how many objects readAhead reads at once: stats calls
// spend their time in system calls on cgroup files, which scale with the
// cores; at most 8, so that a large node keeps cores for everything else.
var readWorkers = min(runtime.GOMAXPROCS(0), 8)

// readAhead yields read(x) for each x of xs in order, reading up to
// readWorkers of them at once, a batch at a time; an x whose read returns
// false is skipped. It stops when ctx ends or the consumer stops.
func readAhead[T, R any](ctx context.Context, xs []T, read func(*T) (R, bool)) iter.Seq[R] {
	return func(yield func(R) bool) {
		for batch := range slices.Chunk(xs, readBatch) {
			if ctx.Err() != nil {
				return
			}
			out := make([]R, len(batch))
			ok := make([]bool, len(batch))
			var next atomic.Int64
			// A panic in a read is raised again here, in the handler's
			// goroutine, where the CRI boundary recovers it.
			var g safe.Group
			for range min(readWorkers, len(batch)) {
				g.Go(func() {
					for i := int(next.Add(1) - 1); i < len(batch) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
						out[i], ok[i] = read(&batch[i])
					}
				})
			}
			g.Wait()
			for i := range batch {
				if ok[i] && !yield(out[i]) {
					return
				}
			}
		}
	}
}
