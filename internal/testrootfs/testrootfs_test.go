package testrootfs

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestBuildRunsApplets builds a rootfs in both link modes and runs an
// applet chrooted into it, which needs busybox and every library it loads.
func TestBuildRunsApplets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot")
	}
	RequireBusybox(t)
	for _, tc := range []struct {
		name    string
		symlink bool
	}{{"hard links", false}, {"symlinks", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			Build(t, dir, Options{Applets: []string{"echo"}, Dirs: MountPoints, Symlink: tc.symlink})
			for _, d := range MountPoints {
				if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
					t.Fatalf("mount point %s: %v", d, err)
				}
			}
			cmd := exec.Command("/bin/echo", "from-rootfs")
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
			out, err := cmd.Output()
			if err != nil || string(out) != "from-rootfs\n" {
				t.Fatalf("running echo in rootfs: %q, %v", out, err)
			}
		})
	}
}

// TestWriteConfigRoundTrips writes MinimalSpec and reads it back.
func TestWriteConfigRoundTrips(t *testing.T) {
	bundle := t.TempDir()
	WriteConfig(t, bundle, MinimalSpec([]string{"/bin/true"}, "/cg/x"))
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Process.Args, []string{"/bin/true"}) || got.Linux.CgroupsPath != "/cg/x" ||
		got.Root.Path != "rootfs" || len(got.Linux.Namespaces) != 5 || got.Mounts[0].Destination != "/proc" {
		t.Fatalf("config.json round trip gave %+v", got)
	}
}
