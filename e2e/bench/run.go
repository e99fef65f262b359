package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Workload names.
const (
	WorkloadPods  = "pods"
	WorkloadList  = "list"
	WorkloadFloor = "floor"
	WorkloadRSS   = "rss"
)

// Workloads lists every workload in the default order of a round: rss
// first, so its idle reading is not of a daemon still holding the memory
// of the 500-container list workload.
var Workloads = []string{WorkloadRSS, WorkloadPods, WorkloadList, WorkloadFloor}

// Settings are the sizes and shapes of a run; the zero value of a size
// means its default.
type Settings struct {
	Sockets        []string      `json:"sockets"`
	Workloads      []string      `json:"workloads"`
	Rounds         int           `json:"rounds"`
	Pods           int           `json:"pods"`            // pods workload: pods brought up and down
	ListContainers int           `json:"list_containers"` // list workload: containers running while listing
	ListPerPod     int           `json:"list_per_pod"`    // list workload: containers per pod
	ListCalls      int           `json:"list_calls"`      // list workload: timed calls of each list RPC
	RSSPods        int           `json:"rss_pods"`        // rss workload: pods running when RSS is read
	PIDs           []int         `json:"pids,omitempty"`  // rss workload: daemon pid per socket (0: find it)
	Image          string        `json:"image"`
	CgroupParent   string        `json:"cgroup_parent,omitempty"`
	RuntimeHandler string        `json:"runtime_handler,omitempty"`
	StopTimeout    int64         `json:"stop_timeout_s"`
	Runc           string        `json:"runc"`
	FloorImage     string        `json:"floor_image,omitempty"` // skopeo reference; "" uses the host busybox
	RPCTimeout     time.Duration `json:"rpc_timeout_ns"`
	RunID          string        `json:"-"` // "" picks a random one
}

// Limits bound every size so a run stays bounded in count and time.
var Limits = struct{ Rounds, Pods, ListContainers, ListPerPod, ListCalls, RSSPods int }{
	Rounds: 100, Pods: 1000, ListContainers: 5000, ListPerPod: 100, ListCalls: 10000, RSSPods: 1000,
}

// withDefaults fills the zero sizes.
func (s Settings) withDefaults() Settings {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Rounds, 1)
	def(&s.Pods, 50)
	def(&s.ListContainers, 500)
	def(&s.ListPerPod, 10)
	def(&s.ListCalls, 100)
	def(&s.RSSPods, 20)
	if s.Workloads == nil {
		s.Workloads = Workloads
	}
	if s.Runc == "" {
		s.Runc = "runc"
	}
	if s.RPCTimeout == 0 {
		s.RPCTimeout = 2 * time.Minute
	}
	return s
}

// Validate checks the settings after defaults.
func (s Settings) Validate() error {
	for _, b := range []struct {
		name   string
		v, max int
	}{
		{"rounds", s.Rounds, Limits.Rounds}, {"pods", s.Pods, Limits.Pods},
		{"list-containers", s.ListContainers, Limits.ListContainers}, {"list-per-pod", s.ListPerPod, Limits.ListPerPod},
		{"list-calls", s.ListCalls, Limits.ListCalls}, {"rss-pods", s.RSSPods, Limits.RSSPods},
	} {
		if b.v < 1 || b.v > b.max {
			return fmt.Errorf("%s: %d is outside 1..%d", b.name, b.v, b.max)
		}
	}
	for _, w := range s.Workloads {
		if !slices.Contains(Workloads, w) {
			return fmt.Errorf("workload %q: want one of %v", w, Workloads)
		}
	}
	if len(s.Sockets) == 0 && slices.ContainsFunc(s.Workloads, func(w string) bool { return w != WorkloadFloor }) {
		return errors.New("socket: at least one is needed for the CRI workloads")
	}
	if len(s.PIDs) != 0 && len(s.PIDs) != len(s.Sockets) {
		return fmt.Errorf("pid: %d given for %d sockets", len(s.PIDs), len(s.Sockets))
	}
	if s.Image == "" && len(s.Sockets) > 0 {
		return errors.New("image: is required")
	}
	return nil
}

// describe says in words what a workload does under these settings.
func (s Settings) describe(w string) string {
	switch w {
	case WorkloadPods:
		return fmt.Sprintf("%d pods x %d round(s), one `sleep 3600` container each; client wall time per call", s.Pods, s.Rounds)
	case WorkloadList:
		return fmt.Sprintf("%d running containers in pods of %d, %d calls x %d round(s)", s.ListContainers, s.ListPerPod, s.ListCalls, s.Rounds)
	case WorkloadFloor:
		return fmt.Sprintf("%d containers x %d round(s) with plain %s (run -d, kill KILL, delete --force)", s.Pods, s.Rounds, s.Runc)
	}
	return ""
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runner is the state of one Run.
type runner struct {
	set          Settings
	spec         *Spec
	log          *slog.Logger
	clients      []*Client
	floor        *Floor
	report       *Report
	floorSamples *Samples
}

// Run measures the workloads on every socket, alternating between the
// sockets round by round, and returns the report. Whatever it made is
// removed before it returns, after errors and cancellation too (under a
// fresh bounded context); on error the report holds what was measured.
func Run(ctx context.Context, set Settings, log *slog.Logger) (rep *Report, err error) {
	set = set.withDefaults()
	if err := set.Validate(); err != nil {
		return nil, err
	}
	if set.RunID == "" {
		set.RunID = newRunID()
	}
	r := &runner{set: set, log: log, report: &Report{RunID: set.RunID, Started: time.Now(), Settings: set}}
	defer func() {
		err = errors.Join(err, r.cleanup(ctx))
		r.finish()
		rep = r.report
	}()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	for round := range set.Rounds {
		if err := r.round(ctx, round); err != nil {
			return nil, fmt.Errorf("round %d: %w", round+1, err)
		}
	}
	return nil, nil
}

// setup makes the log folder and connects to every socket.
func (r *runner) setup(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "cribench-logs-")
	if err != nil {
		return fmt.Errorf("creating log folder: %w", err)
	}
	r.spec = &Spec{RunID: r.set.RunID, Image: r.set.Image, LogDir: dir, CgroupParent: r.set.CgroupParent,
		RuntimeHandler: r.set.RuntimeHandler, StopTimeout: r.set.StopTimeout}
	for _, sock := range r.set.Sockets {
		c, name, err := Dial(ctx, absSocket(sock), r.set.RPCTimeout)
		if err != nil {
			return err
		}
		r.clients = append(r.clients, c)
		r.report.Runtimes = append(r.report.Runtimes, &RuntimeReport{Socket: c.Socket, Name: name})
	}
	return nil
}

func absSocket(s string) string {
	p, _ := filepath.Abs(filepath.Clean(strings.TrimPrefix(s, "unix://")))
	return p
}
