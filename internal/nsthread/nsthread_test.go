package nsthread

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/safe"
)

// TestRunNeverOnMainThread locks the test onto the main thread's
// neighbourhood as much as it can and checks fn never runs on the main
// thread and its error comes back.
func TestRunNeverOnMainThread(t *testing.T) {
	want := errors.New("from fn")
	for range 200 {
		var tid int
		err := Run(func() error { tid = unix.Gettid(); return want })
		if !errors.Is(err, want) {
			t.Fatalf("Run returned %v", err)
		}
		if tid == os.Getpid() {
			t.Fatal("fn ran on the main thread")
		}
	}
	runtime.GC()
}

func TestRunReturnsAPanic(t *testing.T) {
	err := Run(func() error { panic("in a namespace") })
	var p *safe.Panic
	if !errors.As(err, &p) || p.Value != "in a namespace" {
		t.Fatalf("Run of a panicking fn = %v, want its *safe.Panic", err)
	}
}
