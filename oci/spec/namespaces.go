package spec

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nsJoin returns a namespace entry joining path; an empty path is an error
// naming the missing pod namespace.
func nsJoin(typ specs.LinuxNamespaceType, path string) (specs.LinuxNamespace, error) {
	if path == "" {
		return specs.LinuxNamespace{}, fmt.Errorf("joining pod %s namespace: no path provided", typ)
	}
	return specs.LinuxNamespace{Type: typ, Path: path}, nil
}

// ContainerNamespaces lists the namespaces of an application container: a
// new mount namespace; the pod's network, IPC and UTS namespaces unless the
// pod uses the host's (host network implies host UTS); the PID namespace
// per mode (POD joins the pod's, CONTAINER creates one, TARGET joins
// another container's, NODE uses the host's); the pod user namespace when
// one is given; and a new cgroup namespace on cgroup v2.
func ContainerNamespaces(opts *runtimeapi.NamespaceOption, p NamespacePaths, h Host) ([]specs.LinuxNamespace, error) {
	nss := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	var joins []specs.LinuxNamespace
	if opts.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		joins = append(joins, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: p.Network},
			specs.LinuxNamespace{Type: specs.UTSNamespace, Path: p.UTS})
	}
	if opts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		joins = append(joins, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: p.IPC})
	}
	for _, j := range joins {
		ns, err := nsJoin(j.Type, j.Path)
		if err != nil {
			return nil, err
		}
		nss = append(nss, ns)
	}
	pid, err := containerPIDNamespace(opts, p)
	if err != nil {
		return nil, err
	}
	if pid != nil {
		nss = append(nss, *pid)
	}
	return appendCommonNamespaces(nss, p, h), nil
}

// containerPIDNamespace picks the PID namespace entry; nil means the host's.
func containerPIDNamespace(opts *runtimeapi.NamespaceOption, p NamespacePaths) (*specs.LinuxNamespace, error) {
	var ns specs.LinuxNamespace
	var err error
	switch opts.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		return nil, nil
	case runtimeapi.NamespaceMode_CONTAINER:
		ns = specs.LinuxNamespace{Type: specs.PIDNamespace}
	case runtimeapi.NamespaceMode_POD:
		ns, err = nsJoin(specs.PIDNamespace, p.PID)
	case runtimeapi.NamespaceMode_TARGET:
		if opts.GetTargetId() == "" {
			return nil, errors.New("namespace_options.target_id: empty with PID mode TARGET")
		}
		ns, err = nsJoin(specs.PIDNamespace, p.TargetPID)
	default:
		return nil, fmt.Errorf("namespace_options.pid: unknown mode %v", opts.GetPid())
	}
	return &ns, err
}

// appendCommonNamespaces adds the user namespace (when given) and, on
// cgroup v2, a private cgroup namespace.
func appendCommonNamespaces(nss []specs.LinuxNamespace, p NamespacePaths, h Host) []specs.LinuxNamespace {
	if p.User != "" {
		nss = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace, Path: p.User})
	}
	if h.CgroupVersion == CgroupV2 {
		nss = append(nss, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return nss
}

// SandboxNamespaces lists the namespaces of a pause container: new mount,
// IPC, UTS and PID namespaces unless the pod uses the host's, the network
// namespace at p.Network (a new one when empty) unless host network, and
// the user namespace at p.User when given.
func SandboxNamespaces(opts *runtimeapi.NamespaceOption, p NamespacePaths, h Host) []specs.LinuxNamespace {
	nss := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if opts.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		nss = append(nss,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: p.Network},
			specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if opts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		nss = append(nss, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if opts.GetPid() != runtimeapi.NamespaceMode_NODE {
		nss = append(nss, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	return appendCommonNamespaces(nss, p, h)
}

// userNamespaceMappings converts the pod's CRI user namespace mappings
// for a spec that joins or creates a user namespace.
func userNamespaceMappings(u *runtimeapi.UserNamespace) (uids, gids []specs.LinuxIDMapping) {
	if u.GetMode() != runtimeapi.NamespaceMode_POD {
		return nil, nil
	}
	return IDMappings(u.GetUids()), IDMappings(u.GetGids())
}

// IDMappings converts CRI ID mappings to their OCI form.
func IDMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	var out []specs.LinuxIDMapping
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}
