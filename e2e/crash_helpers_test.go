package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
)

// envInt reads a whole number from the environment, or def.
func envInt(t testing.TB, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// Limits of the random workload: each worker owns at most crashMaxPods
// pods with at most crashMaxCtrs containers each.
const (
	crashMaxPods = 3
	crashMaxCtrs = 2
	callTimeout  = 60 * time.Second
)

// trackedPod is a pod the workload made, with what the test expects.
type trackedPod struct {
	name  string
	cfg   *runtimeapi.PodSandboxConfig
	id    string
	ready bool
	ctrs  []*trackedCtr
	seq   int // names the next container
}

// trackedCtr is a container the workload made and its expected state.
type trackedCtr struct {
	name  string
	id    string
	state runtimeapi.ContainerState
}

// pendingOp is a call that the daemon's death interrupted: its outcome is
// known only after the restart.
type pendingOp struct {
	op  string
	pod *trackedPod
	ctr *trackedCtr
}

// crashWorker runs random CRI calls on the pods it owns, one at a time.
type crashWorker struct {
	name    string
	pt      *podTest
	rng     *rand.Rand
	pods    []*trackedPod
	seq     int
	pending *pendingOp
	calls   int
}

// crashRun is the state of the random-kill workload across rounds.
type crashRun struct {
	t       *testing.T
	pt      *podTest
	workers []*crashWorker
	killed  atomic.Bool     // set just before the daemon is killed
	checked int             // objects verified, over all rounds
	logs    strings.Builder // the logs of the killed daemons
}

func newCrashRun(t *testing.T, pt *podTest, seed int64, n int) *crashRun {
	r := &crashRun{t: t, pt: pt}
	for i := range n {
		r.workers = append(r.workers, &crashWorker{
			name: fmt.Sprintf("w%d", i), pt: pt, rng: rand.New(rand.NewSource(seed + int64(i) + 1)),
		})
	}
	return r
}

// round runs every worker until the daemon is killed after d.
func (r *crashRun) round(cri *harness.Client, d time.Duration) {
	r.killed.Store(false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.run(r, cri, stop) })
	}
	time.Sleep(d)
	r.killed.Store(true)
	if r.pt.d.Exited() {
		code, _ := r.pt.d.Wait(time.Second)
		r.t.Fatalf("the daemon died on its own (exit %d); daemon logs in %s", code, r.saveLogs())
	}
	if err := r.pt.d.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	close(stop)
	if _, err := r.pt.d.Wait(30 * time.Second); err != nil {
		r.t.Fatal(err)
	}
	wg.Wait()
	r.logs.WriteString(r.pt.d.Log())
}

// saveLogs writes the logs of every daemon of the run to a file that
// outlives the test, and returns its path.
func (r *crashRun) saveLogs() string {
	f, err := os.CreateTemp("", "arbor-crash-*.log")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	_, _ = f.WriteString(r.logs.String() + r.pt.d.Log())
	return f.Name()
}

// run does calls until one fails or stop is closed.
func (w *crashWorker) run(r *crashRun, cri *harness.Client, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		op := w.pick()
		err := w.do(cri, op)
		w.calls++
		if err == nil {
			continue
		}
		if !r.killed.Load() {
			r.t.Errorf("%s: %s failed with the daemon up: %v", w.name, op.op, err)
		}
		w.pending = op
		return
	}
}

// pick chooses a call that fits the worker's objects.
func (w *crashWorker) pick() *pendingOp {
	var ops []*pendingOp
	if len(w.pods) < crashMaxPods {
		w.seq++
		name := fmt.Sprintf("rk-%s-%d", w.name, w.seq)
		cfg := w.pt.crashPodConfig(name)
		if w.seq%2 == 0 {
			// Half the pods have their own user namespace: one more
			// pinned namespace, a holder process and ID-mapped layers.
			cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{
				Mode: runtimeapi.NamespaceMode_POD, Uids: usernsMapping(), Gids: usernsMapping(),
			}
		}
		ops = append(ops, &pendingOp{op: "RunPodSandbox", pod: &trackedPod{name: name, cfg: cfg}})
	}
	for _, p := range w.pods {
		ops = append(ops, w.podOps(p)...)
	}
	return ops[w.rng.Intn(len(ops))]
}

