package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// restoreTimeout bounds the whole restore, network calls included, so that
// the socket always comes up.
const restoreTimeout = 30 * time.Second

// restoreWorkers is how many objects are restored at once.
const restoreWorkers = 8

// RestoreReport says what a restore found and did.
type RestoreReport struct {
	Pods       int // pods back in service
	Containers int // containers back in service
	Undone     int // creates that a crash interrupted, undone
	Finished   int // removes that a crash interrupted, finished
	Orphans    int // leftovers that belonged to no record, removed
	Wiped      int // objects removed because the node rebooted
	Images     int // images removed because the version changed
	Failed     int // objects that could not be cleaned up (logged)
}

// RestoreOptions say what the start-up found out about the node.
type RestoreOptions struct {
	// Rebooted means the node restarted since the last run: every container
	// process is gone, so every pod and container is removed.
	Rebooted bool
	// WipeImages removes every image no container uses (after an upgrade,
	// when configured).
	WipeImages bool
}

// Restore loads the records of an earlier run (LIFECYCLE step 8): ready
// objects come back with their real state, half-made ones are undone,
// half-removed ones are finished, and leftovers that belong to no record
// are removed. It runs in parallel and under a deadline.
func (s *RuntimeServer) Restore(ctx context.Context, opts RestoreOptions) (RestoreReport, error) {
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	pods, ctrs, bad, err := s.Store.LoadRecords()
	if err != nil {
		return RestoreReport{}, err
	}
	for id, err := range bad {
		s.log.Warn("Unreadable record skipped", "id", id, "error", err)
	}
	var rep RestoreReport
	var mu sync.Mutex
	count := func(f func(*RestoreReport)) { mu.Lock(); f(&rep); mu.Unlock() }

	if opts.Rebooted {
		s.wipeRecords(ctx, pods, ctrs, count)
	}
	s.removeContainersOfDoomedPods(ctx, pods, ctrs, count)
	parallel(ctx, s.log, values(pods), func(ctx context.Context, p *store.Pod) { s.restorePod(ctx, p, count) })
	parallel(ctx, s.log, values(ctrs), func(ctx context.Context, c *store.Container) { s.restoreContainer(ctx, c, count) })
	for _, o := range s.findOrphans(ctx) {
		if err := o.remove(ctx); err != nil {
			s.log.Warn("Cannot remove leftover", "kind", o.Kind, "id", o.ID, "error", err)
			rep.Failed++
			continue
		}
		s.log.Info("Leftover removed", "kind", o.Kind, "id", o.ID, "path", o.Path)
		rep.Orphans++
	}
	if err := s.Store.UpdateLeftCgroups(sweepCgroups); err != nil {
		s.log.Warn("Cannot sweep cgroup folders left by removed pods", "error", err)
	}
	if opts.WipeImages {
		rep.Images = s.wipeUnusedImages(ctx)
	}
	return rep, nil
}

// removeContainersOfDoomedPods removes the containers of pods whose create
// or removal a crash interrupted, and drops them from ctrs: they go with
// their pod, and their cgroups must be gone before the pod's can go.
func (s *RuntimeServer) removeContainersOfDoomedPods(ctx context.Context, pods map[string]*store.Pod, ctrs map[string]*store.Container, count func(func(*RestoreReport))) {
	var doomed []*store.Container
	for _, c := range ctrs {
		if p, ok := pods[c.PodID]; ok && p.Phase != store.PhaseReady {
			doomed = append(doomed, c)
		}
	}
	parallel(ctx, s.log, doomed, func(ctx context.Context, c *store.Container) {
		err := s.cleanupContainer(ctx, c)
		if err != nil {
			s.log.Warn("Cannot remove a container of an interrupted pod", "container_id", c.ID, "pod_sandbox_id", c.PodID, "error", err)
		}
		count(func(r *RestoreReport) {
			if err != nil {
				r.Failed++
			} else {
				r.Finished++
			}
		})
	})
	for _, c := range doomed {
		delete(ctrs, c.ID)
	}
}

// wipeRecords removes every pod and container after a reboot, and empties
// the maps so that restore finds nothing left to bring back.
func (s *RuntimeServer) wipeRecords(ctx context.Context, pods map[string]*store.Pod, ctrs map[string]*store.Container, count func(func(*RestoreReport))) {
	parallel(ctx, s.log, values(ctrs), func(ctx context.Context, c *store.Container) {
		s.countCleanup(s.cleanupContainer(ctx, c), "container", c.ID, count)
	})
	parallel(ctx, s.log, values(pods), func(ctx context.Context, p *store.Pod) {
		s.countCleanup(s.cleanupPod(ctx, p), "pod", p.ID, count)
	})
	clear(pods)
	clear(ctrs)
}

