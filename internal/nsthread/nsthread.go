// Package nsthread runs code on an OS thread that may be moved into other
// namespaces and is thrown away afterwards, so that no other goroutine
// ever runs in a namespace it did not ask for.
package nsthread

import (
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/safe"
)

// Run runs fn on a locked OS thread of a new goroutine and waits for it;
// a panic in fn is returned as a *safe.Panic error.
// The thread is never unlocked: fn may move it into other namespaces, so
// the Go runtime must end the thread when the goroutine returns instead
// of reusing it for other goroutines.
//
// The runtime cannot end the main thread (it wedges it instead, and
// /proc/self/ns and /proc/self/net would then show the pod's namespaces
// for the whole process), so fn never runs there: a goroutine that lands
// on the main thread keeps it locked, so it cannot be picked again, and
// hands fn to another goroutine.
func Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if !onMainThread() {
			errc <- safe.Call(fn)
			return
		}
		inner := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			inner <- safe.Call(fn)
		}()
		err := <-inner
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// onMainThread reports whether the calling thread is the process leader.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }
