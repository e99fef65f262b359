package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsthread"
)

// UserNS is the ID mapping of a pod's own user namespace: host IDs
// HostID..HostID+Size-1 appear inside as ContainerID onwards.
type UserNS struct {
	UIDs []specs.LinuxIDMapping
	GIDs []specs.LinuxIDMapping
}

// holdCommand is the re-executed daemon that keeps a new user namespace
// (and the namespaces it owns) alive until they are pinned.
const holdCommand = "arbor-userns-hold"

func init() { reexec.Register(holdCommand, hold) }

// hold waits for its stdin to close. It runs in the namespaces a holder
// made and does nothing else.
func hold() {
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// holder is a process in a new user namespace with the requested
// mappings, and in new namespaces of the other kinds asked for, which
// that user namespace owns.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHolder starts a holder. The kernel creates the user namespace first
// when one clone asks for several, so the others belong to it: that is
// what lets a container in the pod mount sysfs and proc, and lets a root
// that is only root inside the pod own the pod's network.
func startHolder(m UserNS, kinds []nsKind) (*holder, error) {
	flags := uintptr(unix.CLONE_NEWUSER)
	for _, k := range kinds {
		flags |= uintptr(k.flag)
	}
	cmd := reexec.Command(holdCommand)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: sysMappings(m.UIDs),
		GidMappings: sysMappings(m.GIDs),
		// Containers joining the namespace call setgroups(2); "deny"
		// would forbid that in it for good.
		GidMappingsEnableSetgroups: true,
	}
	// No Pdeathsig: it fires when the forking thread exits, which a
	// throwaway thread of another goroutine may make happen at any time.
	// If the daemon dies, the pipe closes and the holder exits anyway.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("starting user namespace holder: %w", err)
	}
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return nil, fmt.Errorf("starting user namespace holder: %w", err)
	}
	return &holder{cmd: cmd, stdin: stdin}, nil
}

// nsPath is the holder's namespace file of the given kind.
func (h *holder) nsPath(kind string) string {
	return fmt.Sprintf("/proc/%d/ns/%s", h.cmd.Process.Pid, kind)
}

// stop lets the holder exit and reaps it.
func (h *holder) stop() error {
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		return fmt.Errorf("stopping user namespace holder: %w", err)
	}
	return nil
}

func sysMappings(in []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(in))
	for _, m := range in {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// pinWithUserNS creates a user namespace with m, and new namespaces of
// kinds owned by it, and bind mounts each onto dir/<kind>; the user
// namespace is among the returned paths as "user". On error nothing made
// is left.
func pinWithUserNS(dir string, m UserNS, kinds []nsKind) (paths map[string]string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating namespace folder: %w", err)
	}
	all := append([]nsKind{kindUser}, kinds...)
	paths = make(map[string]string, len(all))
	defer func() {
		if err != nil {
			for _, p := range paths {
				unpinFile(p)
			}
			os.Remove(dir)
		}
	}()
	h, err := startHolder(m, kinds)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, h.stop()) }()
	for _, k := range all {
		p := dir + "/" + k.name
		if err := createMountPoint(p); err != nil {
			return nil, err
		}
		paths[k.name] = p
		if err := unix.Mount(h.nsPath(k.name), p, "none", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("bind mounting %s namespace: %w", k.name, err)
		}
	}
	return paths, nil
}

// setHostnameIn sets the hostname of the UTS namespace pinned at path,
// from a throwaway thread.
func setHostnameIn(path, name string) error {
	if name == "" || path == "" {
		return nil
	}
	return nsthread.Run(func() error {
		if err := joinNamespace(path, unix.CLONE_NEWUTS); err != nil {
			return err
		}
		if err := unix.Sethostname([]byte(name)); err != nil {
			return fmt.Errorf("setting hostname %q: %w", name, err)
		}
		return nil
	})
}

// IDMappedMount makes an ID-mapped bind mount of source at target (an
// existing empty folder or file) through the user namespace pinned at
// usernsPath: files owned by ID x on disk appear owned by the host ID the
// namespace maps container ID x to, so a pod's root owns what the host's
// root owns. The mount is recursive and private.
func IDMappedMount(source, target, usernsPath string) error {
	userns, err := os.Open(usernsPath)
	if err != nil {
		return fmt.Errorf("opening user namespace: %w", err)
	}
	defer userns.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("cloning mount of %s: %w", source, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd()), Propagation: unix.MS_PRIVATE}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("ID-mapping mount of %s: %w", source, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("moving ID-mapped mount to %s: %w", target, err)
	}
	return nil
}

// ProbeUserNS reports whether this kernel and process can make a pod user
// namespace with its own network, IPC and UTS namespaces, by making one
// for a moment.
func ProbeUserNS() error {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 30, Size: 65536}}
	h, err := startHolder(UserNS{UIDs: m, GIDs: m}, []nsKind{kindNet, kindIPC, kindUTS})
	if err != nil {
		return err
	}
	return h.stop()
}
