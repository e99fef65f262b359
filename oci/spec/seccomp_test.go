package spec

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSeccomp(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`)
	bad := writeFile(t, dir, "bad.json", `{"defaultAction":`)
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: DefaultCaps}}}
	local := func(p string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: p}
	}
	noSeccomp := fakeHost()
	noSeccomp.SeccompAvailable = false
	tests := []struct {
		name       string
		profile    *runtimeapi.SecurityProfile
		deprecated string
		h          Host
		wantNil    bool
		wantAction specs.LinuxSeccompAction
		wantErr    string
	}{
		{"absent is unconfined", nil, "", fakeHost(), true, "", ""},
		{"unconfined", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "", fakeHost(), true, "", ""},
		{"runtime default", &runtimeapi.SecurityProfile{}, "", fakeHost(), false, specs.ActErrno, ""},
		{"deprecated runtime default", nil, "runtime/default", fakeHost(), false, specs.ActErrno, ""},
		{"localhost", local(good), "", fakeHost(), false, specs.ActErrno, ""},
		{"deprecated localhost", nil, "localhost/" + good, fakeHost(), false, specs.ActErrno, ""},
		{"runtime default without kernel support", &runtimeapi.SecurityProfile{}, "", noSeccomp, true, "", ""},
		{"localhost without kernel support", local(good), "", noSeccomp, false, "", "lacks seccomp"},
		{"missing file", local(filepath.Join(dir, "nope.json")), "", fakeHost(), false, "", "f.localhost_ref"},
		{"bad json", local(bad), "", fakeHost(), false, "", "f.localhost_ref"},
		{"relative path", local("good.json"), "", fakeHost(), false, "", "not an absolute path"},
		{"unknown deprecated", nil, "weird", fakeHost(), false, "", "unknown seccomp profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Seccomp(tc.profile, tc.deprecated, "f", s, tc.h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != tc.wantNil {
				t.Fatalf("got %v, wantNil %v", got, tc.wantNil)
			}
			if got != nil && (got.DefaultAction != tc.wantAction || len(got.Syscalls) == 0) {
				t.Fatalf("default action %q, %d rules", got.DefaultAction, len(got.Syscalls))
			}
		})
	}
}

func TestAppArmorProfile(t *testing.T) {
	local := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p"}
	off := fakeHost()
	on := fakeHost()
	on.AppArmorEnabled = true
	if got := AppArmorProfile(local, "", off); got != "" {
		t.Fatalf("no apparmor kernel: %q", got)
	}
	if got := AppArmorProfile(local, "", on); got != "p" {
		t.Fatalf("localhost: %q", got)
	}
	if got := AppArmorProfile(nil, "runtime/default", on); got != "" {
		t.Fatalf("runtime default: %q", got)
	}
	if got := AppArmorProfile(nil, "localhost/q", on); got != "q" {
		t.Fatalf("deprecated localhost: %q", got)
	}
}
