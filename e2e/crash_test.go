package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// TestRandomKills runs a mixed workload of pod and container calls and
// kills the daemon (SIGKILL) at random moments. After each restart every
// object whose call succeeded is there in the right state, every
// interrupted call is complete or entirely undone, nothing leaked and
// crictl works. ARBOR_CRASH_ROUNDS sets the rounds (default 8),
// ARBOR_CRASH_SEED the seed.
func TestRandomKills(t *testing.T) {
	seed := envInt(t, "ARBOR_CRASH_SEED", time.Now().UnixNano())
	rounds := int(envInt(t, "ARBOR_CRASH_ROUNDS", 8))
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	pt := newPodTest(t)
	run := newCrashRun(t, pt, seed, 3)
	t.Cleanup(func() {
		if t.Failed() { // a Fatal in a restart ends the test before the loop saves them
			t.Logf("daemon logs in %s", run.saveLogs())
		}
	})
	survived := 0
	for i := range rounds {
		after := time.Duration(300+rng.Intn(2200)) * time.Millisecond
		run.round(pt.cri, after)
		took := pt.restart(t)
		if took > 5*time.Second {
			// Not a failure, but worth reading: what held the start up.
			t.Logf("round %d: slow restart (%s); daemon logs in %s", i, took, run.saveLogs())
		}
		run.settle(t)
		checked := run.verify(t)
		run.checked += checked
		checkNoLeaks(t, pt)
		checkCrictlRunning(t, pt, run.running())
		if ids := run.running(); len(ids) > 0 {
			pt.exec(ids[rng.Intn(len(ids))], "true")
		}
		if t.Failed() {
			t.Fatalf("round %d failed (seed %d); daemon logs in %s", i, seed, run.saveLogs())
		}
		survived++
		t.Logf("round %d: killed after %s, serving again after %s, %d calls so far, %d objects checked",
			i, after, took.Round(time.Millisecond), run.calls(), checked)
	}
	t.Logf("%d rounds survived, %d objects checked in all (seed %d)", survived, run.checked, seed)
	pt.finish()
}

func (r *crashRun) calls() int {
	n := 0
	for _, w := range r.workers {
		n += w.calls
	}
	return n
}

// checkCrictlRunning checks that crictl works and lists exactly the
// running containers.
func checkCrictlRunning(t *testing.T, pt *podTest, want []string) {
	t.Helper()
	out, err := pt.d.Crictl("ps", "-q")
	if err != nil {
		t.Fatalf("crictl ps: %v", err)
	}
	got := strings.Fields(out)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("crictl ps lists %v, want %v", got, want)
	}
}

// TestRestartWith20Pods restarts a daemon with 20 running pods after a
// SIGTERM and after a SIGKILL: all 20 containers are listed running again,
// exec works in each, and a container killed while the daemon was down
// shows its exit code.
func TestRestartWith20Pods(t *testing.T) {
	const n = 20
	pt := newPodTest(t)
	pods := startPods(t, pt, "many", n, "sleep 3600")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			victim := pt.createAndStart(pods[0].podID, pods[0].cfg,
				pt.ctrConfig("victim-"+strings.ToLower(sig.String()), trapScript))
			pt.waitReady(victim)
			if err := pt.d.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if _, err := pt.d.Wait(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			killContainer(t, pt, victim)
			start := time.Now()
			pt.restart(t)
			waitAllRunning(t, pt, ctrIDs(pods))
			t.Logf("after %s: %d containers listed running %s after the new daemon started", sig, n, time.Since(start).Round(time.Millisecond))
			for _, p := range pods {
				if out := pt.exec(p.ctrID, "echo", p.name); !strings.Contains(out, p.name) {
					t.Errorf("exec in %s after the restart: %q", p.name, out)
				}
			}
			if st := pt.waitExit(victim); st.GetExitCode() != 7 {
				t.Errorf("exit while down: code %d reason %s", st.GetExitCode(), st.GetReason())
			}
			if _, err := pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: victim}); err != nil {
				t.Fatal(err)
			}
			checkNoLeaks(t, pt)
		})
	}
	pt.finish()
}

// startedPod is a pod with one started container.
type startedPod struct {
	name, podID, ctrID string
	cfg                *runtimeapi.PodSandboxConfig
}

