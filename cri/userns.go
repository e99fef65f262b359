package cri

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/idtools"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/nsfile"
	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// A pod with a user namespace (the kubelet's hostUsers: false) gets one of
// its own, with the network, IPC and UTS namespaces inside it, and all its
// containers join it. Their root filesystems are ID-mapped by storage and
// their volumes by the daemon (runc 1.1 cannot), so files the host's root
// owns are the pod root's.

// validateUserNamespace checks a pod's user namespace request: none or
// NODE keeps the host's; POD takes exactly one UID and one GID mapping,
// each starting at container ID 0 (as the kubelet sends them). A pod
// cannot have its own user namespace and share the host's network, IPC or
// PID namespace.
func validateUserNamespace(cfg *runtimeapi.PodSandboxConfig) error {
	const field = "config.linux.security_context.namespace_options.userns_options"
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	u := nsOpts.GetUsernsOptions()
	if u == nil {
		return nil // the host's; POD is mode 0, so nil must be checked first
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return invalid(
			field+".mode",
			"%v is not supported: a pod uses the node's user namespace (NODE) or one of its own (POD)",
			u.GetMode(),
		)
	}
	if err := checkIDMapping(u.GetUids()); err != nil {
		return invalid(field+".uids", "%v", err)
	}
	if err := checkIDMapping(u.GetGids()); err != nil {
		return invalid(field+".gids", "%v", err)
	}
	for name, mode := range map[string]runtimeapi.NamespaceMode{"network": nsOpts.GetNetwork(), "ipc": nsOpts.GetIpc(), "pid": nsOpts.GetPid()} {
		if mode == runtimeapi.NamespaceMode_NODE {
			return invalid(
				field,
				"a pod with its own user namespace cannot use the node's %s namespace",
				name,
			)
		}
	}
	return nil
}

// checkIDMapping accepts exactly one mapping from container ID 0.
func checkIDMapping(m []*runtimeapi.IDMapping) error {
	switch {
	case len(m) != 1:
		return fmt.Errorf("want exactly one mapping, got %d", len(m))
	case m[0].GetContainerId() != 0:
		return fmt.Errorf(
			"container ID 0 (root) is not mapped: the mapping starts at %d",
			m[0].GetContainerId(),
		)
	case m[0].GetLength() == 0:
		return errors.New("mapping of length 0")
	case uint64(m[0].GetHostId())+uint64(m[0].GetLength()) > math.MaxUint32:
		return fmt.Errorf("host IDs %d+%d overflow 32 bits", m[0].GetHostId(), m[0].GetLength())
	}
	return nil
}

// podUserNS is the pod's user namespace mapping, or nil when it uses the
// host's.
func podUserNS(cfg *runtimeapi.PodSandboxConfig) *sandbox.UserNS {
	u := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u == nil || u.GetMode() != runtimeapi.NamespaceMode_POD {
		return nil
	}
	return &sandbox.UserNS{UIDs: spec.IDMappings(u.GetUids()), GIDs: spec.IDMappings(u.GetGids())}
}

// storageOptions asks storage for a root filesystem mapped like the pod's
// user namespace.
func storageOptions(pod *store.Pod) *storage.ContainerOptions {
	opts := &storage.ContainerOptions{}
	if pod == nil {
		return opts
	}
	if u := podUserNS(pod.Config); u != nil {
		opts.IDMappingOptions = storage.IDMappingOptions{
			UIDMap: storageMappings(u.UIDs),
			GIDMap: storageMappings(u.GIDs),
		}
	}
	return opts
}

func storageMappings(in []specs.LinuxIDMapping) []idtools.IDMap {
	out := make([]idtools.IDMap, 0, len(in))
	for _, m := range in {
		out = append(
			out,
			idtools.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)},
		)
	}
	return out
}

// checkContainerUserNS refuses a container whose user namespace request
// differs from its pod's: all containers of a pod share one.
func checkContainerUserNS(cfg *runtimeapi.ContainerConfig, pod *store.Pod) error {
	want := pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	got := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if got == nil || proto.Equal(got, want) ||
		(got.GetMode() == runtimeapi.NamespaceMode_NODE && want == nil) {
		return nil
	}
	return invalid(
		"config.linux.security_context.namespace_options.userns_options",
		"differs from the pod's: the containers of a pod share its user namespace",
	)
}

// idmapDir holds a container's ID-mapped volume mounts between bundle
// writing and runc create. Its folders are 0711 so that the pod's root,
// which is not the host's, can reach them when runc mounts them.
func (s *RuntimeServer) idmapDir(id string) string { return filepath.Join(s.RunRoot, "idmap", id) }

