package stats

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseIOStat(t *testing.T) {
	cases := []struct {
		name, in string
		want     []DeviceIO
	}{
		{name: "empty", in: ""},
		{
			name: "two devices sorted",
			in:   "254:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n8:0 rbytes=10 wbytes=20 rios=30 wios=40\n",
			want: []DeviceIO{{Major: 8, ReadBytes: 10, WriteBytes: 20, Reads: 30, Writes: 40},
				{Major: 254, Minor: 16, ReadBytes: 1, WriteBytes: 2, Reads: 3, Writes: 4}},
		},
		{
			name: "garbled fields and lines skipped",
			in:   "8:0 rbytes=x wbytes=5 junk\nnot-a-device rbytes=1\n8:x rbytes=1\n",
			want: []DeviceIO{{Major: 8, WriteBytes: 5}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseIOStat(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseBlkio(t *testing.T) {
	got := parseBlkio("8:0 Read 7\n8:0 Write 9\n8:0 Total 16\n8:16 Write x\nbad Read 1\nTotal 16\n")
	want := map[devNum]readWrite{{8, 0}: {read: 7, write: 9}}
	if len(got) != len(want) || got[devNum{8, 0}] != want[devNum{8, 0}] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestReadV1IOWithoutFiles(t *testing.T) {
	io, err := readV1IO(t.TempDir())
	if err != nil || io != nil {
		t.Fatalf("a blkio folder without throttle files has no devices: %+v, %v", io, err)
	}
}

func TestCountFiles(t *testing.T) {
	proc := fakeProc(t)
	got, err := CountFiles(proc, []int{100, 101, 4242})
	if err != nil || got != (Files{Descriptors: 5, Sockets: 3}) {
		t.Fatalf("got %+v, %v; want 5 descriptors, 3 sockets (4242 has exited)", got, err)
	}
	writeFiles(t, proc, map[string]string{"7/fd": "not a folder"})
	if _, err := CountFiles(proc, []int{7}); err == nil || !strings.Contains(err.Error(), "process 7") {
		t.Fatalf("an unreadable descriptor folder must be an error naming the process: %v", err)
	}
}

func TestCountFilesOfThisProcess(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	before, err := CountFiles(DefaultProc, []int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := CountFiles(DefaultProc, []int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if before.Descriptors != after.Descriptors+1 {
		t.Fatalf("closing one file: %d descriptors before, %d after", before.Descriptors, after.Descriptors)
	}
}

func TestDeviceName(t *testing.T) {
	root := fakeSysDevBlock(t)
	writeFiles(t, root, map[string]string{"8:0/uevent": "MAJOR=8\nMINOR=0\n"})
	for _, tc := range []struct {
		major, minor uint64
		want         string
	}{{254, 0, "/dev/vda"}, {8, 0, "8:0"}, {9, 9, "9:9"}} {
		if got := deviceName(root, tc.major, tc.minor); got != tc.want {
			t.Errorf("device %d:%d named %q, want %q", tc.major, tc.minor, got, tc.want)
		}
	}
}

// TestUsageFileSystem checks the statfs numbers against stat -f.
func TestUsageFileSystem(t *testing.T) {
	dir := t.TempDir()
	u, err := Usage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("stat", "-f", "-c", "%b %S %c", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var nums []uint64
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("stat -f printed %q: %v", out, err)
		}
		nums = append(nums, n)
	}
	if len(nums) != 3 || u.Capacity != nums[0]*nums[1] || u.InodesTotal != nums[2] {
		t.Fatalf("usage %+v, stat -f says blocks, block size, inodes = %v", u, nums)
	}
	if u.InodesFree == 0 || u.InodesFree > u.InodesTotal {
		t.Fatalf("free inodes %d of %d", u.InodesFree, u.InodesTotal)
	}
	if _, err := Usage(context.Background(), filepath.Join(dir, "none")); err == nil {
		t.Fatal("a missing folder must be an error")
	}
}
