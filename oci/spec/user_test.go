package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
`

const testGroup = `root:x:0:
alice:x:1000:
bob:x:1001:
video:x:44:alice
audio:x:29:alice,bob
staff:x:50:bob
`

// userRootfs builds a rootfs with the test passwd and group files.
func userRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, root, "etc/passwd", testPasswd)
	writeFile(t, root, "etc/group", testGroup)
	return root
}

func TestResolveUser(t *testing.T) {
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	tests := []struct {
		name      string
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		want      EffectiveUser
		wantErr   string
	}{
		{"default root", nil, "", EffectiveUser{0, 0, []uint32{0}}, ""},
		{"image username with groups", nil, "alice", EffectiveUser{1000, 1000, []uint32{1000, 44, 29}}, ""},
		{"image uid in passwd", nil, "1001", EffectiveUser{1001, 1001, []uint32{1001, 29, 50}}, ""},
		{"image uid:gid", nil, "1001:7", EffectiveUser{1001, 7, []uint32{7}}, ""},
		{"image user:group name", nil, "alice:staff", EffectiveUser{1000, 50, []uint32{50}}, ""},
		{"uid not in passwd", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(4242)}, "alice", EffectiveUser{4242, 0, []uint32{0}}, ""},
		{"run_as_user overrides image user", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000)}, "bob", EffectiveUser{1000, 1000, []uint32{1000, 44, 29}}, ""},
		{"run_as_username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "bob"}, "", EffectiveUser{1001, 1001, []uint32{1001, 29, 50}}, ""},
		{"run_as_group overrides primary", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(3000)}, "", EffectiveUser{1000, 3000, []uint32{3000, 44, 29}}, ""},
		{"merge adds requested groups", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(3000), SupplementalGroups: []int64{4000, 44}}, "", EffectiveUser{1000, 3000, []uint32{3000, 44, 29, 4000}}, ""},
		{"strict drops image groups", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(3000), SupplementalGroups: []int64{4000}, SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict}, "", EffectiveUser{1000, 3000, []uint32{3000, 4000}}, ""},
		{"unknown username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "mallory"}, "", EffectiveUser{}, "mallory"},
		{"unknown image username", nil, "mallory", EffectiveUser{}, "mallory"},
		{"group without user", &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(5)}, "alice", EffectiveUser{}, "run_as_group"},
		{"negative uid", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(-1)}, "", EffectiveUser{}, "run_as_user"},
		{"negative supplemental group", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{-3}}, "", EffectiveUser{}, "supplemental_groups"},
	}
	root := userRootfs(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveUser(root, tc.sc, tc.imageUser)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tc.want.UID || got.GID != tc.want.GID || !slices.Equal(got.AdditionalGIDs, tc.want.AdditionalGIDs) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveUserStaysInRootfs(t *testing.T) {
	// An absolute symlink must resolve inside the rootfs, never to the
	// host's /etc/passwd (which has "root" but not "alice").
	root := t.TempDir()
	writeFile(t, root, "real/passwd", testPasswd)
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/real/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, err := ResolveUser(root, nil, "alice")
	if err != nil || u.UID != 1000 {
		t.Fatalf("got %+v, %v; want uid 1000 via in-rootfs symlink", u, err)
	}
	escape := t.TempDir()
	if err := os.MkdirAll(filepath.Join(escape, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../etc/passwd", filepath.Join(escape, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(escape, nil, "root"); err == nil {
		t.Fatal("resolved root through a symlink escaping the rootfs")
	}
}

func TestResolveUserRejectsNonRegularPasswd(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(root, nil, "alice"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v, want not a regular file", err)
	}
}

func TestEffectiveUserToCRI(t *testing.T) {
	got := EffectiveUser{UID: 1, GID: 2, AdditionalGIDs: []uint32{2, 3}}.ToCRI().GetLinux()
	if got.GetUid() != 1 || got.GetGid() != 2 || !slices.Equal(got.GetSupplementalGroups(), []int64{2, 3}) {
		t.Fatalf("got %+v", got)
	}
}
