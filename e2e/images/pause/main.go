// Command pause is the sandbox process of Arbor's e2e pause image: it sleeps
// until SIGINT or SIGTERM, reaping every child that is re-parented to it, and
// then exits 0. Built static (CGO_ENABLED=0) by fixture.BuildImages and
// installed as /pause in an otherwise empty image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (arbor e2e)")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not running as pid 1")
	}
	sig := waitForStop()
	fmt.Fprintf(os.Stderr, "pause: stopping on %v\n", sig)
}

// waitForStop reaps children on SIGCHLD and returns the first stop signal.
func waitForStop() os.Signal {
	signals := make(chan os.Signal, 32)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return sig
		}
		reapChildren()
	}
	return nil
}

// reapChildren collects every exited child without blocking.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
