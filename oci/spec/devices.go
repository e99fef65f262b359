package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DeviceFromPath stats a host device node and describes it at
// containerPath with cgroup access permissions ("rwm" when empty).
func DeviceFromPath(hostPath, containerPath, permissions string) (specs.LinuxDevice, specs.LinuxDeviceCgroup, error) {
	if permissions == "" {
		permissions = "rwm"
	}
	if strings.Trim(permissions, "rwm") != "" {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("permissions %q: only r, w and m are allowed", permissions)
	}
	var st unix.Stat_t
	if err := unix.Stat(hostPath, &st); err != nil {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("stat %s: %w", hostPath, err)
	}
	typ, err := deviceType(st.Mode)
	if err != nil {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("%s: %w", hostPath, err)
	}
	major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	dev := specs.LinuxDevice{Path: containerPath, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
	rule := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: permissions}
	return dev, rule, nil
}

// deviceType maps a stat mode to an OCI device type.
func deviceType(mode uint32) (string, error) {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "c", nil
	case unix.S_IFBLK:
		return "b", nil
	case unix.S_IFIFO:
		return "p", nil
	}
	return "", errors.New("not a device node")
}

// CRIDevices converts the request's devices; a host path that is a
// directory contributes every device below it.
func CRIDevices(devs []*runtimeapi.Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devices []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for i, d := range devs {
		field := fmt.Sprintf("devices[%d]", i)
		if !path.IsAbs(d.GetContainerPath()) {
			return nil, nil, fmt.Errorf("%s.container_path %q: not an absolute path", field, d.GetContainerPath())
		}
		ds, rs, err := criDevice(d)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.host_path: %w", field, err)
		}
		devices, rules = append(devices, ds...), append(rules, rs...)
	}
	return devices, rules, nil
}

// criDevice converts one CRI device, expanding directories.
func criDevice(d *runtimeapi.Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	st, err := os.Stat(d.GetHostPath())
	if err != nil {
		return nil, nil, fmt.Errorf("stat %q: %w", d.GetHostPath(), err)
	}
	if !st.IsDir() {
		dev, rule, err := DeviceFromPath(d.GetHostPath(), d.GetContainerPath(), d.GetPermissions())
		if err != nil {
			return nil, nil, err
		}
		return []specs.LinuxDevice{dev}, []specs.LinuxDeviceCgroup{rule}, nil
	}
	return devicesUnder(d.GetHostPath(), d.GetContainerPath(), d.GetPermissions(), nil)
}

// devicesUnder walks hostDir for device nodes, placing each at the same
// relative path under containerDir; skip lists directories not to enter.
func devicesUnder(hostDir, containerDir, permissions string, skip []string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devices []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	err := filepath.WalkDir(hostDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(hostDir, p)
		if e.IsDir() && containsString(skip, rel) {
			return filepath.SkipDir
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		dev, rule, err := DeviceFromPath(p, path.Join(containerDir, filepath.ToSlash(rel)), permissions)
		if err != nil {
			return err
		}
		devices, rules = append(devices, dev), append(rules, rule)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("walking %s: %w", hostDir, err)
	}
	return devices, rules, nil
}

// hostDevSkip lists /dev subdirectories whose nodes privileged containers
// do not copy (they get their own pts, shm and mqueue).
var hostDevSkip = []string{"pts", "shm", "mqueue", "fd"}

// HostDevices returns every device node under the host's /dev for a
// privileged container, with an allow-all cgroup rule.
func HostDevices() ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	devices, _, err := devicesUnder("/dev", "/dev", "rwm", hostDevSkip)
	if err != nil {
		return nil, nil, err
	}
	devices = filterDevices(devices)
	return devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil
}

// filterDevices drops /dev/console and /dev/ptmx, which runc provides
// itself, and later duplicates of a path.
func filterDevices(in []specs.LinuxDevice) []specs.LinuxDevice {
	seen := map[string]bool{"/dev/console": true, "/dev/ptmx": true}
	var out []specs.LinuxDevice
	for _, d := range in {
		if !seen[d.Path] {
			seen[d.Path] = true
			out = append(out, d)
		}
	}
	return out
}

// containsString reports whether list holds s.
func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
