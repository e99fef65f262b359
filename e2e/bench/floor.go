package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Floor runs the pod bundle with plain runc (no daemon, no network, a
// shared read-only rootfs) as the lower bound a CRI runtime is compared
// with. Its runc root, bundles and cgroup parent are its own; Close
// removes them.
type Floor struct {
	runc, dir, rootfs, cgParent string
	seq                         int
}

// NewFloor makes the floor's folder and its rootfs: image (a skopeo
// reference such as docker://host/busybox:latest) unpacked, or the host's
// busybox when image is "".
func NewFloor(ctx context.Context, runID, runc, image string, log *slog.Logger) (*Floor, error) {
	dir, err := os.MkdirTemp("", "cribench-floor-")
	if err != nil {
		return nil, fmt.Errorf("creating floor folder: %w", err)
	}
	f := &Floor{runc: runc, dir: dir, rootfs: filepath.Join(dir, "rootfs"), cgParent: "/cribench-" + runID}
	if image == "" {
		err = hostBusyboxRootfs(ctx, f.rootfs)
	} else {
		err = imageRootfs(ctx, image, filepath.Join(dir, "layout"), f.rootfs)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("building floor rootfs: %w", err), f.Close())
	}
	log.Info("Floor rootfs ready", "rootfs", f.rootfs, "image", image)
	return f, nil
}

// Pods runs n containers with `runc run -d` (sleep 3600), then kills and
// deletes each, timing every runc command; "up" is the run and "down" is
// kill plus delete.
func (f *Floor) Pods(ctx context.Context, n int) (*Samples, error) {
	s := &Samples{}
	ids := make([]string, 0, n)
	for range n {
		id, err := f.run(ctx, s)
		if err != nil {
			return s, err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if err := f.remove(ctx, s, id); err != nil {
			return s, err
		}
	}
	return s, nil
}

// run writes a bundle and starts it detached.
func (f *Floor) run(ctx context.Context, s *Samples) (string, error) {
	f.seq++
	id := fmt.Sprintf("cribench-floor-%d", f.seq)
	bundle := filepath.Join(f.dir, "bundles", id)
	if err := f.writeBundle(bundle, id); err != nil {
		return "", err
	}
	// runc run -d hands its stdio to the container, so it gets a file, not
	// a pipe that would stay open as long as the container lives.
	out, err := os.Create(filepath.Join(bundle, "runc.out"))
	if err != nil {
		return "", fmt.Errorf("creating runc output file: %w", err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, f.runc, "--root", f.root(), "run", "-d", "-b", bundle, id)
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		msg, _ := os.ReadFile(out.Name())
		return "", fmt.Errorf("runc run %s: %w: %s", id, err, bytes.TrimSpace(msg))
	}
	s.Add("runc run", took)
	s.Add("up", took)
	return id, nil
}

// remove kills a container with SIGKILL and deletes it (--force: the
// container may not have been reaped yet when kill returns).
func (f *Floor) remove(ctx context.Context, s *Samples, id string) error {
	killed, err := f.timedRunc(ctx, s, "runc kill", "kill", id, "KILL")
	if err != nil {
		return err
	}
	deleted, err := f.timedRunc(ctx, s, "runc delete", "delete", "--force", id)
	if err != nil {
		return err
	}
	s.Add("down", killed+deleted)
	return os.RemoveAll(filepath.Join(f.dir, "bundles", id))
}

func (f *Floor) timedRunc(ctx context.Context, s *Samples, call string, args ...string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, f.runc, append([]string{"--root", f.root()}, args...)...).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	s.Add(call, took)
	return took, nil
}

func (f *Floor) root() string { return filepath.Join(f.dir, "runc") }

// writeBundle writes the bundle folder and config.json of container id.
func (f *Floor) writeBundle(bundle, id string) error {
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return fmt.Errorf("creating bundle %s: %w", id, err)
	}
	data, err := json.Marshal(floorSpec(f.rootfs, f.cgParent+"/"+id))
	if err != nil {
		return fmt.Errorf("encoding spec of %s: %w", id, err)
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
}

// Close deletes every container left in the floor's runc root, removes
// its cgroup parent in every hierarchy and its folder.
func (f *Floor) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	out, err := exec.CommandContext(ctx, f.runc, "--root", f.root(), "list", "-q").Output()
	if err == nil {
		for _, id := range strings.Fields(string(out)) {
			if o, err := exec.CommandContext(ctx, f.runc, "--root", f.root(), "delete", "--force", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("deleting floor container %s: %w: %s", id, err, bytes.TrimSpace(o)))
			}
		}
	}
	errs = append(errs, removeCgroupTree(f.cgParent))
	if err := os.RemoveAll(f.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing floor folder: %w", err))
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes rel, deepest folders first, in every hierarchy
// mounted under /sys/fs/cgroup.
func removeCgroupTree(rel string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	var errs []error
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(root, rel), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// floorSpec is a minimal OCI config running sleep 3600 in rootfs with its
// own PID, IPC, UTS, mount and network namespaces.
func floorSpec(rootfs, cgroupsPath string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "cribench",
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: []string{"sleep", "3600"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd: "/", NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		},
	}
}
