package stats

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeFiles writes name → content under dir, making folders.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const psiFile = "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n"

// fakeV1 builds a hybrid v1 host under a temp root with one cgroup at rel
// holding the processes 100 and 101 (and 999, which has exited), a fake
// procfs and a sysfs naming block device 254:0.
func fakeV1(t *testing.T, rel string, cpuacct map[string]string) Layout {
	t.Helper()
	root := t.TempDir()
	for _, ctrl := range []string{"cpuacct", "cpu", "memory", "pids", "blkio"} {
		writeFiles(t, filepath.Join(root, ctrl), map[string]string{"cgroup.procs": ""})
	}
	writeFiles(t, filepath.Join(root, "unified"), map[string]string{"cgroup.controllers": ""})
	writeFiles(t, filepath.Join(root, "cpuacct", rel), cpuacct)
	writeFiles(t, filepath.Join(root, "cpuacct", rel), map[string]string{"cgroup.procs": "100\n101\n999\n"})
	writeFiles(t, filepath.Join(root, "cpu", rel), map[string]string{
		"cpu.stat": "nr_periods 40\nnr_throttled 6\nthrottled_time 2500000000\nnr_bursts 0\nburst_time 0\n",
	})
	writeFiles(t, filepath.Join(root, "memory", rel), map[string]string{
		"memory.usage_in_bytes":       "10000000\n",
		"memory.limit_in_bytes":       "9223372036854771712\n",
		"memory.max_usage_in_bytes":   "12000000\n",
		"memory.memsw.usage_in_bytes": "10004096\n",
		"memory.oom_control":          "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory.failcnt":              "9\n",
		"memory.kmem.usage_in_bytes":  "400000\n",
		"memory.stat": "cache 1\nrss 2\nmapped_file 3\ntotal_cache 3000000\ntotal_rss 6000000\ntotal_inactive_file 2500000\n" +
			"total_mapped_file 1200000\ntotal_pgfault 777\ntotal_pgmajfault 7\n",
	})
	writeFiles(t, filepath.Join(root, "pids", rel), map[string]string{"pids.current": "3\n", "pids.max": "4096\n"})
	writeFiles(t, filepath.Join(root, "blkio", rel), map[string]string{
		"blkio.throttle.io_service_bytes_recursive": "254:0 Read 8192\n254:0 Write 4096\n254:0 Sync 0\n254:0 Async 12288\n" +
			"254:0 Discard 0\n254:0 Total 12288\n7:1 Read 512\n7:1 Write 0\n7:1 Total 512\nTotal 12800\n",
		"blkio.throttle.io_service_bytes": "254:0 Read 1\nTotal 1\n", // the _recursive file wins
		"blkio.throttle.io_serviced":      "254:0 Read 2\n254:0 Write 1\n254:0 Total 3\n7:1 Read 1\nTotal 4\n",
	})
	writeFiles(t, filepath.Join(root, "unified", rel), map[string]string{
		"cpu.pressure": psiFile, "memory.pressure": psiFile, "io.pressure": psiFile,
	})
	l := DetectLayout(root)
	if l.V2 || l.Unified == "" || len(l.Controllers) != 5 {
		t.Fatalf("layout of fake v1 host: %+v", l)
	}
	l.Proc, l.SysDevBlock = fakeProc(t), fakeSysDevBlock(t)
	return l
}