func ctrIDs(pods []startedPod) []string {
	ids := make([]string, len(pods))
	for i, p := range pods {
		ids[i] = p.ctrID
	}
	return ids
}

// startPods makes n pods with one container each, four at a time.
func startPods(t testing.TB, pt *podTest, prefix string, n int, script string) []startedPod {
	t.Helper()
	pods := make([]startedPod, n)
	errs := make([]error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range work {
				pods[i], errs[i] = startPod(pt, fmt.Sprintf("%s-%d", prefix, i), script)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return pods
}

// startPod makes one pod with one started container, without a test's
// helpers (it runs in a worker goroutine).
func startPod(pt *podTest, name, script string) (startedPod, error) {
	p := startedPod{name: name, cfg: pt.crashPodConfig(name)}
	resp, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: p.cfg})
	if err != nil {
		return p, fmt.Errorf("RunPodSandbox %s: %w", name, err)
	}
	p.podID = resp.GetPodSandboxId()
	cr, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.podID, Config: pt.ctrConfig("main", script), SandboxConfig: p.cfg})
	if err != nil {
		return p, fmt.Errorf("CreateContainer in %s: %w", name, err)
	}
	p.ctrID = cr.GetContainerId()
	if _, err := pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: p.ctrID}); err != nil {
		return p, fmt.Errorf("StartContainer in %s: %w", name, err)
	}
	return p, nil
}

