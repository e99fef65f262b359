package e2e

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// TestImageVolume mounts an image into three containers, then kills the
// daemon inside a create that mounts it and inside two removals, one
// before and one after it unmounts the volume. After each restart
// storage's mount count is right again: the image stays mounted (and
// cannot be removed) while a container holds it, and once the last one is
// gone nothing is mounted and the image can be removed.
func TestImageVolume(t *testing.T) {
	pt := newPodTest(t)
	image := pt.env.Image(fixture.RefMultilayer)
	pt.pull(fixture.RefMultilayer)
	pod := pt.podConfig("image-volume")
	podID := pt.runPod(pod)
	withVolume := func(name string) *runtimeapi.ContainerConfig {
		cfg := pt.ctrConfig(name, "sleep 3600")
		cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/vol", Readonly: true,
			Image: &runtimeapi.ImageSpec{Image: image}}}
		return cfg
	}
	crashAt := func(point string, call func()) {
		t.Helper()
		if err := pt.d.Fault(point, "exit", 1); err != nil {
			t.Fatal(err)
		}
		call()
		if code, err := pt.d.Wait(20 * time.Second); err != nil || code != -1 {
			t.Fatalf("the daemon did not die at %s: exit %d, %v", point, code, err)
		}
		pt.restart(t)
		checkNoLeaks(t, pt)
	}
	removeImage := func() error {
		_, err := pt.cri.RemoveImage(pt.ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
		return err
	}

	a := pt.createAndStart(podID, pod, withVolume("a"))
	b := pt.createAndStart(podID, pod, withVolume("b"))
	d := pt.createAndStart(podID, pod, withVolume("d"))
	if out := pt.exec(b, "ls", "/vol/data"); strings.TrimSpace(out) == "" {
		t.Fatal("the image volume shows no /data")
	}
	hostPath := ""
	for _, m := range pt.status(b).GetMounts() {
		if m.GetContainerPath() == "/vol" {
			hostPath = m.GetHostPath()
		}
	}
	if hostPath == "" || len(harness.MountsUnder(hostPath)) == 0 {
		t.Fatalf("the volume's host path %q is not mounted", hostPath)
	}
	if err := removeImage(); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "image volume") {
		t.Fatalf("RemoveImage of a mounted image volume: %v, want FailedPrecondition naming the volume", err)
	}

	// A create that mounted the image dies before its record is saved:
	// restore drops the mount nobody holds.
	crashAt("CreateContainer.after-runtime", func() {
		_, _ = pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: podID, Config: withVolume("c"), SandboxConfig: pod})
	})
	// A removal dies before it unmounted the volume, and another after:
	// restore finishes both, and b's mount must still count.
	crashAt("RemoveContainer.after-runtime", func() {
		_, _ = pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: a})
	})
	crashAt("RemoveContainer.before-state-write", func() {
		_, _ = pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: d})
	})
	if err := removeImage(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RemoveImage while b still holds the volume, after the crashes: %v, want FailedPrecondition", err)
	}
	if len(harness.MountsUnder(hostPath)) == 0 {
		t.Fatal("b's image volume is no longer mounted on the host after the crashes")
	}
	if out := pt.exec(b, "ls", "/vol/data"); strings.TrimSpace(out) == "" {
		t.Fatal("b's image volume shows no /data after the crashes")
	}

	if _, err := pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: b}); err != nil {
		t.Fatal(err)
	}
	if left := harness.MountsUnder(hostPath); len(left) > 0 {
		t.Fatalf("the image is still mounted with no container holding it: %v", left)
	}
	if err := removeImage(); err != nil {
		t.Fatalf("RemoveImage with no volume left: %v", err)
	}
	pt.finish()
}