// fakeProc makes a procfs with the open files of processes 100 (stdin,
// a pipe and two sockets) and 101 (one socket).
func fakeProc(t *testing.T) string {
	t.Helper()
	proc := t.TempDir()
	for pid, links := range map[string][]string{
		"100": {"/dev/null", "pipe:[41]", "socket:[42]", "socket:[43]"},
		"101": {"socket:[44]"},
	} {
		fd := filepath.Join(proc, pid, "fd")
		if err := os.MkdirAll(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, target := range links {
			if err := os.Symlink(target, filepath.Join(fd, strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return proc
}

// fakeSysDevBlock names device 254:0 "vda"; 7:1 has no uevent.
func fakeSysDevBlock(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"254:0/uevent": "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n"})
	return dir
}

// wantFakeIO is the block I/O of the fake trees.
var wantFakeIO = []DeviceIO{
	{Major: 7, Minor: 1, Device: "7:1", ReadBytes: 512, Reads: 1},
	{Major: 254, Minor: 0, Device: "/dev/vda", ReadBytes: 8192, WriteBytes: 4096, Reads: 2, Writes: 1},
}

func TestReadV1(t *testing.T) {
	cases := []struct {
		name              string
		cpuacct           map[string]string
		wantUser, wantSys uint64
	}{
		{
			name: "usage_user and usage_sys",
			cpuacct: map[string]string{
				"cpuacct.usage": "5000000000\n", "cpuacct.usage_user": "3000000000\n", "cpuacct.usage_sys": "2000000000\n",
			},
			wantUser: 3e9, wantSys: 2e9,
		},
		{
			name:     "cpuacct.stat in ticks",
			cpuacct:  map[string]string{"cpuacct.usage": "5000000000\n", "cpuacct.stat": "user 250\nsystem 50\n"},
			wantUser: 2.5e9, wantSys: 0.5e9,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := fakeV1(t, "kubepods/pod1/arbor-c1", tc.cpuacct)
			cg, err := l.Read("/kubepods/pod1/arbor-c1")
			if err != nil {
				t.Fatal(err)
			}
			if cg.CPU.UsageNs != 5e9 || cg.CPU.UserNs != tc.wantUser || cg.CPU.SystemNs != tc.wantSys {
				t.Fatalf("cpu %+v", cg.CPU)
			}
			m := cg.Memory
			want := Memory{Usage: 10000000, WorkingSet: 7500000, RSS: 6000000, Cache: 3000000, Swap: 4096,
				MaxUsage: 12000000, PageFaults: 777, MajorFaults: 7, Limit: 0, OOMKills: 2,
				Failcnt: 9, KernelUsage: 400000, MappedFile: 1200000}
			m.PSI = nil
			if m != want {
				t.Fatalf("memory\n got %+v\nwant %+v", m, want)
			}
			if !cg.CPU.HasCFS || cg.CPU.CFS != (CFS{Periods: 40, ThrottledPeriods: 6, ThrottledNs: 2.5e9}) {
				t.Fatalf("cfs %+v (read %v)", cg.CPU.CFS, cg.CPU.HasCFS)
			}
			if !cg.HasPids || cg.Pids != 3 || cg.PidsMax != 4096 {
				t.Fatalf("pids %d of %d (read %v)", cg.Pids, cg.PidsMax, cg.HasPids)
			}
			if !slices.Equal(cg.IO, wantFakeIO) {
				t.Fatalf("io\n got %+v\nwant %+v", cg.IO, wantFakeIO)
			}
			if cg.Files == nil || *cg.Files != (Files{Descriptors: 5, Sockets: 3}) {
				t.Fatalf("files %+v", cg.Files)
			}
			for name, p := range map[string]*PSI{"cpu": cg.CPU.PSI, "memory": cg.Memory.PSI, "io": cg.IOPSI} {
				if p == nil || p.Some.Total != 1234000 || p.Some.Avg10 != 1.5 || p.Full.Total != 10000 {
					t.Fatalf("%s PSI %+v", name, p)
				}
			}
		})
	}
}

func TestReadV2(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"cgroup.controllers": "cpu memory pids\n"})
	writeFiles(t, filepath.Join(root, "kubepods/pod1/arbor-c1"), map[string]string{
		"cgroup.procs": "101\n100\n",
		"cpu.stat": "usage_usec 4000\nuser_usec 3000\nsystem_usec 1000\nnr_periods 12\nnr_throttled 3\n" +
			"throttled_usec 7000\nnr_bursts 0\nburst_usec 0\n",
		"memory.current":      "8192000\n",
		"memory.max":          "max\n",
		"memory.peak":         "9000000\n",
		"memory.swap.current": "0\n",
		"memory.events":       "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
		"memory.stat": "anon 4096000\nfile 2048000\nkernel 300000\nkernel_stack 16384\nfile_mapped 512000\n" +
			"inactive_file 1024000\npgfault 55\npgmajfault 5\n",
		"pids.current":    "2\n",
		"pids.max":        "max\n",
		"io.stat":         "254:0 rbytes=8192 wbytes=4096 rios=2 wios=1 dbytes=0 dios=0\n7:1 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
		"cpu.pressure":    psiFile,
		"memory.pressure": psiFile,
		"io.pressure":     psiFile,
	})
	l := DetectLayout(root)
	if !l.V2 {
		t.Fatalf("layout of fake v2 host: %+v", l)
	}
	l.Proc, l.SysDevBlock = fakeProc(t), fakeSysDevBlock(t)
	cg, err := l.Read("kubepods/pod1/arbor-c1")
	if err != nil {
		t.Fatal(err)
	}
	if cg.CPU.UsageNs != 4e6 || cg.CPU.UserNs != 3e6 || cg.CPU.SystemNs != 1e6 {
		t.Fatalf("cpu %+v", cg.CPU)
	}
	m := cg.Memory
	m.PSI = nil
	want := Memory{Usage: 8192000, WorkingSet: 7168000, RSS: 4096000, Cache: 2048000, MaxUsage: 9000000,
		PageFaults: 55, MajorFaults: 5, OOMKills: 1, Failcnt: 4, KernelUsage: 300000, MappedFile: 512000}
	if m != want {
		t.Fatalf("memory\n got %+v\nwant %+v", m, want)
	}
	if cg.Pids != 2 || cg.PidsMax != 0 || cg.CPU.PSI == nil || cg.IOPSI.Some.Avg60 != 0.25 {
		t.Fatalf("pids %d of %d, psi %+v", cg.Pids, cg.PidsMax, cg.CPU.PSI)
	}
	if !cg.CPU.HasCFS || cg.CPU.CFS != (CFS{Periods: 12, ThrottledPeriods: 3, ThrottledNs: 7e6}) {
		t.Fatalf("cfs %+v (read %v)", cg.CPU.CFS, cg.CPU.HasCFS)
	}
	if !slices.Equal(cg.IO, wantFakeIO) {
		t.Fatalf("io\n got %+v\nwant %+v", cg.IO, wantFakeIO)
	}
	if cg.Files == nil || *cg.Files != (Files{Descriptors: 5, Sockets: 3}) {
		t.Fatalf("files %+v", cg.Files)
	}
}

