package spec

import (
	"slices"
	"strings"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestGenerateDefaults(t *testing.T) {
	in := baseInput(t)
	in.Image = &imagespec.ImageConfig{Env: []string{"PATH=/img", "A=1"}, Cmd: []string{"ignored"}, WorkingDir: "/w", StopSignal: "SIGQUIT"}
	in.Config.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte("2")}}
	in.Config.Annotations = map[string]string{"io.kubernetes.container.hash": "abc"}
	in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: -500, CpuShares: 100}
	in.Files = PodFiles{ShmPath: "/pod/shm", HostsPath: "/pod/hosts", ResolvConfPath: "/pod/resolv"}
	in.PidsLimit = 1024
	s, rep, err := GenerateWithReport(in)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if !slices.Equal(p.Args, []string{"/bin/true"}) || p.Cwd != "/w" {
		t.Fatalf("args %q cwd %q", p.Args, p.Cwd)
	}
	if !slices.Equal(p.Env, []string{"HOSTNAME=pod-host", "PATH=/img", "A=2"}) {
		t.Fatalf("env %q", p.Env)
	}
	if *p.OOMScoreAdj != 0 || !rep.OOMScoreAdjClamped || rep.RequestedOOMScoreAdj != -500 {
		t.Fatalf("oom %d report %+v", *p.OOMScoreAdj, rep)
	}
	if rep.StopSignal != 3 || s.Annotations[AnnotationStopSignal] != "3" {
		t.Fatalf("stop signal %d", rep.StopSignal)
	}
	if !equalSets(p.Capabilities.Bounding, DefaultCaps) || p.NoNewPrivileges || p.Terminal {
		t.Fatalf("process %+v", p)
	}
	if s.Linux.CgroupsPath != "/kubepods/pod1/arbor-c1" || *s.Linux.Resources.CPU.Shares != 100 || *s.Linux.Resources.Pids.Limit != 1024 {
		t.Fatalf("cgroup %q resources %+v", s.Linux.CgroupsPath, s.Linux.Resources)
	}
	if d := s.Linux.Resources.Devices; len(d) == 0 || d[0].Allow {
		t.Fatalf("device rules must start with deny-all: %+v", d)
	}
	if s.Linux.Seccomp != nil || s.Hostname != "" || s.Root.Readonly {
		t.Fatalf("seccomp %v hostname %q root %+v", s.Linux.Seccomp, s.Hostname, s.Root)
	}
	if s.Annotations["io.kubernetes.container.hash"] != "abc" || s.Annotations[AnnotationSandboxID] != "s1" ||
		s.Annotations[AnnotationContainerType] != ContainerTypeContainer || s.Annotations[AnnotationSandboxNamespace] != "ns" {
		t.Fatalf("annotations %v", s.Annotations)
	}
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths) || rep.User.UID != 0 {
		t.Fatalf("masked %v user %+v", s.Linux.MaskedPaths, rep.User)
	}
}

