package bench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func writeLayer(t *testing.T, path string, gz bool, entries ...entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(data)
		_ = w.Close()
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUnpackLayers(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	outside := filepath.Join(dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	writeLayer(t, filepath.Join(dir, "l1"), true,
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, body: "bb"},
		entry{name: "bin/sleep", typ: tar.TypeLink, link: "bin/busybox"},
		entry{name: "etc/gone", typ: tar.TypeReg, mode: 0o644, body: "x"},
		entry{name: "opq/old", typ: tar.TypeReg, mode: 0o644, body: "x"},
		entry{name: "escape", typ: tar.TypeSymlink, link: outside},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	)
	writeLayer(t, filepath.Join(dir, "l2"), false,
		entry{name: "etc/.wh.gone", typ: tar.TypeReg},
		entry{name: "opq/.wh..wh..opq", typ: tar.TypeReg},
		entry{name: "opq/new", typ: tar.TypeReg, mode: 0o600, body: "n"},
		entry{name: "escape/pwned", typ: tar.TypeReg, mode: 0o644, body: "p"},
		entry{name: "../../up", typ: tar.TypeReg, mode: 0o644, body: "u"},
	)
	for _, l := range []string{"l1", "l2"} {
		if err := unpackLayer(filepath.Join(dir, l), root); err != nil {
			t.Fatalf("unpacking %s: %v", l, err)
		}
	}
	for _, tc := range []struct {
		path  string
		exist bool
	}{
		{"rootfs/bin/busybox", true}, {"rootfs/bin/sleep", true}, {"rootfs/etc/gone", false},
		{"rootfs/opq/old", false}, {"rootfs/opq/new", true}, {"rootfs/up", true},
		{"outside/pwned", false}, {"rootfs" + outside + "/pwned", true}, {"up", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := os.Lstat(filepath.Join(dir, tc.path))
			if got := err == nil; got != tc.exist {
				t.Errorf("exists = %v, want %v (%v)", got, tc.exist, err)
			}
		})
	}
	a, _ := os.Stat(filepath.Join(root, "bin/busybox"))
	b, _ := os.Stat(filepath.Join(root, "bin/sleep"))
	if !os.SameFile(a, b) {
		t.Error("bin/sleep is not a hard link to bin/busybox")
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode = %v, %v; want sticky 0777", st.Mode(), err)
	}
}
