package diskusage

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestWalkCountsEachInodeOnceAndSkips(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/one", 8192)
	write("b/two", 4096)
	if err := os.Link(filepath.Join(dir, "a/one"), filepath.Join(dir, "b/one-again")); err != nil {
		t.Fatal(err)
	}
	c, err := NewCounter(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Walk(context.Background(), filepath.Join(dir, "a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Inodes != 2 || a.Bytes < 8192 { // the folder and its file
		t.Errorf("a = %+v", a)
	}
	// a is skipped, and the hard link into b was counted by the first walk.
	b, err := c.Walk(context.Background(), dir, map[string]bool{filepath.Join(dir, "a"): true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Inodes != 3 { // dir, b, b/two; a skipped, b/one-again already seen
		t.Errorf("second walk = %+v, want 3 inodes", b)
	}
	missing, err := c.Walk(context.Background(), filepath.Join(dir, "gone"), nil)
	if err != nil || missing != (Usage{}) {
		t.Errorf("a missing folder: %+v, %v", missing, err)
	}
	if _, err := NewCounter(filepath.Join(dir, "gone")); err == nil {
		t.Error("NewCounter accepted a missing folder")
	}
}
