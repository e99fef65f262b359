package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"

	"github.com/arbor-cri/arbor/internal/safe"
)

// errStalled is the cancellation cause of a pull that stopped making progress.
var errStalled = errors.New("pull made no progress")

// pullStats summarizes one pull for the log.
type pullStats struct {
	bytes         uint64
	layersFetched int
	layersReused  int
}

// progressWatch consumes go.podman.io/image progress events for one pull,
// counts them and cancels the pull when no event arrives within timeout.
type progressWatch struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	events  chan types.ProgressProperties
	timeout time.Duration
	log     *slog.Logger
	done    sync.WaitGroup
	stats   pullStats
}

// watchProgress starts the watcher goroutine; stop must be called after
// the copy returns.
func watchProgress(ctx context.Context, timeout time.Duration, log *slog.Logger) *progressWatch {
	w := &progressWatch{events: make(chan types.ProgressProperties), timeout: timeout, log: log}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	w.done.Add(1)
	go w.run()
	return w
}

// interval is how often the copy reports bytes read: often enough that a
// slow but moving download never looks stalled.
func (w *progressWatch) interval() time.Duration {
	if w.timeout <= 0 {
		return time.Second
	}
	return min(max(w.timeout/10, 50*time.Millisecond), time.Second)
}

// run drains events until stop closes the channel. After a panic it only
// drains them, so that the copy never blocks on a watcher that is gone.
func (w *progressWatch) run() {
	defer w.done.Done()
	defer func() {
		if p := safe.Recovered(recover()); p != nil {
			safe.Log(w.log, "pull progress watcher", p)
			for range w.events {
			}
		}
	}()
	timer := w.newTimer()
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return
			}
			w.record(ev)
			if w.timeout > 0 {
				timer.Reset(w.timeout)
			}
		case <-timer.C:
			w.cancel(fmt.Errorf("%w for %s", errStalled, w.timeout))
		}
	}
}

// newTimer returns the stall timer, or one that never fires when the
// timeout is disabled.
func (w *progressWatch) newTimer() *time.Timer {
	if w.timeout > 0 {
		return time.NewTimer(w.timeout)
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// record updates the statistics for one event.
func (w *progressWatch) record(ev types.ProgressProperties) {
	w.stats.bytes += ev.OffsetUpdate
	layer := !isConfigMediaType(ev.Artifact.MediaType)
	switch ev.Event {
	case types.ProgressEventDone:
		if layer {
			w.stats.layersFetched++
		}
		w.log.Debug("Pulled blob", "digest", ev.Artifact.Digest, "bytes", ev.Offset)
	case types.ProgressEventSkipped:
		if layer {
			w.stats.layersReused++
		}
		w.log.Debug("Reused blob", "digest", ev.Artifact.Digest)
	case types.ProgressEventRead:
		w.log.Debug("Pull progress", "digest", ev.Artifact.Digest, "bytes", ev.Offset, "size", ev.Artifact.Size)
	}
}

// isConfigMediaType reports whether a blob is an image config, not a layer.
func isConfigMediaType(mt string) bool {
	return mt == manifest.DockerV2Schema2ConfigMediaType || mt == imgspecv1.MediaTypeImageConfig
}

// stop ends the watcher and returns the statistics and whether the pull
// was cancelled for lack of progress.
func (w *progressWatch) stop() (pullStats, error) {
	close(w.events)
	w.done.Wait()
	cause := context.Cause(w.ctx)
	w.cancel(nil)
	if errors.Is(cause, errStalled) {
		return w.stats, cause
	}
	return w.stats, nil
}
