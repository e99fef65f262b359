// Command cribench measures a CRI runtime from the outside, as a kubelet
// sees it, over any CRI socket (arbor, containerd, CRI-O): pods brought up
// and torn down call by call, ListContainers with many containers, the
// daemon's memory with running pods, and plain runc as the floor. With
// several -socket flags it alternates between them round by round and
// prints each call's median and p99 per runtime with the ratios to the
// first. Everything it creates carries a run ID label and is removed at the
// end, after errors and Ctrl-C too.
//
//	cribench -socket /run/arbor/arbor.sock -image registry.k8s.io/e2e-test-images/busybox:1.29-2
//	cribench -socket A.sock -socket B.sock -rounds 3 -workloads pods -json out.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arbor-cri/arbor/e2e/bench"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "cribench:", err)
		os.Exit(1)
	}
}

// options are the command line beyond the bench settings.
type options struct {
	set      bench.Settings
	jsonPath string
	timeout  time.Duration
	sweep    bool
	quiet    bool
}

// run parses args, runs the benchmark (or the sweep), prints the table to
// stdout and progress to stderr. A first SIGINT/SIGTERM stops the run and
// cleans up; a second one kills the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if opts.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first signal, a second one takes the default action
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	if opts.sweep {
		return sweepAll(ctx, opts.set, log)
	}
	rep, err := bench.Run(ctx, opts.set, log)
	return errors.Join(err, output(rep, opts.jsonPath, stdout))
}

// output prints a (possibly partial) report and writes its JSON.
func output(rep *bench.Report, jsonPath string, stdout io.Writer) error {
	if rep == nil {
		return nil
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if jsonPath == "" {
		return nil
	}
	return rep.WriteJSON(jsonPath)
}

// sweepAll removes the leftovers of every earlier run from each socket.
func sweepAll(ctx context.Context, set bench.Settings, log *slog.Logger) error {
	var errs []error
	for _, sock := range set.Sockets {
		c, _, err := bench.Dial(ctx, sock, time.Minute)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := c.Sweep(ctx, "")
		log.Info("Swept", "socket", sock, "pods", n)
		errs = append(errs, err, c.Close())
	}
	return errors.Join(errs...)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cribench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Func("socket", "CRI socket (path or unix://path); repeat to compare runtimes", func(v string) error {
		o.set.Sockets = append(o.set.Sockets, v)
		return nil
	})
	fs.Func("pid", "daemon pid for the rss workload, one per -socket in order (default: the socket's owner)", func(v string) error {
		pid, err := strconv.Atoi(v)
		o.set.PIDs = append(o.set.PIDs, pid)
		return err
	})
	workloads := fs.String("workloads", strings.Join(bench.Workloads, ","), "comma-separated workloads, run in this order: rss, pods, list, floor")
	fs.IntVar(&o.set.Rounds, "rounds", 1, "rounds; each runs every workload on every socket in turn")
	fs.IntVar(&o.set.Pods, "pods", 50, "pods workload (and floor): pods brought up, then torn down")
	fs.IntVar(&o.set.ListContainers, "list-containers", 500, "list workload: running containers")
	fs.IntVar(&o.set.ListPerPod, "list-per-pod", 10, "list workload: containers per pod")
	fs.IntVar(&o.set.ListCalls, "list-calls", 100, "list workload: timed calls of ListContainers and of ListPodSandbox")
	fs.IntVar(&o.set.RSSPods, "rss-pods", 20, "rss workload: pods running when the daemon's RSS is read")
	fs.StringVar(&o.set.Image, "image", "registry.k8s.io/e2e-test-images/busybox:1.29-2", "busybox image of the containers (pulled first)")
	fs.StringVar(&o.set.CgroupParent, "cgroup-parent", "", "cgroupfs parent: each pod gets PARENT/pod<uid> (default: the runtime's choice)")
	fs.StringVar(&o.set.RuntimeHandler, "runtime-handler", "", "CRI runtime handler of the pods")
	fs.Int64Var(&o.set.StopTimeout, "stop-timeout", 0, "StopContainer timeout in seconds")
	fs.StringVar(&o.set.Runc, "runc", "runc", "runc binary for the floor")
	fs.StringVar(&o.set.FloorImage, "floor-image", "", "skopeo reference unpacked as the floor's rootfs (default: the host's busybox)")
	fs.DurationVar(&o.set.RPCTimeout, "rpc-timeout", 2*time.Minute, "limit of each CRI call")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "limit of the whole run (cleanup comes after it)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&o.sweep, "sweep", false, "only remove what earlier runs left on the sockets, then exit")
	fs.BoolVar(&o.quiet, "quiet", false, "log only warnings")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.set.Workloads = strings.Split(*workloads, ",")
	return o, nil
}