func (w *crashWorker) podOps(p *trackedPod) []*pendingOp {
	var ops []*pendingOp
	if p.ready && len(p.ctrs) < crashMaxCtrs {
		p.seq++
		c := &trackedCtr{name: fmt.Sprintf("c%d", p.seq)}
		ops = append(ops, &pendingOp{op: "CreateContainer", pod: p, ctr: c}, &pendingOp{op: "CreateContainer", pod: p, ctr: c})
	}
	for _, c := range p.ctrs {
		switch c.state {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			ops = append(ops, &pendingOp{op: "StartContainer", pod: p, ctr: c}, &pendingOp{op: "StartContainer", pod: p, ctr: c})
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			ops = append(ops, &pendingOp{op: "StopContainer", pod: p, ctr: c})
		}
		ops = append(ops, &pendingOp{op: "RemoveContainer", pod: p, ctr: c})
	}
	if p.ready {
		ops = append(ops, &pendingOp{op: "StopPodSandbox", pod: p})
	}
	return append(ops, &pendingOp{op: "RemovePodSandbox", pod: p})
}

// do makes the call and, when it succeeded, records its outcome.
func (w *crashWorker) do(cri *harness.Client, op *pendingOp) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	p, c := op.pod, op.ctr
	switch op.op {
	case "RunPodSandbox":
		resp, err := cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p.cfg})
		if err != nil {
			return err
		}
		p.id, p.ready = resp.GetPodSandboxId(), true
		w.pods = append(w.pods, p)
	case "CreateContainer":
		resp, err := cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: p.id, Config: w.pt.ctrConfig(c.name, "sleep 3600"), SandboxConfig: p.cfg})
		if err != nil {
			return err
		}
		c.id, c.state = resp.GetContainerId(), runtimeapi.ContainerState_CONTAINER_CREATED
		p.ctrs = append(p.ctrs, c)
	case "StartContainer":
		if _, err := cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.id}); err != nil {
			return err
		}
		c.state = runtimeapi.ContainerState_CONTAINER_RUNNING
	case "StopContainer":
		if _, err := cri.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.id}); err != nil {
			return err
		}
		c.state = runtimeapi.ContainerState_CONTAINER_EXITED
	case "RemoveContainer":
		if _, err := cri.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.id}); err != nil {
			return err
		}
		p.dropCtr(c)
	case "StopPodSandbox":
		if _, err := cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
			return err
		}
		p.stopped()
	case "RemovePodSandbox":
		if _, err := cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
			return err
		}
		w.dropPod(p)
	}
	return nil
}

// stopped records a stopped pod: every container has exited, those that
// were only created too (the stop kills their runtime process).
func (p *trackedPod) stopped() {
	p.ready = false
	for _, c := range p.ctrs {
		c.state = runtimeapi.ContainerState_CONTAINER_EXITED
	}
}

func (p *trackedPod) dropCtr(c *trackedCtr) {
	for i, x := range p.ctrs {
		if x == c {
			p.ctrs = append(p.ctrs[:i], p.ctrs[i+1:]...)
			return
		}
	}
}

func (w *crashWorker) dropPod(p *trackedPod) {
	for i, x := range w.pods {
		if x == p {
			w.pods = append(w.pods[:i], w.pods[i+1:]...)
			return
		}
	}
}

// listed is what the restarted daemon lists.
type listed struct {
	pods map[string]*runtimeapi.PodSandbox
	ctrs map[string]*runtimeapi.Container
}

