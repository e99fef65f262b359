package images

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenFallsBackToVFSWhenOverlayCannotMount(t *testing.T) {
	// An overlay mount cannot serve as the upper directory of another
	// overlay, so a store rooted inside one must fall back to vfs.
	dir := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	merged := filepath.Join(dir, "merged")
	opts := "lowerdir=" + filepath.Join(dir, "lower") + ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot create an overlay mount to test on: %v", err)
	}
	t.Cleanup(func() { must(t, unix.Unmount(merged, unix.MNT_DETACH)) })
	logs := &syncBuffer{}
	svc, err := Open(Config{
		Root: filepath.Join(merged, "root"), RunRoot: filepath.Join(dir, "run"),
		RegistriesConf: filepath.Join(dir, "none.conf"), SignaturePolicy: filepath.Join(dir, "none.json"),
	}, slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() { _, _ = svc.Store().Shutdown(true) }()
	if svc.Driver() != "vfs" || logs.count("Overlay storage driver unusable") != 1 {
		t.Fatalf("driver %q, logs:\n%s\nwant vfs with the reason logged", svc.Driver(), logs)
	}
}
