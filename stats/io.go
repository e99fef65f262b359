package stats

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultSysDevBlock is where sysfs lists block devices by number.
const DefaultSysDevBlock = "/sys/dev/block"

// devNum is a block device number.
type devNum struct{ major, minor uint64 }

// parseDevNum parses "major:minor".
func parseDevNum(s string) (devNum, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return devNum{}, false
	}
	major, err1 := strconv.ParseUint(a, 10, 64)
	minor, err2 := strconv.ParseUint(b, 10, 64)
	return devNum{major, minor}, err1 == nil && err2 == nil
}

// readWrite is the Read and Write values of one device in a v1 blkio
// file: bytes in io_service_bytes, operations in io_serviced.
type readWrite struct{ read, write uint64 }

// parseBlkio parses a cgroup v1 blkio file (blkio.throttle.io_service_bytes
// or io_serviced): lines "8:0 Read 1234", one per device and operation,
// and a last "Total N" line, which is skipped.
func parseBlkio(data string) map[devNum]readWrite {
	out := map[devNum]readWrite{}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		d, ok := parseDevNum(f[0])
		v, err := strconv.ParseUint(f[2], 10, 64)
		if !ok || err != nil {
			continue
		}
		rw := out[d]
		switch f[1] {
		case "Read":
			rw.read = v
		case "Write":
			rw.write = v
		}
		out[d] = rw
	}
	return out
}

// ParseIOStat parses a cgroup v2 io.stat file: lines
// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0", sorted by device
// number in the result. Fields that do not parse are skipped.
func ParseIOStat(data string) []DeviceIO {
	byDev := map[devNum]*DeviceIO{}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		d, ok := parseDevNum(f[0])
		if !ok {
			continue
		}
		io := deviceEntry(byDev, d)
		for _, kv := range f[1:] {
			k, s, _ := strings.Cut(kv, "=")
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				io.ReadBytes = v
			case "wbytes":
				io.WriteBytes = v
			case "rios":
				io.Reads = v
			case "wios":
				io.Writes = v
			}
		}
	}
	return sortedDevices(byDev)
}

func deviceEntry(byDev map[devNum]*DeviceIO, d devNum) *DeviceIO {
	io, ok := byDev[d]
	if !ok {
		io = &DeviceIO{Major: d.major, Minor: d.minor}
		byDev[d] = io
	}
	return io
}

func sortedDevices(byDev map[devNum]*DeviceIO) []DeviceIO {
	out := make([]DeviceIO, 0, len(byDev))
	for _, io := range byDev {
		out = append(out, *io)
	}
	slices.SortFunc(out, func(a, b DeviceIO) int {
		return cmp.Or(cmp.Compare(a.Major, b.Major), cmp.Compare(a.Minor, b.Minor))
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// readV1IO reads the blkio throttle counters of dir: bytes from
// io_service_bytes, operations from io_serviced, each from the
// _recursive file when the kernel has it.
func readV1IO(dir string) ([]DeviceIO, error) {
	bytes, err := readBlkio(dir, "blkio.throttle.io_service_bytes")
	if err != nil {
		return nil, err
	}
	ops, err := readBlkio(dir, "blkio.throttle.io_serviced")
	if err != nil {
		return nil, err
	}
	byDev := map[devNum]*DeviceIO{}
	for d, b := range bytes {
		io := deviceEntry(byDev, d)
		io.ReadBytes, io.WriteBytes = b.read, b.write
	}
	for d, o := range ops {
		io := deviceEntry(byDev, d)
		io.Reads, io.Writes = o.read, o.write
	}
	return sortedDevices(byDev), nil
}

// readBlkio parses name_recursive, else name; neither is no devices.
func readBlkio(dir, name string) (map[devNum]readWrite, error) {
	for _, n := range []string{name + "_recursive", name} {
		data, err := readFile(filepath.Join(dir, n))
		if err == nil {
			return parseBlkio(string(data)), nil
		}
		if !os.IsNotExist(err) {
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
	}
	return nil, nil
}

// readV2IO reads io.stat; a folder without the io controller has none.
func readV2IO(dir string) ([]DeviceIO, error) {
	data, err := readFile(filepath.Join(dir, "io.stat"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading io.stat: %w", err)
	}
	return ParseIOStat(string(data)), nil
}

// nameDevices sets each device's node name from sysfs.
func (l Layout) nameDevices(devs []DeviceIO) {
	root := cmp.Or(l.SysDevBlock, DefaultSysDevBlock)
	for i := range devs {
		devs[i].Device = deviceName(root, devs[i].Major, devs[i].Minor)
	}
}

// deviceName is "/dev/" and the DEVNAME of the device's uevent file, or
// "major:minor" when sysfs does not name it.
func deviceName(root string, major, minor uint64) string {
	num := fmt.Sprintf("%d:%d", major, minor)
	data, err := readFile(filepath.Join(root, num, "uevent"))
	if err != nil {
		return num
	}
	for line := range strings.Lines(string(data)) {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "DEVNAME="); ok && name != "" {
			return "/dev/" + name
		}
	}
	return num
}