func listAll(t *testing.T, pt *podTest) listed {
	t.Helper()
	pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatalf("ListPodSandbox: %v", err)
	}
	ctrs, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	l := listed{pods: map[string]*runtimeapi.PodSandbox{}, ctrs: map[string]*runtimeapi.Container{}}
	for _, p := range pods.GetItems() {
		l.pods[p.GetId()] = p
	}
	for _, c := range ctrs.GetContainers() {
		l.ctrs[c.GetId()] = c
	}
	return l
}

func (l listed) podNamed(name string) *runtimeapi.PodSandbox {
	for _, p := range l.pods {
		if p.GetMetadata().GetName() == name {
			return p
		}
	}
	return nil
}

func (l listed) ctrNamed(podID, name string) *runtimeapi.Container {
	for _, c := range l.ctrs {
		if c.GetPodSandboxId() == podID && c.GetMetadata().GetName() == name {
			return c
		}
	}
	return nil
}

// settle resolves each interrupted call against what the restarted daemon
// lists: an interrupted create is complete or entirely gone; an
// interrupted start, stop or remove is done or can be done again, as the
// kubelet's retry would.
func (r *crashRun) settle(t *testing.T) {
	t.Helper()
	l := listAll(t, r.pt)
	for _, w := range r.workers {
		if op := w.pending; op != nil {
			w.pending = nil
			w.settle(t, l, op)
		}
	}
}

func (w *crashWorker) settle(t *testing.T, l listed, op *pendingOp) {
	t.Helper()
	p, c := op.pod, op.ctr
	switch op.op {
	case "RunPodSandbox":
		w.settleRunPod(t, l, p)
	case "CreateContainer":
		w.settleCreate(t, l, p, c)
	case "StartContainer", "StopContainer":
		w.settleStartStop(t, l, op)
	case "RemoveContainer":
		if l.ctrs[c.id] != nil {
			w.retry(t, op)
		} else {
			p.dropCtr(c)
		}
	case "StopPodSandbox":
		if l.pods[p.id] == nil {
			t.Errorf("pod %s vanished during an interrupted StopPodSandbox", p.name)
			w.dropPod(p)
			return
		}
		w.retry(t, op)
	case "RemovePodSandbox":
		if l.pods[p.id] != nil {
			w.retry(t, op)
		} else {
			w.dropPod(p)
		}
	}
}

// settleRunPod accepts no pod or a ready one.
func (w *crashWorker) settleRunPod(t *testing.T, l listed, p *trackedPod) {
	t.Helper()
	got := l.podNamed(p.name)
	if got == nil {
		return
	}
	p.id, p.ready = got.GetId(), got.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY
	w.pods = append(w.pods, p)
	if !p.ready {
		t.Errorf("an interrupted RunPodSandbox left pod %s %s, not ready and not gone", p.name, got.GetState())
	}
}

// settleCreate accepts no container or a created one.
func (w *crashWorker) settleCreate(t *testing.T, l listed, p *trackedPod, c *trackedCtr) {
	t.Helper()
	got := l.ctrNamed(p.id, c.name)
	if got == nil {
		return
	}
	c.id, c.state = got.GetId(), got.GetState()
	p.ctrs = append(p.ctrs, c)
	if c.state != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("an interrupted CreateContainer left %s/%s %s, not created and not gone", p.name, c.name, c.state)
	}
}

// settleStartStop accepts the state before or after the call; a start
// that did not happen is retried and must then work.
func (w *crashWorker) settleStartStop(t *testing.T, l listed, op *pendingOp) {
	t.Helper()
	c := op.ctr
	got := l.ctrs[c.id]
	if got == nil {
		t.Errorf("container %s/%s vanished during an interrupted %s", op.pod.name, c.name, op.op)
		op.pod.dropCtr(c)
		return
	}
	before, after := runtimeapi.ContainerState_CONTAINER_CREATED, runtimeapi.ContainerState_CONTAINER_RUNNING
	if op.op == "StopContainer" {
		before, after = after, runtimeapi.ContainerState_CONTAINER_EXITED
	}
	switch got.GetState() {
	case after:
		c.state = after
	case before:
		w.retry(t, op)
	default:
		t.Errorf("an interrupted %s left %s/%s %s", op.op, op.pod.name, c.name, got.GetState())
		c.state = got.GetState()
	}
}