func TestReadV2WithoutControllers(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"cgroup.controllers": ""})
	writeFiles(t, filepath.Join(root, "c"), map[string]string{"cpu.stat": "usage_usec 7\n"})
	cg, err := DetectLayout(root).Read("c")
	if err != nil {
		t.Fatal(err)
	}
	if cg.CPU.UsageNs != 7000 || cg.Memory.Usage != 0 || cg.HasPids || cg.CPU.PSI != nil || cg.CPU.HasCFS || cg.IO != nil {
		t.Fatalf("got %+v", cg)
	}
	if cg.Files != nil {
		t.Fatalf("a cgroup without cgroup.procs has no open file count: %+v", cg.Files)
	}
}

func TestReadErrors(t *testing.T) {
	l := fakeV1(t, "a", map[string]string{"cpuacct.usage": "1\n"})
	if _, err := l.Read("/missing"); !errors.Is(err, ErrNoCgroup) {
		t.Fatalf("a missing cgroup must be ErrNoCgroup: %v", err)
	}
	if _, err := l.Read("/a/../../etc"); err == nil || !strings.Contains(err.Error(), "..") {
		t.Fatalf("a path with .. must be refused: %v", err)
	}
	writeFiles(t, filepath.Join(l.Root, "cpuacct", "bad"), map[string]string{"cpuacct.usage": "lots\n"})
	if _, err := l.Read("bad"); err == nil || errors.Is(err, ErrNoCgroup) {
		t.Fatalf("a garbled counter must be an error: %v", err)
	}
	if _, err := (Layout{Root: t.TempDir(), Controllers: map[string]string{}}).Read("a"); err == nil {
		t.Fatal("reading without v1 controllers must fail")
	}
}

func TestParsePSI(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
		some     PSIData
	}{
		{name: "some and full", in: psiFile, ok: true, some: PSIData{Total: 1234000, Avg10: 1.5, Avg60: 0.25}},
		{name: "some only", in: "some avg10=0.00 avg60=0.00 avg300=3.00 total=1\n", ok: true, some: PSIData{Total: 1000, Avg300: 3}},
		{name: "empty", in: ""},
		{name: "unknown kind", in: "most avg10=0.00\n"},
		{name: "bad number", in: "some avg10=x\n"},
		{name: "no value", in: "some avg10\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePSI(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && p.Some != tc.some {
				t.Fatalf("some %+v, want %+v", p.Some, tc.some)
			}
		})
	}
}

func TestParseKeyValues(t *testing.T) {
	got := ParseKeyValues("a 1\nb  2\nnot-a-pair\nc x\n\nd 18446744073709551615\n")
	if len(got) != 3 || got["a"] != 1 || got["b"] != 2 || got["d"] != 18446744073709551615 {
		t.Fatalf("got %v", got)
	}
}
