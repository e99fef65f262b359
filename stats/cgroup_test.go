package stats

import (
	"errors"
	"os"
	"path/filepath"
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

// fakeV1 builds a hybrid v1 host under a temp root with one cgroup at rel.
func fakeV1(t *testing.T, rel string, cpuacct map[string]string) Layout {
	t.Helper()
	root := t.TempDir()
	for _, ctrl := range []string{"cpuacct", "memory", "pids"} {
		writeFiles(t, filepath.Join(root, ctrl), map[string]string{"cgroup.procs": ""})
	}
	writeFiles(t, filepath.Join(root, "unified"), map[string]string{"cgroup.controllers": ""})
	writeFiles(t, filepath.Join(root, "cpuacct", rel), cpuacct)
	writeFiles(t, filepath.Join(root, "memory", rel), map[string]string{
		"memory.usage_in_bytes":       "10000000\n",
		"memory.limit_in_bytes":       "9223372036854771712\n",
		"memory.max_usage_in_bytes":   "12000000\n",
		"memory.memsw.usage_in_bytes": "10004096\n",
		"memory.oom_control":          "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory.stat":                 "cache 1\nrss 2\ntotal_cache 3000000\ntotal_rss 6000000\ntotal_inactive_file 2500000\ntotal_pgfault 777\ntotal_pgmajfault 7\n",
	})
	writeFiles(t, filepath.Join(root, "pids", rel), map[string]string{"pids.current": "3\n"})
	writeFiles(t, filepath.Join(root, "unified", rel), map[string]string{
		"cpu.pressure": psiFile, "memory.pressure": psiFile, "io.pressure": psiFile,
	})
	l := DetectLayout(root)
	if l.V2 || l.Unified == "" || len(l.Controllers) != 3 {
		t.Fatalf("layout of fake v1 host: %+v", l)
	}
	return l
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
				MaxUsage: 12000000, PageFaults: 777, MajorFaults: 7, Limit: 0, OOMKills: 2}
			m.PSI = nil
			if m != want {
				t.Fatalf("memory\n got %+v\nwant %+v", m, want)
			}
			if !cg.HasPids || cg.Pids != 3 {
				t.Fatalf("pids %d %v", cg.Pids, cg.HasPids)
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
		"cpu.stat":            "usage_usec 4000\nuser_usec 3000\nsystem_usec 1000\nnr_periods 0\n",
		"memory.current":      "8192000\n",
		"memory.max":          "max\n",
		"memory.peak":         "9000000\n",
		"memory.swap.current": "0\n",
		"memory.events":       "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
		"memory.stat":         "anon 4096000\nfile 2048000\ninactive_file 1024000\npgfault 55\npgmajfault 5\n",
		"pids.current":        "2\n",
		"cpu.pressure":        psiFile,
		"memory.pressure":     psiFile,
		"io.pressure":         psiFile,
	})
	l := DetectLayout(root)
	if !l.V2 {
		t.Fatalf("layout of fake v2 host: %+v", l)
	}
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
		PageFaults: 55, MajorFaults: 5, OOMKills: 1}
	if m != want {
		t.Fatalf("memory\n got %+v\nwant %+v", m, want)
	}
	if cg.Pids != 2 || cg.CPU.PSI == nil || cg.IOPSI.Some.Avg60 != 0.25 {
		t.Fatalf("pids %d, psi %+v", cg.Pids, cg.CPU.PSI)
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
	if cg.CPU.UsageNs != 7000 || cg.Memory.Usage != 0 || cg.HasPids || cg.CPU.PSI != nil {
		t.Fatalf("got %+v", cg)
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
