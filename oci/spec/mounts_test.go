package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCRIMounts(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mount    *runtimeapi.Mount
		wantSrc  string
		wantOpts []string
		wantProp string
		wantErr  string
	}{
		{"private rw", &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir}, dir, []string{"rbind", "rprivate", "rw"}, "", ""},
		{"readonly rslave", &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			dir, []string{"rbind", "rslave", "ro"}, "rslave", ""},
		{"rshared", &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			dir, []string{"rbind", "rshared", "rw"}, "rshared", ""},
		{"recursive read-only", &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, Readonly: true, RecursiveReadOnly: true},
			dir, []string{"rbind", "rprivate", "ro", "rro"}, "", ""},
		{"symlink resolved, selinux ignored, extra options", &runtimeapi.Mount{ContainerPath: "/data/", HostPath: link, SelinuxRelabel: true, MountOptions: []string{"noexec"}},
			dir, []string{"rbind", "rprivate", "rw", "noexec"}, "", ""},
		{"image mount resolved is read-only", &runtimeapi.Mount{ContainerPath: "/img", HostPath: dir, Image: &runtimeapi.ImageSpec{Image: "x"}},
			dir, []string{"rbind", "rprivate", "ro"}, "", ""},
		{"rro needs readonly", &runtimeapi.Mount{ContainerPath: "/data", HostPath: dir, RecursiveReadOnly: true}, "", nil, "", "mounts[0].recursive_read_only"},
		{"missing host path", &runtimeapi.Mount{ContainerPath: "/data", HostPath: filepath.Join(dir, "nope")}, "", nil, "", "mounts[0].host_path"},
		{"unresolved image", &runtimeapi.Mount{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: "x"}}, "", nil, "", "mounts[0].image"},
		{"relative container path", &runtimeapi.Mount{ContainerPath: "data", HostPath: dir}, "", nil, "", "mounts[0].container_path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, prop, err := CRIMounts([]*runtimeapi.Mount{tc.mount})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := got[0]
			if m.Type != "bind" || m.Source != tc.wantSrc || !slices.Equal(m.Options, tc.wantOpts) || prop != tc.wantProp {
				t.Fatalf("got %+v prop %q", m, prop)
			}
			if strings.HasSuffix(m.Destination, "/") {
				t.Fatalf("destination %q not cleaned", m.Destination)
			}
		})
	}
}

func TestRootPropagationStrongestWins(t *testing.T) {
	dir := t.TempDir()
	_, prop, err := CRIMounts([]*runtimeapi.Mount{
		{ContainerPath: "/a", HostPath: dir, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		{ContainerPath: "/b", HostPath: dir, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	})
	if err != nil || prop != "rshared" {
		t.Fatalf("prop = %q, %v", prop, err)
	}
}

func TestMergeMounts(t *testing.T) {
	files := PodFiles{HostsPath: "/pod/hosts", ResolvConfPath: "/pod/resolv", HostnamePath: "/pod/hostname", ShmPath: "/pod/shm"}
	cri := []specs.Mount{{Destination: "/etc/hosts", Source: "/kubelet/hosts", Type: "bind"}, {Destination: "/a/b", Source: "/x", Type: "bind"}, {Destination: "/a", Source: "/y", Type: "bind"}}
	got := mergeMounts(DefaultMounts(files.ShmPath, false, false), podFileMounts(files, false), cri)
	byDest := map[string]specs.Mount{}
	for i, m := range got {
		if _, dup := byDest[m.Destination]; dup {
			t.Fatalf("duplicate destination %s", m.Destination)
		}
		byDest[m.Destination] = m
		if i > 0 && depth(got[i-1].Destination) > depth(m.Destination) {
			t.Fatalf("mount %s before its parent order: %v", got[i-1].Destination, got)
		}
	}
	if byDest["/etc/hosts"].Source != "/kubelet/hosts" {
		t.Fatalf("CRI mount did not override /etc/hosts: %+v", byDest["/etc/hosts"])
	}
	if byDest["/dev/shm"].Source != "/pod/shm" || byDest["/etc/resolv.conf"].Source != "/pod/resolv" || byDest["/etc/hostname"].Source != "/pod/hostname" {
		t.Fatalf("pod files missing: %v", got)
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
		if _, ok := byDest[d]; !ok {
			t.Fatalf("default mount %s missing", d)
		}
	}
}

func TestDefaultMounts(t *testing.T) {
	find := func(ms []specs.Mount, dest string) specs.Mount {
		for _, m := range ms {
			if m.Destination == dest {
				return m
			}
		}
		t.Fatalf("no mount at %s", dest)
		return specs.Mount{}
	}
	if m := find(DefaultMounts("", false, false), "/dev/shm"); m.Type != "tmpfs" {
		t.Fatalf("private shm = %+v", m)
	}
	if m := find(DefaultMounts("/pod/shm", true, false), "/dev/shm"); m.Source != "/dev/shm" {
		t.Fatalf("host ipc shm = %+v", m)
	}
	if m := find(DefaultMounts("", false, false), "/sys"); !slices.Contains(m.Options, "ro") {
		t.Fatalf("unprivileged sys = %+v", m)
	}
	if m := find(DefaultMounts("", false, true), "/sys"); !slices.Contains(m.Options, "rw") {
		t.Fatalf("privileged sys = %+v", m)
	}
}

func TestMaskedAndReadonly(t *testing.T) {
	m, r := maskedAndReadonly(&runtimeapi.LinuxContainerSecurityContext{})
	if !slices.Equal(m, DefaultMaskedPaths) || !slices.Equal(r, DefaultReadonlyPaths) {
		t.Fatalf("defaults: %v %v", m, r)
	}
	m, r = maskedAndReadonly(&runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/m"}, ReadonlyPaths: []string{"/r"}})
	if !slices.Equal(m, []string{"/m"}) || !slices.Equal(r, []string{"/r"}) {
		t.Fatalf("override: %v %v", m, r)
	}
	m, r = maskedAndReadonly(&runtimeapi.LinuxContainerSecurityContext{Privileged: true, MaskedPaths: []string{"/m"}})
	if m != nil || r != nil {
		t.Fatalf("privileged: %v %v", m, r)
	}
}
