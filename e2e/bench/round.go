package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// round runs every selected workload once on every socket, then the floor.
func (r *runner) round(ctx context.Context, n int) error {
	for i, c := range r.clients {
		if err := r.runtimeRound(ctx, i, c); err != nil {
			return fmt.Errorf("%s: %w", c.Socket, err)
		}
	}
	if slices.Contains(r.set.Workloads, WorkloadFloor) {
		if err := r.floorRound(ctx); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
	}
	r.log.Info("Round done", "round", n+1, "of", r.set.Rounds)
	return nil
}

// runtimeRound runs the CRI workloads on client i.
func (r *runner) runtimeRound(ctx context.Context, i int, c *Client) error {
	rr := r.report.Runtimes[i]
	for _, w := range r.set.Workloads {
		start := time.Now()
		var (
			s   *Samples
			err error
		)
		switch w {
		case WorkloadPods:
			s, err = c.Pods(ctx, r.spec, r.set.Pods)
		case WorkloadList:
			s, err = c.List(ctx, r.spec, r.set.ListContainers, r.set.ListPerPod, r.set.ListCalls)
		case WorkloadRSS:
			err = r.rss(ctx, i, c)
		default:
			continue
		}
		rr.add(w, s)
		if err != nil {
			return fmt.Errorf("workload %s: %w", w, err)
		}
		r.log.Info("Workload done", "workload", w, "socket", c.Socket, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (r *runner) rss(ctx context.Context, i int, c *Client) error {
	pid := 0
	if len(r.set.PIDs) > 0 {
		pid = r.set.PIDs[i]
	}
	m, err := c.RSS(ctx, r.spec, pid, r.set.RSSPods)
	if m != nil {
		r.report.Runtimes[i].RSS = append(r.report.Runtimes[i].RSS, *m)
	}
	return err
}

// floorRound runs the pods bundle with plain runc, building the floor's
// rootfs on first use.
func (r *runner) floorRound(ctx context.Context) error {
	if r.floor == nil {
		f, err := NewFloor(ctx, r.set.RunID, r.set.Runc, r.set.FloorImage, r.log)
		if err != nil {
			return err
		}
		r.floor = f
	}
	s, err := r.floor.Pods(ctx, r.set.Pods)
	if r.report.Floor == nil {
		r.report.Floor = &WorkloadReport{Workload: WorkloadFloor}
		r.floorSamples = &Samples{}
	}
	r.floorSamples.Merge(s)
	return err
}

// cleanup sweeps every socket for the run's pods and containers, checks
// none are left, removes the floor and the log folder, and closes the
// connections. It runs under a fresh context bounded to five minutes.
func (r *runner) cleanup(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Minute)
	defer cancel()
	var errs []error
	for _, c := range r.clients {
		errs = append(errs, r.sweep(ctx, c), c.Close())
	}
	if r.floor != nil {
		errs = append(errs, r.floor.Close())
	}
	if r.spec != nil {
		errs = append(errs, os.RemoveAll(r.spec.LogDir))
	}
	return errors.Join(errs...)
}

// sweep removes the run's pods and containers from c. It tries a few
// times: a call cut off by cancellation may still complete in the daemon
// after the first sweep listed what was there.
func (r *runner) sweep(ctx context.Context, c *Client) error {
	var err error
	for attempt := range sweepAttempts {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		var n int
		n, err = c.Sweep(ctx, r.set.RunID)
		if n > 0 || err != nil {
			r.log.Warn("Swept leftover pods", "socket", c.Socket, "pods", n, "error", err)
		}
		pods, ctrs, lerr := c.Leftovers(ctx, r.set.RunID)
		if lerr == nil && pods+ctrs > 0 {
			lerr = fmt.Errorf("sweeping %s: %d pods and %d containers of run %s remain", c.Socket, pods, ctrs, r.set.RunID)
		}
		if err = errors.Join(err, lerr); err == nil {
			return nil
		}
	}
	return err
}

// sweepAttempts bounds the sweeps of one socket.
const sweepAttempts = 3

// finish fills the summaries and ratios of the report.
func (r *runner) finish() {
	rep := r.report
	rep.Duration = time.Since(rep.Started)
	for _, rr := range rep.Runtimes {
		rr.summarize(rep.Runtimes[0])
	}
	if rep.Floor != nil {
		rep.Floor.Calls = r.floorSamples.Summaries()
	}
}
