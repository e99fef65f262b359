package daemon

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"
)

// catchSignals takes over the daemon's signals; waitForStop handles them.
// Call it before the tree starts serving: a signal sent as soon as the
// socket answers must not meet its default action (which ends the
// process). Signals that arrive before waitForStop runs wait in the
// channel's buffer.
func catchSignals() chan os.Signal {
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	return sigs
}

// waitForStop handles the signals of catchSignals until SIGTERM or SIGINT
// (nil) or until the tree ends on its own (its error, which is fatal).
func (d *Daemon) waitForStop(ctx context.Context, treeDone <-chan error, sigs chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			go d.forceOnSecond(sigs)
			return nil
		case err := <-treeDone:
			signal.Stop(sigs)
			if err == nil {
				err = fmt.Errorf("supervisor tree ended unexpectedly")
			}
			return err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				d.log.Info("Stopping", "signal", sig.String())
				go d.forceOnSecond(sigs)
				return nil
			case syscall.SIGHUP:
				d.reload()
			case syscall.SIGUSR1:
				d.dumpStacks()
			case syscall.SIGUSR2:
				debug.FreeOSMemory()
				d.log.Info("Returned free memory to the OS")
			}
		}
	}
}

// forceOnSecond exits at once when a second stop signal arrives during a
// graceful stop. It ends with the process.
func (d *Daemon) forceOnSecond(sigs <-chan os.Signal) {
	for sig := range sigs {
		if sig == syscall.SIGTERM || sig == syscall.SIGINT {
			forceExit(d.log)
		}
	}
}

// dumpStacks writes every goroutine's stack to a file in the run root.
func (d *Daemon) dumpStacks() {
	path := filepath.Join(d.config().RunRoot, fmt.Sprintf("arbor-goroutine-stacks-%s.log", time.Now().Format("20060102T150405")))
	f, err := os.Create(path)
	if err != nil {
		d.log.Error("Cannot write goroutine stacks", "error", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		d.log.Error("Cannot write goroutine stacks", "error", err)
		return
	}
	d.log.Info("Goroutine stacks written", "file", path)
}
