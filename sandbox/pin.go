package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsfile"
	"github.com/arbor-cri/arbor/internal/nsthread"
	"github.com/arbor-cri/arbor/oci/spec"
)

// DefaultNsDir is the folder under which pods' namespaces are pinned when
// Options.NsDir is empty.
const DefaultNsDir = "/run/arbor/ns"

// maxHostnameLen is the kernel's HOST_NAME_MAX.
const maxHostnameLen = 64

// Namespaces names a pod's namespace files. An empty path means the pod
// uses the host's namespace of that type.
type Namespaces struct {
	// Net is the pod network namespace.
	Net string
	// IPC is the pod IPC namespace.
	IPC string
	// UTS is the pod UTS namespace (the host's with host network).
	UTS string
	// User is the pod user namespace; empty means the host's.
	User string
	// Dir is the pod's pin folder, NsDir/<id>, holding the namespace files
	// PinNamespaces bind mounted; empty when it pinned nothing.
	Dir string
}

// SpecPaths returns the namespace paths in the form oci/spec takes them.
func (n Namespaces) SpecPaths() spec.NamespacePaths {
	return spec.NamespacePaths{Network: n.Net, IPC: n.IPC, UTS: n.UTS, User: n.User}
}

// Options says which namespaces PinNamespaces creates.
type Options struct {
	// ID names the pod's pin folder (required; no "/").
	ID string
	// NsDir is the parent of the pin folders; DefaultNsDir when empty.
	NsDir string
	// HostNetwork keeps the host's network and UTS namespaces.
	HostNetwork bool
	// HostIPC keeps the host's IPC namespace.
	HostIPC bool
	// Hostname is set in the new UTS namespace; empty keeps the host's name.
	Hostname string
	// NewNetNS creates and pins the network namespace (network.Manager's
	// NewNetNS); the caller removes it. When nil, PinNamespaces pins a new
	// empty network namespace in the pin folder itself.
	NewNetNS func(id string) (string, error)
	// UserNS, when set, gives the pod its own user namespace with these
	// mappings; the pod's network, IPC and UTS namespaces then belong to
	// it. Host network or host IPC cannot be combined with it.
	UserNS *UserNS
	// AdoptNetNS pins the network namespace file at from where NewNetNS
	// would have made one (network.Manager's AdoptNetNS); it is needed
	// with UserNS and NewNetNS, since the network namespace must be made
	// inside the user namespace.
	AdoptNetNS func(id, from string) (string, error)
}

// nsKind is one namespace type that can be created and pinned.
type nsKind struct {
	name string // file name under /proc/<pid>/task/<tid>/ns
	flag int    // CLONE_NEW* flag
}

var (
	kindNet  = nsKind{"net", unix.CLONE_NEWNET}
	kindIPC  = nsKind{"ipc", unix.CLONE_NEWIPC}
	kindUTS  = nsKind{"uts", unix.CLONE_NEWUTS}
	kindUser = nsKind{"user", unix.CLONE_NEWUSER}
	// pinnedKinds are the file names UnpinNamespaces cleans from a folder.
	pinnedKinds = []nsKind{kindIPC, kindUTS, kindNet, kindUser}
)

// PinNamespaces creates the pod's IPC namespace (unless HostIPC) and UTS
// namespace with the pod hostname (unless HostNetwork), bind mounted onto
// NsDir/<id>/{ipc,uts}, then its network namespace through NewNetNS (unless
// HostNetwork). No process holds them. On error nothing made is left.
func PinNamespaces(ctx context.Context, opts Options) (Namespaces, error) {
	if err := opts.validate(); err != nil {
		return Namespaces{}, err
	}
	if err := ctx.Err(); err != nil {
		return Namespaces{}, fmt.Errorf("pinning pod namespaces: %w", err)
	}
	if opts.UserNS != nil {
		return pinUserNS(opts)
	}
	ns, err := pinLocal(opts)
	if err != nil {
		return Namespaces{}, fmt.Errorf("pinning pod namespaces: %w", err)
	}
	if err := pinNetwork(ctx, opts, &ns); err != nil {
		return Namespaces{}, errors.Join(err, UnpinNamespaces(ns))
	}
	return ns, nil
}

// validate checks the ID and hostname.
func (o *Options) validate() error {
	if o.ID == "" || o.ID == "." || o.ID == ".." || strings.ContainsAny(o.ID, "/\x00") {
		return fmt.Errorf("pinning pod namespaces: invalid id %q", o.ID)
	}
	if len(o.Hostname) > maxHostnameLen || strings.ContainsAny(o.Hostname, "\x00\n") {
		return fmt.Errorf("pinning pod namespaces: invalid hostname %q", o.Hostname)
	}
	if o.UserNS != nil && (o.HostNetwork || o.HostIPC) {
		return errors.New("pinning pod namespaces: a pod user namespace cannot share the host's network or IPC namespace")
	}
	if o.UserNS != nil && o.NewNetNS != nil && o.AdoptNetNS == nil {
		return errors.New("pinning pod namespaces: a pod user namespace needs AdoptNetNS")
	}
	return nil
}

