package cri

import (
	"context"
	"fmt"
	"time"
)

// createStep is one named step of a create path. point names the fault
// point right after it ("" for none).
type createStep struct {
	name  string
	run   func(ctx context.Context, u *undo) error
	point string
}

// runSteps runs the steps of a create call in order: each under its own
// trace span, timed at Debug, followed by its fault point. The first
// failure stops the run, named by its step; the caller's undo cleans up.
func (s *RuntimeServer) runSteps(ctx context.Context, call string, u *undo, steps []createStep) error {
	for _, st := range steps {
		start := time.Now()
		stepCtx, end := s.startStep(ctx, call, st.name)
		err := st.run(stepCtx, u)
		end(err)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		Logger(ctx).Debug("Create step done", "step", st.name, "took", time.Since(start))
		if err := s.point(ctx, st.point); err != nil {
			return err
		}
	}
	return nil
}