func (s *RuntimeServer) countCleanup(err error, kind, id string, count func(func(*RestoreReport))) {
	if err != nil {
		s.log.Warn("Cannot remove after reboot", "kind", kind, "id", id, "error", err)
		count(func(r *RestoreReport) { r.Failed++ })
		return
	}
	count(func(r *RestoreReport) { r.Wiped++ })
}

// wipeUnusedImages removes every image that no container uses and that is
// not pinned, and returns how many it removed.
func (s *RuntimeServer) wipeUnusedImages(ctx context.Context) int {
	imgs, err := s.Images.List(ctx, "")
	if err != nil {
		s.log.Warn("Cannot list images to wipe", "error", err)
		return 0
	}
	n := 0
	for _, img := range imgs {
		if img.Pinned {
			continue
		}
		if err := s.Images.Remove(ctx, img.ID); err != nil {
			s.log.Info("Image kept", "image", img.ID, "reason", err)
			continue
		}
		n++
	}
	return n
}

// Wipe removes every pod, container and image, for `arbor wipe` on a node
// whose daemon is stopped.
func (s *RuntimeServer) Wipe(ctx context.Context) (RestoreReport, error) {
	rep, err := s.Restore(ctx, RestoreOptions{Rebooted: true})
	if err != nil {
		return rep, err
	}
	if err := s.Images.Store().Wipe(); err != nil {
		return rep, fmt.Errorf("wiping storage: %w", err)
	}
	return rep, nil
}

func (s *RuntimeServer) restorePod(ctx context.Context, p *store.Pod, count func(func(*RestoreReport))) {
	if p.Phase != store.PhaseReady {
		err := s.cleanupPod(ctx, p)
		count(func(r *RestoreReport) {
			switch {
			case err != nil:
				r.Failed++
			case p.Phase == store.PhaseCreating:
				r.Undone++
			default:
				r.Finished++
			}
		})
		if err != nil {
			s.log.Warn("Cannot clean up interrupted pod", "pod_sandbox_id", p.ID, "phase", p.Phase, "error", err)
		}
		return
	}
	if err := s.Store.Pods.ReserveName(p.Name, p.ID); err != nil {
		s.log.Warn("Pod name held twice", "pod_sandbox_id", p.ID, "error", err)
		return
	}
	e := s.Store.Pods.Add(p.ID, *p)
	// An infra process that exited while the daemon was down leaves the
	// pod not ready, as one that exits while it runs.
	e.Op.Lock()
	s.markInfraGone(e)
	e.Op.Unlock()
	count(func(r *RestoreReport) { r.Pods++ })
}

// cleanupPod undoes everything a pod may have made; every step tolerates
// what is already gone, and the paths come from the ID.
func (s *RuntimeServer) cleanupPod(ctx context.Context, p *store.Pod) error {
	if p.Dir == "" {
		p.Dir = s.podDir(p.ID)
	}
	if p.NS.Dir == "" {
		p.NS.Dir = filepath.Join(s.RunRoot, "ns", p.ID)
		p.NS.IPC, p.NS.UTS = filepath.Join(p.NS.Dir, "ipc"), filepath.Join(p.NS.Dir, "uts")
	}
	if p.NS.Net == "" && !hostNetwork(p) {
		p.NS.Net = s.netnsPath(p.ID)
	}
	p.InfraID = p.ID
	errs := []error{s.removeInfra(ctx, p)}
	if !hostNetwork(p) {
		errs = append(errs, s.Network.Teardown(ctx, s.networkPod(p)))
	}
	errs = append(errs,
		sandbox.UnmountShm(filepath.Join(p.Dir, shmDir)),
		s.unpinPod(p),
		s.removePodCgroups(p.Cgroups),
		os.RemoveAll(p.Dir),
	)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.Store.DeletePod(p.ID)
}

func (s *RuntimeServer) netnsPath(id string) string {
	return filepath.Join(s.Network.Config().NetNSDir, id)
}