// retry repeats an interrupted call on the new daemon.
func (w *crashWorker) retry(t *testing.T, op *pendingOp) {
	t.Helper()
	if err := w.do(w.pt.cri, op); err != nil {
		t.Errorf("retrying the interrupted %s of %s after the restart: %v", op.op, op.pod.name, err)
	}
}

// verify checks every tracked object against the daemon, and that the
// daemon lists nothing else; it returns how many objects it checked.
func (r *crashRun) verify(t *testing.T) int {
	t.Helper()
	l := listAll(t, r.pt)
	known := map[string]bool{}
	n := 0
	for _, w := range r.workers {
		for _, p := range w.pods {
			known[p.id] = true
			n += 1 + w.verifyPod(t, l, p, known)
		}
	}
	for id, p := range l.pods {
		if !known[id] {
			t.Errorf("the daemon lists pod %s (%s) that no call left", p.GetMetadata().GetName(), p.GetState())
		}
	}
	for id, c := range l.ctrs {
		if !known[id] {
			t.Errorf("the daemon lists container %s (%s) that no call left", c.GetMetadata().GetName(), c.GetState())
		}
	}
	return n
}

func (w *crashWorker) verifyPod(t *testing.T, l listed, p *trackedPod, known map[string]bool) int {
	t.Helper()
	want := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if p.ready {
		want = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	if got := l.pods[p.id]; got == nil {
		t.Errorf("pod %s is lost", p.name)
	} else if got.GetState() != want {
		t.Errorf("pod %s is %s, want %s", p.name, got.GetState(), want)
	}
	for _, c := range p.ctrs {
		known[c.id] = true
		if got := l.ctrs[c.id]; got == nil {
			t.Errorf("container %s/%s is lost", p.name, c.name)
		} else if got.GetState() != c.state {
			t.Errorf("container %s/%s is %s, want %s", p.name, c.name, got.GetState(), c.state)
		}
	}
	return len(p.ctrs)
}

// running returns the IDs of the containers the model has running.
func (r *crashRun) running() []string {
	var ids []string
	for _, w := range r.workers {
		for _, p := range w.pods {
			for _, c := range p.ctrs {
				if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
					ids = append(ids, c.id)
				}
			}
		}
	}
	return ids
}

// crashPodConfig is podConfig with a cgroup parent of the pod's own
// directly below the hierarchy roots (where a kubelet's QoS folders would
// already be): pods made and removed in any order share no folder that
// one of them created, so the end of a test leaves none behind.
func (pt *podTest) crashPodConfig(name string) *runtimeapi.PodSandboxConfig {
	cfg := pt.podConfig(name)
	cfg.Linux.CgroupParent = pt.cgroup + "-" + name
	return cfg
}

// retryCall makes a call as the kubelet does: a failed call is repeated a
// few times after a short sleep.
func retryCall(call func(ctx context.Context) error) error {
	var err error
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err = call(ctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return err
}

// workloadCtr is a container the panic workload made: it runs for good,
// or exits at once with exitCode.
type workloadCtr struct {
	podID    string
	quick    bool
	exitCode int32
}

// panicWorkload makes pods and containers in a loop, removes the oldest
// pods, and remembers what must exist.
type panicWorkload struct {
	pt         *podTest
	pods       []string // IDs of pods that must exist, oldest first
	ctrs       map[string]workloadCtr
	iterations atomic.Int32
	retried    atomic.Int32
	err        error // valid once run has returned
}

func (w *panicWorkload) run(stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if w.err = w.iteration(i); w.err != nil {
			return
		}
		w.iterations.Add(1)
	}
}

