package spec

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Generate builds the OCI spec of an application container. See
// GenerateWithReport for what else the caller learns.
func Generate(in ContainerInput) (*specs.Spec, error) {
	s, _, err := GenerateWithReport(in)
	return s, err
}

// GenerateWithReport builds the OCI spec of an application container and
// reports the effective user, whether the oom_score_adj was clamped, and
// the stop signal. Errors name the request field at fault.
func GenerateWithReport(in ContainerInput) (*specs.Spec, Report, error) {
	if err := validateInput(in); err != nil {
		return nil, Report{}, err
	}
	img := imagespec.ImageConfig{}
	if in.Image != nil {
		img = *in.Image
	}
	b := &builder{in: in, img: img, sc: in.Config.GetLinux().GetSecurityContext()}
	steps := []struct {
		name string
		run  func() error
	}{
		{"building process", b.process},
		{"resolving user", b.user},
		{"setting capabilities", b.capabilities},
		{"building mounts", b.mounts},
		{"setting namespaces", b.namespaces},
		{"setting resources", b.resources},
		{"adding devices", b.devices},
		{"setting sysctls", b.sysctls},
		{"setting seccomp", b.seccomp},
	}
	b.init()
	for _, st := range steps {
		if err := st.run(); err != nil {
			return nil, Report{}, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	b.spec.Annotations = containerAnnotations(in)
	b.spec.Annotations[AnnotationStopSignal] = strconv.Itoa(b.report.StopSignal)
	return b.spec, b.report, nil
}

// validateInput checks the required fields.
func validateInput(in ContainerInput) error {
	switch {
	case in.ID == "":
		return errors.New("container id: empty")
	case in.Config == nil:
		return errors.New("container config: missing")
	case in.Sandbox == nil:
		return errors.New("sandbox config: missing")
	case in.RootfsPath == "":
		return errors.New("rootfs path: empty")
	}
	return nil
}

// builder accumulates a container spec step by step.
type builder struct {
	in     ContainerInput
	img    imagespec.ImageConfig
	sc     *runtimeapi.LinuxContainerSecurityContext
	spec   *specs.Spec
	report Report
}

// privileged reports whether the container runs privileged.
func (b *builder) privileged() bool { return b.sc.GetPrivileged() }

// nsOpts returns the container's namespace options.
func (b *builder) nsOpts() *runtimeapi.NamespaceOption { return b.sc.GetNamespaceOptions() }

// hostNetwork reports whether the pod uses the host network.
func (b *builder) hostNetwork() bool {
	return b.nsOpts().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

// hostIPC reports whether the pod uses the host IPC namespace.
func (b *builder) hostIPC() bool { return b.nsOpts().GetIpc() == runtimeapi.NamespaceMode_NODE }

// init sets the skeleton every container spec shares.
func (b *builder) init() {
	b.spec = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: b.in.RootfsPath, Readonly: b.sc.GetReadonlyRootfs()},
		Process: &specs.Process{},
		Linux:   &specs.Linux{Resources: &specs.LinuxResources{}},
	}
}

// process fills argv, env, cwd, terminal, rlimits, no_new_privs, the oom
// score and the stop signal.
func (b *builder) process() error {
	cfg, p := b.in.Config, b.spec.Process
	var err error
	if p.Args, err = ProcessArgs(cfg.GetCommand(), cfg.GetArgs(), b.img); err != nil {
		return err
	}
	if p.Cwd, err = workingDir(cfg.GetWorkingDir(), b.img.WorkingDir); err != nil {
		return err
	}
	hostname, err := b.hostname()
	if err != nil {
		return err
	}
	var term []string
	if cfg.GetTty() {
		term = []string{"TERM=xterm"}
	}
	p.Env = MergeEnv([]string{"HOSTNAME=" + hostname}, b.img.Env, term, criEnv(cfg.GetEnvs()))
	p.Terminal = cfg.GetTty()
	p.Rlimits = defaultRlimits(b.in.Host)
	p.NoNewPrivileges = b.sc.GetNoNewPrivs() && !b.privileged()
	if !b.privileged() {
		p.ApparmorProfile = AppArmorProfile(b.sc.GetApparmor(), b.sc.GetApparmorProfile(), b.in.Host)
	}
	if err := b.oomScore(); err != nil {
		return err
	}
	b.report.StopSignal, err = StopSignal(cfg.GetStopSignal(), b.img.StopSignal)
	return err
}

// hostname is the pod hostname, or the node's with host network.
func (b *builder) hostname() (string, error) {
	if h := b.in.Sandbox.GetHostname(); h != "" || !b.hostNetwork() {
		return h, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("reading node hostname: %w", err)
	}
	return h, nil
}

// oomScore sets the clamped oom_score_adj.
func (b *builder) oomScore() error {
	req := b.in.Config.GetLinux().GetResources().GetOomScoreAdj()
	adj, clamped, err := OOMScoreAdj(req, b.in.Host)
	if err != nil {
		return err
	}
	b.spec.Process.OOMScoreAdj = &adj
	b.report.OOMScoreAdjClamped, b.report.RequestedOOMScoreAdj = clamped, int(req)
	return nil
}

// user resolves the identity and records it in the report.
func (b *builder) user() error {
	u, err := ResolveUser(b.in.RootfsPath, b.sc, b.img.User)
	if err != nil {
		return err
	}
	b.spec.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGIDs}
	b.report.User = u
	return nil
}