// pinUserNS pins a new user namespace and the network, IPC and UTS
// namespaces it owns; the network one goes where AdoptNetNS puts it.
func pinUserNS(opts Options) (Namespaces, error) {
	dir := filepath.Join(opts.nsDir(), opts.ID)
	paths, err := pinWithUserNS(dir, *opts.UserNS, []nsKind{kindIPC, kindUTS, kindNet})
	if err != nil {
		return Namespaces{}, fmt.Errorf("pinning pod namespaces: %w", err)
	}
	ns := Namespaces{Dir: dir, User: paths["user"], IPC: paths["ipc"], UTS: paths["uts"], Net: paths["net"]}
	fail := func(err error) (Namespaces, error) {
		return Namespaces{}, errors.Join(fmt.Errorf("pinning pod namespaces: %w", err), UnpinNamespaces(ns))
	}
	if err := setHostnameIn(ns.UTS, opts.Hostname); err != nil {
		return fail(err)
	}
	if opts.AdoptNetNS != nil {
		net, err := opts.AdoptNetNS(opts.ID, paths["net"])
		if err != nil {
			return fail(fmt.Errorf("adopting pod network namespace: %w", err))
		}
		// The pin in the pod's folder stays until UnpinNamespaces.
		ns.Net = net
	}
	return ns, nil
}

// nsDir is the parent of the pin folders.
func (o *Options) nsDir() string {
	if o.NsDir == "" {
		return DefaultNsDir
	}
	return o.NsDir
}

// localKinds lists the namespaces pinned in the pod's own folder.
func (o *Options) localKinds() []nsKind {
	var kinds []nsKind
	if !o.HostIPC {
		kinds = append(kinds, kindIPC)
	}
	if !o.HostNetwork {
		kinds = append(kinds, kindUTS)
		if o.NewNetNS == nil {
			kinds = append(kinds, kindNet)
		}
	}
	return kinds
}

// pinLocal pins the namespaces that live in NsDir/<id>.
func pinLocal(opts Options) (Namespaces, error) {
	kinds := opts.localKinds()
	if len(kinds) == 0 {
		return Namespaces{}, nil
	}
	dir := filepath.Join(opts.nsDir(), opts.ID)
	setup := func() error { return setHostname(kinds, opts.Hostname) }
	paths, err := pinNew(dir, kinds, setup)
	if err != nil {
		return Namespaces{}, err
	}
	return Namespaces{Dir: dir, IPC: paths["ipc"], UTS: paths["uts"], Net: paths["net"]}, nil
}

// pinNetwork asks the callback for the network namespace.
func pinNetwork(ctx context.Context, opts Options, ns *Namespaces) error {
	if opts.HostNetwork || opts.NewNetNS == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("creating pod network namespace: %w", err)
	}
	path, err := opts.NewNetNS(opts.ID)
	if err != nil {
		return fmt.Errorf("creating pod network namespace: %w", err)
	}
	ns.Net = path
	return nil
}

// setHostname sets name in a new UTS namespace, when kinds has one.
func setHostname(kinds []nsKind, name string) error {
	if name == "" {
		return nil
	}
	for _, k := range kinds {
		if k == kindUTS {
			if err := unix.Sethostname([]byte(name)); err != nil {
				return fmt.Errorf("setting hostname %q: %w", name, err)
			}
		}
	}
	return nil
}

// pinNew creates new namespaces of kinds on a throwaway thread, runs setup
// inside them and bind mounts each onto dir/<kind>. It returns the paths by
// kind name and leaves nothing behind on error.
func pinNew(dir string, kinds []nsKind, setup func() error) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating namespace folder: %w", err)
	}
	paths := make(map[string]string, len(kinds))
	var made []string
	rollback := func() {
		for _, p := range made {
			unpinFile(p)
		}
		os.Remove(dir)
	}
	for _, k := range kinds {
		p := filepath.Join(dir, k.name)
		if err := createMountPoint(p); err != nil {
			rollback()
			return nil, err
		}
		made = append(made, p)
		paths[k.name] = p
	}
	if err := nsthread.Run(func() error { return unshareAndBind(kinds, paths, setup) }); err != nil {
		rollback()
		return nil, err
	}
	return paths, nil
}

// createMountPoint creates the empty file a namespace is mounted onto.
func createMountPoint(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("creating namespace mount point: %w", err)
	}
	return f.Close()
}

// unshareAndBind moves the calling throwaway thread into new namespaces,
// runs setup there and bind mounts the thread's namespace files.
func unshareAndBind(kinds []nsKind, paths map[string]string, setup func() error) error {
	flags := 0
	for _, k := range kinds {
		flags |= k.flag
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unsharing namespaces: %w", err)
	}
	if err := setup(); err != nil {
		return err
	}
	for _, k := range kinds {
		if err := unix.Mount(nsfile.ThreadPath(k.name), paths[k.name], "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mounting %s namespace: %w", k.name, err)
		}
	}
	return nil
}

// UnpinNamespaces unmounts and removes the namespace files in ns.Dir and
// then the folder itself. Namespace paths outside ns.Dir (a network
// namespace from Options.NewNetNS) are the caller's to remove. It succeeds
// when everything is already gone, so it can be called again.
func UnpinNamespaces(ns Namespaces) error {
	if ns.Dir == "" {
		return nil
	}
	if !filepath.IsAbs(ns.Dir) {
		return fmt.Errorf("unpinning namespaces: folder %q is not absolute", ns.Dir)
	}
	var errs []error
	for _, k := range pinnedKinds {
		if err := unpinFile(filepath.Join(ns.Dir, k.name)); err != nil {
			errs = append(errs, fmt.Errorf("unpinning %s namespace: %w", k.name, err))
		}
	}
	if err := os.Remove(ns.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing namespace folder: %w", err))
	}
	return errors.Join(errs...)
}

// unpinFile unmounts and removes one namespace file.
func unpinFile(path string) error {
	if err := nsfile.UnmountAll(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
