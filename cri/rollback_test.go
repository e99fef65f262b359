package cri

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/arbor-cri/arbor/internal/safe"
)

// create is a create path: it pushes an undo step, then ends as told.
func create(u *undo, undone *[]string, end string) (err error) {
	defer u.onFailure(&err)
	u.push("first", func(context.Context) error { *undone = append(*undone, "first"); return nil })
	u.push("second", func(context.Context) error { *undone = append(*undone, "second"); return nil })
	switch end {
	case "error":
		return errors.New("step failed")
	case "panic":
		panic("step panicked")
	}
	u.release()
	return nil
}

func TestUndoOnFailure(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, end := range []string{"ok", "error"} {
		var undone []string
		err := create(&undo{log: log}, &undone, end)
		want := map[string]string{"ok": "", "error": "second first"}[end]
		if got := strings.Join(undone, " "); got != want || (err != nil) != (end == "error") {
			t.Errorf("%s: undone %q, err %v; want %q", end, got, err, want)
		}
	}
	var undone []string
	func() {
		defer func() {
			p, ok := recover().(*safe.Panic)
			if !ok || p.Value != "step panicked" || !strings.Contains(string(p.Stack), "rollback_test.go") {
				t.Errorf("the panic went on as %v, want a *safe.Panic with the create's stack", p)
			}
		}()
		_ = create(&undo{log: log}, &undone, "panic")
	}()
	if got := strings.Join(undone, " "); got != "second first" {
		t.Errorf("a panicking create undid %q, want both steps in reverse", got)
	}
}