func (w *panicWorkload) waitIterations(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if int(w.iterations.Load()) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the workload did not finish %d iterations", n)
}

// iteration makes a pod with a running container and, every other time, a
// container that exits with code 3; past five pods it removes the oldest.
func (w *panicWorkload) iteration(i int) error {
	name := fmt.Sprintf("pw-%d", i)
	cfg := w.pt.crashPodConfig(name)
	var podID string
	err := w.retry(func(ctx context.Context) error {
		resp, err := w.pt.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		podID = resp.GetPodSandboxId()
		return err
	})
	if err != nil {
		return fmt.Errorf("RunPodSandbox %s: %w", name, err)
	}
	w.pods = append(w.pods, podID)
	if err := w.container(podID, cfg, "main", "sleep 3600", workloadCtr{podID: podID}); err != nil {
		return err
	}
	if i%2 == 0 {
		if err := w.container(podID, cfg, "quick", "exit 3", workloadCtr{podID: podID, quick: true, exitCode: 3}); err != nil {
			return err
		}
	}
	if len(w.pods) > 5 {
		return w.removeOldest()
	}
	return nil
}

// container creates and starts one container; a start whose answer was
// lost is accepted when the container is no longer created.
func (w *panicWorkload) container(podID string, pod *runtimeapi.PodSandboxConfig, name, script string, c workloadCtr) error {
	cfg := w.pt.ctrConfig(name, script)
	var id string
	err := w.retry(func(ctx context.Context) error {
		resp, err := w.pt.cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		id = resp.GetContainerId()
		return err
	})
	if err != nil {
		return fmt.Errorf("CreateContainer %s: %w", name, err)
	}
	w.ctrs[id] = c
	err = w.retry(func(ctx context.Context) error {
		_, err := w.pt.cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		if err == nil {
			return nil
		}
		st, serr := w.pt.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if serr == nil && st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("StartContainer %s: %w", name, err)
	}
	return nil
}

func (w *panicWorkload) removeOldest() error {
	id := w.pods[0]
	err := w.retry(func(ctx context.Context) error {
		_, err := w.pt.cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		return err
	})
	if err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	w.pods = w.pods[1:]
	for cid, c := range w.ctrs {
		if c.podID == id {
			delete(w.ctrs, cid)
		}
	}
	return nil
}

// retry is retryCall that counts the calls that needed more than one try.
func (w *panicWorkload) retry(call func(ctx context.Context) error) error {
	tries := 0
	err := retryCall(func(ctx context.Context) error {
		tries++
		return call(ctx)
	})
	if tries > 1 {
		w.retried.Add(1)
	}
	return err
}

// verify checks that every pod the workload kept is listed ready, every
// long container running and every quick one exited with its code, and
// that nothing else is listed.
func (w *panicWorkload) verify(t *testing.T) {
	t.Helper()
	l := listAll(t, w.pt)
	for _, id := range w.pods {
		if p := l.pods[id]; p == nil || p.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %s is lost or not ready: %v", id, p.GetState())
		}
	}
	if len(l.pods) != len(w.pods) || len(l.ctrs) != len(w.ctrs) {
		t.Errorf("listed %d pods and %d containers, want %d and %d", len(l.pods), len(l.ctrs), len(w.pods), len(w.ctrs))
	}
	for id, c := range w.ctrs {
		switch {
		case l.ctrs[id] == nil:
			t.Errorf("container %s is lost", id)
		case c.quick:
			if st := w.pt.waitExit(id); st.GetExitCode() != c.exitCode {
				t.Errorf("container %s exited with %d, want %d", id, st.GetExitCode(), c.exitCode)
			}
		case l.ctrs[id].GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING:
			t.Errorf("container %s is %s, want running", id, l.ctrs[id].GetState())
		}
	}
}