func (s *RuntimeServer) restoreContainer(ctx context.Context, c *store.Container, count func(func(*RestoreReport))) {
	_, podErr := s.Store.Pods.Lookup(c.PodID)
	if c.Phase != store.PhaseReady || podErr != nil {
		err := s.cleanupContainer(ctx, c)
		count(func(r *RestoreReport) {
			switch {
			case err != nil:
				r.Failed++
			case c.Phase == store.PhaseCreating:
				r.Undone++
			default:
				r.Finished++
			}
		})
		if err != nil {
			s.log.Warn("Cannot clean up interrupted container", "container_id", c.ID, "phase", c.Phase, "error", err)
		}
		return
	}
	if err := s.Store.Containers.ReserveName(c.Name, c.ID); err != nil {
		s.log.Warn("Container name held twice", "container_id", c.ID, "error", err)
		return
	}
	e := s.Store.Containers.Add(c.ID, *c)
	s.refreshState(ctx, e)
	count(func(r *RestoreReport) { r.Containers++ })
}

// refreshState records an exit that happened while the daemon was down,
// and marks a container whose process vanished without an exit file (a
// reboot, a killed conmon) as exited with an unknown code.
func (s *RuntimeServer) refreshState(ctx context.Context, e *store.Entry[store.Container]) {
	c := e.Get()
	if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		return
	}
	if exited, _, err := s.markLost(e); exited || err != nil {
		return
	}
	if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
		s.noticeStarted(ctx, e)
	}
}

// cleanupContainer removes everything a container may have made.
func (s *RuntimeServer) cleanupContainer(ctx context.Context, c *store.Container) error {
	if c.BundleDir == "" {
		c.BundleDir = s.bundleDir(c.ID)
	}
	err := errors.Join(
		ignoreNotFound(s.OCI.Delete(ctx, c.ID)),
		s.removeRootfs(c.ID),
		os.RemoveAll(c.BundleDir),
		removeEmptyCgroup(c.CgroupPath),
	)
	if err != nil {
		return err
	}
	return s.Store.DeleteContainer(c.ID)
}

// removeEmptyCgroup removes a container's cgroup folder, in every
// hierarchy, when the runtime no longer knows the container (a crash
// before its state was written) and the folder is empty; a folder that
// is gone or still has processes is left to the runtime or to leftover
// collection.
func removeEmptyCgroup(path string) error {
	if path == "" || !strings.HasPrefix(filepath.Base(path), "arbor-") {
		return nil
	}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range roots {
		if dir := filepath.Join(root, path); cgroupEmpty(dir) {
			if err := ignoreNotExist(os.Remove(dir)); err != nil && !errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("removing container cgroup %s: %w", dir, err)
			}
		}
	}
	return nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, oci.ErrNotFound) {
		return nil
	}
	return err
}

func values[T any](m map[string]*T) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// parallel runs fn over items with restoreWorkers goroutines and waits. A
// panic in fn is logged and skips only its item, so that one bad record
// never keeps the daemon from starting.
func parallel[T *store.Pod | *store.Container](
	ctx context.Context, log *slog.Logger, items []T, fn func(context.Context, T),
) {
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(restoreWorkers, len(items)) {
		wg.Go(func() {
			for it := range work {
				_ = safe.Run(log, "restore of "+restoreName(it), func() { fn(ctx, it) })
			}
		})
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
}

// restoreName names a pod or container being restored.
func restoreName[T *store.Pod | *store.Container](it T) string {
	if p, ok := any(it).(*store.Pod); ok {
		return "pod " + p.ID
	}
	return "container " + any(it).(*store.Container).ID
}

// noticeStarted records a start that the runtime did but the record did
// not get (the daemon died between the two), so that the kubelet sees the
// container running instead of failing to start it again.
func (s *RuntimeServer) noticeStarted(ctx context.Context, e *store.Entry[store.Container]) {
	st, err := s.OCI.State(ctx, e.ID)
	if err != nil || st.Status != oci.StatusRunning {
		return
	}
	c := e.Update(func(c *store.Container) {
		c.State = runtimeapi.ContainerState_CONTAINER_RUNNING
		if c.StartedAt == 0 {
			c.StartedAt = time.Now().UnixNano()
		}
	})
	if err := s.Store.SaveContainer(c); err != nil {
		s.log.Warn("Cannot save container record", "container_id", c.ID, "error", err)
	}
	s.log.Info("Container found running after a crash during its start", "container_id", c.ID)
}