// stageIDMappedMounts replaces each volume of cfg that asks for ID
// mappings by an ID-mapped mount of it under idmapDir, made through the
// pod's user namespace, and returns the new config. Mappings must equal the
// pod's. unstageIDMappedMounts undoes it; the container keeps its own
// copies of the mounts once runc has created it.
func (s *RuntimeServer) stageIDMappedMounts(
	id string,
	cfg *runtimeapi.ContainerConfig,
	pod *store.Pod,
) (*runtimeapi.ContainerConfig, error) {
	var staged *runtimeapi.ContainerConfig
	for i, m := range cfg.GetMounts() {
		if len(m.GetUidMappings()) == 0 && len(m.GetGidMappings()) == 0 {
			continue
		}
		field := fmt.Sprintf("config.mounts[%d]", i)
		if err := s.checkMountMappings(m, pod, field); err != nil {
			return nil, err
		}
		if staged == nil {
			staged = proto.Clone(cfg).(*runtimeapi.ContainerConfig)
		}
		if _, err := os.Stat(m.GetHostPath()); err != nil {
			return nil, invalid(field+".host_path", "%v", err)
		}
		target, err := s.stageOne(
			m.GetHostPath(),
			pod.NS.User,
			filepath.Join(s.idmapDir(id), strconv.Itoa(i)),
		)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		staged.Mounts[i].HostPath = target
		staged.Mounts[i].UidMappings, staged.Mounts[i].GidMappings = nil, nil
	}
	if staged == nil {
		return cfg, nil
	}
	return staged, nil
}

// checkMountMappings accepts a mount's mappings only in a pod with a user
// namespace and only equal to the pod's.
func (s *RuntimeServer) checkMountMappings(m *runtimeapi.Mount, pod *store.Pod, field string) error {
	u := pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if pod.NS.User == "" {
		return invalid(field, "ID-mapped mounts need a pod with its own user namespace")
	}
	same := func(a, b []*runtimeapi.IDMapping) bool {
		return len(a) == len(b) && (len(a) == 0 || proto.Equal(a[0], b[0]))
	}
	if !same(m.GetUidMappings(), u.GetUids()) || !same(m.GetGidMappings(), u.GetGids()) {
		return invalid(field, "ID mappings differ from the pod's user namespace")
	}
	return nil
}

// stageOne makes the ID-mapped mount of source at target: a folder, or an
// empty file when source is not a folder.
func (s *RuntimeServer) stageOne(source, userns, target string) (string, error) {
	fi, err := os.Stat(source)
	if err != nil {
		return "", fmt.Errorf("host path: %w", err)
	}
	if err := mkdirAllMode(filepath.Dir(target), 0o711); err != nil {
		return "", err
	}
	if fi.IsDir() {
		err = os.Mkdir(target, 0o711)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return "", fmt.Errorf("creating ID-mapped mount point: %w", err)
	}
	if err := sandbox.IDMappedMount(source, target, userns); err != nil {
		os.Remove(target)
		return "", err
	}
	return target, nil
}

// unstageIDMappedMounts detaches and removes every staged mount in dir (an
// idmapDir) and then dir; a missing folder is fine.
func unstageIDMappedMounts(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ID-mapped mounts: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := nsfile.UnmountAll(p); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// makeTraversable lets anyone search (o+x) dir and each folder above it,
// so that the pod's root, which is not the host's, reaches its root
// filesystem: runc 1.1 mounts it from inside the user namespace. Folders
// keep their other bits, so nothing becomes listable or readable.
func makeTraversable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("opening the path to the root filesystem: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o111); err != nil {
				return fmt.Errorf("opening the path to the root filesystem: %w", err)
			}
		}
		if d == "/" {
			return nil
		}
	}
}

// mkdirAllMode is os.MkdirAll that also sets mode on the last folder,
// whatever the umask.
func mkdirAllMode(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// userNamespaces reports, once per process, whether pods can have their
// own user namespace here.
var userNamespaces = sync.OnceValues(func() (bool, error) {
	if err := sandbox.ProbeUserNS(); err != nil {
		return false, err
	}
	return true, nil
})

// logUserNSProbe logs why user namespaces are off, once.
func logUserNSProbe(ctx context.Context) bool {
	ok, err := userNamespaces()
	if err != nil {
		logUserNSOnce.Do(func() { Logger(ctx).Warn("Pods cannot have their own user namespace", "err", err) })
	}
	return ok
}

var logUserNSOnce sync.Once
