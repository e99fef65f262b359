package spec

import (
	"errors"
	"fmt"
	"slices"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultPauseCommand is the pause process when neither SandboxInput nor
// the pause image names one.
var DefaultPauseCommand = []string{"/pause"}

// Sandbox defaults, as the containerd CRI plugin uses them.
const (
	// SandboxOOMScoreAdj keeps the pause process last in line for the OOM killer.
	SandboxOOMScoreAdj = -998
	// SandboxCPUShares is the pause container's CPU weight.
	SandboxCPUShares = 2
)

// GenerateSandbox builds the OCI spec of a pod's pause container.
func GenerateSandbox(in SandboxInput) (*specs.Spec, error) {
	s, _, err := GenerateSandboxWithReport(in)
	return s, err
}

// GenerateSandboxWithReport builds the pause container spec: the pause
// process on a read-only rootfs with default capabilities and
// no_new_privs, the pod's namespaces and hostname, hosts/resolv.conf/
// hostname and shm mounts, sysctls, the cgroup "<parent>/arbor-<id>" and
// oom_score_adj -998 (clamped when the host cannot set it, see Report).
func GenerateSandboxWithReport(in SandboxInput) (*specs.Spec, Report, error) {
	if in.ID == "" || in.Config == nil || in.RootfsPath == "" {
		return nil, Report{}, errors.New("sandbox input: id, config and rootfs path are required")
	}
	sb := &sandboxBuilder{in: in, sc: in.Config.GetLinux().GetSecurityContext()}
	if in.Image != nil {
		sb.img = *in.Image
	}
	sb.init()
	steps := []struct {
		name string
		run  func() error
	}{
		{"building pause process", sb.process},
		{"resolving sandbox user", sb.user},
		{"setting sandbox namespaces", sb.namespaces},
		{"setting sandbox resources", sb.resources},
		{"setting sandbox sysctls", sb.sysctls},
		{"setting sandbox seccomp", sb.seccomp},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			return nil, Report{}, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	sb.spec.Annotations = sandboxAnnotations(in.ID, in.Config)
	return sb.spec, sb.report, nil
}

// sandboxBuilder accumulates a pause container spec.
type sandboxBuilder struct {
	in     SandboxInput
	img    imagespec.ImageConfig
	sc     *runtimeapi.LinuxSandboxSecurityContext
	spec   *specs.Spec
	report Report
}

// nsOpts returns the pod's namespace options.
func (sb *sandboxBuilder) nsOpts() *runtimeapi.NamespaceOption { return sb.sc.GetNamespaceOptions() }

// hostNetwork reports whether the pod uses the host network.
func (sb *sandboxBuilder) hostNetwork() bool {
	return sb.nsOpts().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

// hostIPC reports whether the pod uses the host IPC namespace.
func (sb *sandboxBuilder) hostIPC() bool {
	return sb.nsOpts().GetIpc() == runtimeapi.NamespaceMode_NODE
}

// init sets the skeleton with mounts, paths and devices.
func (sb *sandboxBuilder) init() {
	sb.spec = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: sb.in.RootfsPath, Readonly: true},
		Process: &specs.Process{Cwd: "/"},
		Mounts: mergeMounts(
			DefaultMounts(sb.in.Files.ShmPath, sb.hostIPC(), false),
			podFileMounts(sb.in.Files, true),
		),
		Linux: &specs.Linux{
			MaskedPaths:   slices.Clone(DefaultMaskedPaths),
			ReadonlyPaths: slices.Clone(DefaultReadonlyPaths),
			CgroupsPath:   CgroupsPath(sb.in.Config.GetLinux().GetCgroupParent(), sb.in.ID),
		},
	}
	if !sb.hostNetwork() {
		sb.spec.Hostname = sb.in.Config.GetHostname()
	}
}

// process sets the pause argv, env, capabilities and oom score.
func (sb *sandboxBuilder) process() error {
	p := sb.spec.Process
	p.Args = slices.Clone(sb.in.PauseCommand)
	if len(p.Args) == 0 {
		args, err := ProcessArgs(nil, nil, sb.img)
		if err != nil {
			args = slices.Clone(DefaultPauseCommand)
		}
		p.Args = args
	}
	p.Env = MergeEnv(sb.img.Env)
	p.Rlimits = defaultRlimits(sb.in.Host)
	p.NoNewPrivileges = true
	caps, err := Capabilities(nil, false, sb.in.Host)
	if err != nil {
		return err
	}
	p.Capabilities = caps
	adj, clamped, err := OOMScoreAdj(SandboxOOMScoreAdj, sb.in.Host)
	p.OOMScoreAdj = &adj
	sb.report.OOMScoreAdjClamped, sb.report.RequestedOOMScoreAdj = clamped, SandboxOOMScoreAdj
	return err
}

// user applies run_as_user, run_as_group and supplemental groups.
func (sb *sandboxBuilder) user() error {
	u, err := resolveUser(sb.in.RootfsPath, userRequest{
		RunAsUser:          sb.sc.GetRunAsUser(),
		RunAsGroup:         sb.sc.GetRunAsGroup(),
		SupplementalGroups: sb.sc.GetSupplementalGroups(),
		Policy:             sb.sc.GetSupplementalGroupsPolicy(),
	}, sb.img.User)
	if err != nil {
		return err
	}
	sb.spec.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGIDs}
	sb.report.User = u
	return nil
}

// namespaces sets the pod namespaces, creating a user namespace from the
// CRI mappings when the pod has one and no path was given.
func (sb *sandboxBuilder) namespaces() error {
	paths := sb.in.Namespaces
	nss := SandboxNamespaces(sb.nsOpts(), paths, sb.in.Host)
	uids, gids := userNamespaceMappings(sb.nsOpts().GetUsernsOptions())
	if paths.User == "" && len(uids) > 0 {
		nss = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	if len(uids) > 0 {
		sb.spec.Linux.UIDMappings, sb.spec.Linux.GIDMappings = uids, gids
	}
	sb.spec.Linux.Namespaces = nss
	return nil
}

// resources sets the pause CPU weight and device rules.
func (sb *sandboxBuilder) resources() error {
	shares := uint64(SandboxCPUShares)
	sb.spec.Linux.Resources = &specs.LinuxResources{
		CPU:     &specs.LinuxCPU{Shares: &shares},
		Devices: allowedDevicesDefault(),
	}
	return nil
}

// sysctls applies the pod's sysctls.
func (sb *sandboxBuilder) sysctls() error {
	s, err := Sysctls(sb.in.Config.GetLinux().GetSysctls(), sb.hostNetwork(), sb.hostIPC())
	sb.spec.Linux.Sysctl = s
	return err
}

// seccomp applies the pod's seccomp profile unless it is privileged.
func (sb *sandboxBuilder) seccomp() error {
	if sb.sc.GetPrivileged() {
		return nil
	}
	sc, err := Seccomp(sb.sc.GetSeccomp(), sb.sc.GetSeccompProfilePath(), "linux.security_context.seccomp", sb.spec, sb.in.Host)
	sb.spec.Linux.Seccomp = sc
	return err
}