// waitAllRunning polls ListContainers until every one of ids is running.
func waitAllRunning(t testing.TB, pt *podTest, ids []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing, err := notRunning(pt, ids)
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers not listed running: %v (%v)", missing, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// notRunning returns the ids that ListContainers does not show running.
func notRunning(pt *podTest, ids []string) ([]string, error) {
	resp, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return ids, err
	}
	running := map[string]bool{}
	for _, c := range resp.GetContainers() {
		running[c.GetId()] = c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	var missing []string
	for _, id := range ids {
		if !running[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// TestPanicInEveryService panics every supervised service in turn while a
// workload of CRI calls runs: the calls keep succeeding (with the
// kubelet's usual retry), each service's restart count rises, nothing the
// workload made is lost, and the end is clean.
func TestPanicInEveryService(t *testing.T) {
	pt := newPodTest(t, "--enable-metrics", "--metrics-socket", metricsSocket(t))
	before := serviceRows(t, pt.d)
	names := make([]string, 0, len(before))
	for name := range before {
		names = append(names, name)
	}
	sort.Strings(names)
	t.Logf("services: %v", names)
	for _, want := range []string{"listener", "stream", "exit-monitor", "cni", "stats", "hooks", "metrics", "nri"} {
		if _, ok := before[want]; !ok {
			t.Fatalf("no service %s in the tree: %v", want, names)
		}
	}
	w := &panicWorkload{pt: pt, ctrs: map[string]workloadCtr{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.run(stop) })
	w.waitIterations(t, 1)
	for _, name := range names {
		panicService(t, pt.d, name, before[name])
		time.Sleep(300 * time.Millisecond) // calls against the restarted service
	}
	close(stop)
	wg.Wait()
	if w.err != nil {
		t.Fatalf("workload: %v\n--- daemon log ---\n%s", w.err, pt.d.Log())
	}
	t.Logf("%d workload iterations, %d calls retried; %d pods and %d containers checked",
		w.iterations.Load(), w.retried.Load(), len(w.pods), len(w.ctrs))
	w.verify(t)
	checkNoLeaks(t, pt)
	pt.finish()
}

// metricsSocket returns a short socket path for the metrics service.
func metricsSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "arbor-e2e-metrics-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "metrics.sock")
}

// serviceRows reads `arbor status tree`: service name → its row
// (DOMAIN SERVICE STATE RESTARTS PANICS ...). It retries while the
// listener restarts.
func serviceRows(t *testing.T, d *harness.Daemon) map[string][]string {
	t.Helper()
	var out string
	err := retryCall(func(context.Context) error {
		var err error
		out, err = d.Arbor("status", "tree")
		return err
	})
	if err != nil {
		t.Fatalf("status tree: %v", err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 5 {
			rows[f[1]] = f
		}
	}
	return rows
}

// panicService injects a panic into a service and waits until the tree
// shows it running again with more restarts and panics than before.
func panicService(t *testing.T, d *harness.Daemon, name string, before []string) {
	t.Helper()
	if err := retryCall(func(context.Context) error { return d.Fault(name, "panic", 1) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		row := serviceRows(t, d)[name]
		if row[2] == "running" && atoi(row[3]) > atoi(before[3]) && atoi(row[4]) > atoi(before[4]) {
			t.Logf("%s restarted: restarts %s → %s, panics %s → %s", name, before[3], row[3], before[4], row[4])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not restart after its panic: %v (before %v)", name, row, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// BenchmarkRestoreTime measures, with N running pods (ARBOR_BENCH_PODS,
// default 20), the time from exec of a new daemon after a SIGKILL to the
// first successful Version and to ListContainers showing all N running,
// as medians of 5 restarts. Run: go test -tags ... -run '^$' -bench
// RestoreTime -benchtime 1x ./e2e/
func BenchmarkRestoreTime(b *testing.B) {
	n := int(envInt(b, "ARBOR_BENCH_PODS", 20))
	pt := benchPodTest(b)
	ids := ctrIDs(startPods(b, pt, "bench", n, "sleep 3600"))
	var toVersion, toRunning []time.Duration
	for range max(5, b.N) {
		if err := pt.d.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		if _, err := pt.d.Wait(30 * time.Second); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		d, err := harness.Launch(b, harness.Options{Shared: pt.env, Dir: pt.d.Dir, LevelFromConfig: true})
		if err != nil {
			b.Fatal(err)
		}
		pt.d, pt.cri = d, d.Client(b)
		if _, err := firstVersion(d.Socket, 60*time.Second); err != nil {
			b.Fatalf("%v\n%s\nholding the run root lock: %v", err, d.Log(), lockHolders(d.RunRoot))
		}
		toVersion = append(toVersion, time.Since(start))
		waitAllRunning(b, pt, ids)
		toRunning = append(toRunning, time.Since(start))
	}
	b.Logf("%d pods: to Version %v; to all running %v", n, toVersion, toRunning)
	b.ReportMetric(median(toVersion), "ms-to-version(median)")
	b.ReportMetric(median(toRunning), "ms-to-all-running(median)")
}

// benchPodTest is a daemon with the shared environment for a benchmark;
// its pods are removed when the benchmark ends.
func benchPodTest(b *testing.B) *podTest {
	b.Helper()
	env := sharedEnv(b)
	d := harness.Start(b, harness.Options{Shared: env, LevelFromConfig: true})
	pt := &podTest{d: d, cri: d.Client(b), env: env, ctx: context.Background(),
		cgroup: "/" + harness.TestMarker + "bench-restore"}
	harness.RememberCgroup(pt.cgroup)
	b.Cleanup(func() { cleanUpBench(b, pt) })
	if _, err := pt.cri.PullImage(pt.ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: env.Image(fixture.RefBusybox)}}); err != nil {
		b.Fatal(err)
	}
	return pt
}

// cleanUpBench removes the pods of a benchmark that stopped half-way; if
// its daemon is down, a new one on the same folders removes them.
func cleanUpBench(b *testing.B, pt *podTest) {
	if pt.d.Exited() {
		d, err := harness.Launch(b, harness.Options{Shared: pt.env, Dir: pt.d.Dir, LevelFromConfig: true})
		if err == nil {
			err = d.WaitServing(30 * time.Second)
		}
		if err != nil {
			b.Errorf("restarting the daemon to remove the pods: %v; holding the lock: %v", err, lockHolders(pt.d.RunRoot))
			return
		}
		pt.d, pt.cri = d, d.Client(b)
	}
	removeAllPods(b, pt)
	pt.d.Stop(b)
}

func removeAllPods(tb testing.TB, pt *podTest) {
	tb.Helper()
	pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range pods.GetItems() {
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			tb.Errorf("RemovePodSandbox: %v", err)
		}
	}
}

// median returns the median of ds in milliseconds.
func median(ds []time.Duration) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// lockHolders returns "pid cmdline" of the processes that have the run
// root's lock file open, to explain a daemon that finds it held.
func lockHolders(runRoot string) []string {
	lock := filepath.Join(runRoot, "arbor.lock")
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	var out []string
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == lock {
			pid := strings.Split(fd, "/")[2]
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			out = append(out, pid+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}