// capabilities sets the capability sets.
func (b *builder) capabilities() error {
	caps, err := Capabilities(b.sc.GetCapabilities(), b.privileged(), b.in.Host)
	b.spec.Process.Capabilities = caps
	return err
}

// mounts layers default, image volume, pod file and CRI mounts and sets
// masked and read-only paths.
func (b *builder) mounts() error {
	cri, rootProp, err := CRIMounts(b.in.Config.GetMounts())
	if err != nil {
		return err
	}
	b.spec.Linux.RootfsPropagation = rootProp
	b.spec.Mounts = mergeMounts(
		DefaultMounts(b.in.Files.ShmPath, b.hostIPC(), b.privileged()),
		imageVolumeMounts(b.img.Volumes, b.in.ImageVolumes),
		podFileMounts(b.in.Files, b.sc.GetReadonlyRootfs()),
		cri,
	)
	b.spec.Linux.MaskedPaths, b.spec.Linux.ReadonlyPaths = maskedAndReadonly(b.sc)
	return nil
}

// namespaces sets the namespaces and user namespace mappings.
func (b *builder) namespaces() error {
	nss, err := ContainerNamespaces(b.nsOpts(), b.in.Namespaces, b.in.Host)
	if err != nil {
		return err
	}
	b.spec.Linux.Namespaces = nss
	if b.in.Namespaces.User != "" {
		b.spec.Linux.UIDMappings, b.spec.Linux.GIDMappings = userNamespaceMappings(b.nsOpts().GetUsernsOptions())
	}
	return nil
}

// resources sets cgroup limits and the cgroups path.
func (b *builder) resources() error {
	r := ResourcesFromCRI(b.in.Config.GetLinux().GetResources(), b.in.Host)
	r.Pids = pidsLimit(b.in.PidsLimit)
	b.spec.Linux.Resources = r
	parent := b.in.CgroupParent
	if parent == "" {
		parent = b.in.Sandbox.GetLinux().GetCgroupParent()
	}
	b.spec.Linux.CgroupsPath = CgroupsPath(parent, b.in.ID)
	return nil
}

// devices adds the requested devices and their cgroup rules; privileged
// containers also get every host device and an allow-all rule.
func (b *builder) devices() error {
	devs, rules, err := CRIDevices(b.in.Config.GetDevices())
	if err != nil {
		return err
	}
	rules = append(allowedDevicesDefault(), rules...)
	if b.privileged() {
		hostDevs, allowAll, err := HostDevices()
		if err != nil {
			return err
		}
		devs, rules = filterDevices(append(devs, hostDevs...)), allowAll
	}
	b.spec.Linux.Devices = devs
	b.spec.Linux.Resources.Devices = rules
	return nil
}

// sysctls applies the pod's sysctls.
func (b *builder) sysctls() error {
	s, err := Sysctls(b.in.Sandbox.GetLinux().GetSysctls(), b.hostNetwork(), b.hostIPC())
	b.spec.Linux.Sysctl = s
	return err
}

// seccomp sets the filter; privileged containers run unconfined.
func (b *builder) seccomp() error {
	if b.privileged() {
		return nil
	}
	sc, err := Seccomp(b.sc.GetSeccomp(), b.sc.GetSeccompProfilePath(), "linux.security_context.seccomp", b.spec, b.in.Host)
	b.spec.Linux.Seccomp = sc
	return err
}
