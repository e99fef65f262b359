package stats

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 1000) // past the first 4 KiB buffer
	for name, want := range map[string][]byte{"empty": {}, "small": []byte("42\n"), "big": big} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("readFile(%s) = %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	// A kernel file reads as os.ReadFile reads it.
	want, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readFile("/proc/self/limits"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("readFile(/proc/self/limits) = %q, %v; want %q", got, err, want)
	}
	_, err = readFile(filepath.Join(dir, "missing"))
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !os.IsNotExist(err) || !errors.As(err, &pe) || pe.Path != filepath.Join(dir, "missing") {
		t.Errorf("readFile of a missing file: %v, want a path error that is fs.ErrNotExist", err)
	}
	if _, err := readFile(dir); err == nil {
		t.Error("readFile of a folder succeeded")
	}
}