func TestGenerateSecurityFeatures(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*ContainerInput)
		check func(*testing.T, *specs.Spec)
	}{
		{"privileged", func(in *ContainerInput) {
			in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{Privileged: true, NoNewPrivs: true,
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}
		}, func(t *testing.T, s *specs.Spec) {
			if !equalSets(s.Process.Capabilities.Bounding, fakeHost().BoundingCaps) || s.Process.NoNewPrivileges {
				t.Fatalf("caps %v nnp %v", s.Process.Capabilities.Bounding, s.Process.NoNewPrivileges)
			}
			if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
				t.Fatal("privileged container confined")
			}
			if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || len(s.Linux.Devices) == 0 {
				t.Fatalf("devices %d rules %+v", len(s.Linux.Devices), r)
			}
		}},
		{"readonly rootfs, nnp, tty, runtime default seccomp", func(in *ContainerInput) {
			in.Config.Tty = true
			in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true, NoNewPrivs: true,
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}
		}, func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly || !s.Process.NoNewPrivileges || !s.Process.Terminal || !slices.Contains(s.Process.Env, "TERM=xterm") {
				t.Fatalf("root %+v process %+v", s.Root, s.Process)
			}
			if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
				t.Fatalf("seccomp %+v", s.Linux.Seccomp)
			}
		}},
		{"host network sets node hostname env and skips netns", func(in *ContainerInput) {
			in.Sandbox.Hostname = ""
			in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
		}, func(t *testing.T, s *specs.Spec) {
			if s.Process.Env[0] == "HOSTNAME=" {
				t.Fatalf("env %q", s.Process.Env)
			}
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.NetworkNamespace || ns.Type == specs.UTSNamespace {
					t.Fatalf("namespace %s with host network", ns.Type)
				}
			}
		}},
		{"nil linux config uses defaults", func(in *ContainerInput) {
			in.Config.Linux = nil
		}, func(t *testing.T, s *specs.Spec) {
			if !equalSets(s.Process.Capabilities.Bounding, DefaultCaps) || s.Linux.Seccomp != nil || *s.Process.OOMScoreAdj != 0 {
				t.Fatalf("process %+v", s.Process)
			}
		}},
		{"effective user recoverable from spec", func(in *ContainerInput) {
			in.Config.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 12}
			in.Config.Linux.SecurityContext.SupplementalGroups = []int64{5}
		}, func(t *testing.T, s *specs.Spec) {
			u := EffectiveUserOf(s)
			if u.UID != 12 || u.GID != 0 || !slices.Equal(u.AdditionalGIDs, []uint32{0, 5}) {
				t.Fatalf("user %+v", u)
			}
		}},
		{"sysctls applied", func(in *ContainerInput) {
			in.Sandbox.Linux.Sysctls = map[string]string{"net.ipv4.ping_group_range": "0 0"}
		}, func(t *testing.T, s *specs.Spec) {
			if s.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 0" {
				t.Fatalf("sysctl %v", s.Linux.Sysctl)
			}
		}},
		{"image volume mounted when prepared", func(in *ContainerInput) {
			in.Image = &imagespec.ImageConfig{Volumes: map[string]struct{}{"/vol": {}, "/skip": {}}}
			in.ImageVolumes = map[string]string{"/vol": "/host/vol"}
		}, func(t *testing.T, s *specs.Spec) {
			var dests []string
			for _, m := range s.Mounts {
				dests = append(dests, m.Destination)
			}
			if !slices.Contains(dests, "/vol") || slices.Contains(dests, "/skip") {
				t.Fatalf("mounts %v", dests)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			tc.edit(&in)
			s, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*ContainerInput)
		wantErr string
	}{
		{"no id", func(in *ContainerInput) { in.ID = "" }, "container id"},
		{"no command", func(in *ContainerInput) { in.Config.Command = nil }, "no command"},
		{"missing mount source", func(in *ContainerInput) {
			in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x", HostPath: "/does/not/exist"}}
		}, "mounts[0].host_path"},
		{"bad seccomp path", func(in *ContainerInput) {
			in.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/does/not/exist.json"}
		}, "linux.security_context.seccomp.localhost_ref"},
		{"unknown user", func(in *ContainerInput) { in.Config.Linux.SecurityContext.RunAsUsername = "ghost" }, "ghost"},
		{"cap beyond bounding set", func(in *ContainerInput) {
			in.Config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}
		}, "CAP_SYS_RESOURCE"},
		{"net sysctl with host network", func(in *ContainerInput) {
			in.Sandbox.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
			in.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
		}, "host network"},
		{"bad oom score", func(in *ContainerInput) {
			in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: 5000}
		}, "oom_score_adj"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			tc.edit(&in)
			_, err := Generate(in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestGenerateSandbox(t *testing.T) {
	in := SandboxInput{
		ID:         "s1",
		RootfsPath: t.TempDir(),
		Config: &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "u"},
			Hostname:     "pod-host",
			LogDirectory: "/var/log/pods/x",
			Annotations:  map[string]string{"a": "b"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: "/kubepods/pod1",
				Sysctls:      map[string]string{"kernel.shm_rmid_forced": "1"},
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					RunAsUser:          &runtimeapi.Int64Value{Value: 65535},
					SupplementalGroups: []int64{7},
					Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				},
			},
		},
		Image:      &imagespec.ImageConfig{Entrypoint: []string{"/pause"}},
		Namespaces: NamespacePaths{Network: "/var/run/netns/x"},
		Files:      PodFiles{ShmPath: "/pod/shm", HostsPath: "/pod/hosts", ResolvConfPath: "/pod/resolv", HostnamePath: "/pod/hostname"},
		Host:       fakeHost(),
	}
	s, rep, err := GenerateSandboxWithReport(in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, []string{"/pause"}) || s.Hostname != "pod-host" || !s.Root.Readonly || !s.Process.NoNewPrivileges {
		t.Fatalf("spec %+v process %+v", s, s.Process)
	}
	if s.Process.User.UID != 65535 || !slices.Equal(s.Process.User.AdditionalGids, []uint32{0, 7}) {
		t.Fatalf("user %+v", s.Process.User)
	}
	if !rep.OOMScoreAdjClamped || *s.Process.OOMScoreAdj != 0 || rep.RequestedOOMScoreAdj != SandboxOOMScoreAdj {
		t.Fatalf("oom %d report %+v", *s.Process.OOMScoreAdj, rep)
	}
	if s.Linux.CgroupsPath != "/kubepods/pod1/arbor-s1" || *s.Linux.Resources.CPU.Shares != SandboxCPUShares {
		t.Fatalf("cgroup %q", s.Linux.CgroupsPath)
	}
	if s.Linux.Sysctl["kernel.shm_rmid_forced"] != "1" || s.Linux.Seccomp == nil {
		t.Fatalf("sysctl %v seccomp %v", s.Linux.Sysctl, s.Linux.Seccomp != nil)
	}
	ns := nsMap(t, s.Linux.Namespaces)
	if ns[specs.NetworkNamespace] != "/var/run/netns/x" {
		t.Fatalf("namespaces %v", ns)
	}
	mounts := map[string]string{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m.Source
	}
	for dest, src := range map[string]string{"/dev/shm": "/pod/shm", "/etc/hosts": "/pod/hosts", "/etc/resolv.conf": "/pod/resolv", "/etc/hostname": "/pod/hostname"} {
		if mounts[dest] != src {
			t.Fatalf("mount %s = %q, want %q", dest, mounts[dest], src)
		}
	}
	if s.Annotations["a"] != "b" || s.Annotations[AnnotationContainerType] != ContainerTypeSandbox || s.Annotations[AnnotationSandboxLogDir] != "/var/log/pods/x" {
		t.Fatalf("annotations %v", s.Annotations)
	}
}
