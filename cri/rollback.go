package cri

import (
	"context"
	"log/slog"
	"time"

	"github.com/arbor-cri/arbor/internal/safe"
)

// rollbackTimeout bounds the clean-up of a failed create. It runs under a
// fresh context so that a cancelled request still cleans up.
const rollbackTimeout = 2 * time.Minute

// undo is a stack of clean-up steps for a create path. Each step that
// makes something pushes its inverse; on failure Run undoes them in
// reverse order, and on success Release drops them.
type undo struct {
	log   *slog.Logger
	steps []undoStep
}

type undoStep struct {
	name string
	fn   func(ctx context.Context) error
}

func (u *undo) push(name string, fn func(ctx context.Context) error) {
	u.steps = append(u.steps, undoStep{name, fn})
}

// onFailure, deferred by a create path with the address of its error
// result, undoes every step if the create failed or panicked. A panic goes
// on up to the CRI boundary once the steps are undone.
func (u *undo) onFailure(err *error) {
	if p := safe.Recovered(recover()); p != nil {
		u.run()
		panic(p)
	}
	if *err != nil {
		u.run()
	}
}

// run undoes every step, logging failures.
func (u *undo) run() {
	if len(u.steps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	for i := len(u.steps) - 1; i >= 0; i-- {
		st := u.steps[i]
		if err := st.fn(ctx); err != nil {
			u.log.Warn("Rollback step failed", "step", st.name, "error", err)
		}
	}
	u.steps = nil
}

// release forgets the steps after a successful create.
func (u *undo) release() { u.steps = nil }
