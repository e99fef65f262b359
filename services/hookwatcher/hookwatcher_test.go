package hookwatcher

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/goleak"

	"github.com/arbor-cri/arbor/hooks"
	"github.com/arbor-cri/arbor/internal/syncbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a manager over dirs and a running watcher of it.
type fixture struct {
	m    *hooks.Manager
	bin  string
	logs *syncbuf.Buffer
}

// start runs a watcher of dirs until the test ends, then checks that Serve
// returned nil on cancel.
func start(t *testing.T, dirs ...string) *fixture {
	t.Helper()
	return startAfter(t, nil, dirs...)
}

// startAfter is start that calls before between loading the manager and
// starting the watcher.
func startAfter(t *testing.T, before func(*fixture), dirs ...string) *fixture {
	t.Helper()
	f := &fixture{bin: filepath.Join(t.TempDir(), "hook-bin"), logs: &syncbuf.Buffer{}}
	if err := os.WriteFile(f.bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if f.m, err = hooks.New(dirs, log); err != nil {
		t.Fatalf("hooks.New: %v", err)
	}
	if before != nil {
		before(f)
	}
	w := New(f.m, 20*time.Millisecond, log)
	if w.String() != "hooks" {
		t.Fatalf("service name %q", w.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v on cancel", err)
		}
	})
	return f
}

// write writes a hook file whose hook gets tag as its argument, through a
// temporary file renamed into place when atomic.
func (f *fixture) write(t *testing.T, dir, name, tag string, atomic bool) {
	t.Helper()
	content := `{"version":"1.0.0","hook":{"path":"` + f.bin + `","args":["h","` + tag +
		`"]},"when":{"always":true},"stages":["prestart"]}`
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, name)
	if !atomic {
		if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
}

// tags returns the argument of each prestart hook Apply injects now.
func (f *fixture) tags(t *testing.T) []string {
	t.Helper()
	sp := &specs.Spec{Process: &specs.Process{Args: []string{"/bin/sh"}}}
	if _, err := f.m.Apply(sp, nil, false); err != nil {
		t.Fatal(err)
	}
	if sp.Hooks == nil {
		return nil
	}
	var out []string
	for _, h := range sp.Hooks.Prestart {
		out = append(out, h.Args[1])
	}
	return out
}

// waitTags waits (bounded) until the injected hooks carry exactly want.
func (f *fixture) waitTags(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.tags(t)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooks %v never became %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLogs waits (bounded) until the log holds each of want.
func (f *fixture) waitLogs(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range want {
		for !strings.Contains(f.logs.String(), w) {
			if time.Now().After(deadline) {
				t.Fatalf("%q never logged:\n%s", w, f.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestNewChangedRemovedFile(t *testing.T) {
	dir := t.TempDir()
	f := start(t, dir)
	f.waitTags(t)

	f.write(t, dir, "a.json", "a1", false)
	f.waitTags(t, "a1")
	f.write(t, dir, "a.json", "a2", true)
	f.waitTags(t, "a2")
	f.write(t, dir, "b.json", "b1", true)
	f.waitTags(t, "a2", "b1")
	if err := os.Remove(filepath.Join(dir, "a.json")); err != nil {
		t.Fatal(err)
	}
	f.waitTags(t, "b1")
	// The watcher logs a reload after the manager swaps the new set in, so
	// the last line may still be on its way when waitTags returns.
	f.waitLogs(t, `msg="Hooks reloaded" added=[b.json]`, "removed=[a.json]", "changed=[a.json]")
}

func TestFileWrittenBeforeServeIsLoaded(t *testing.T) {
	dir := t.TempDir()
	f := startAfter(t, func(f *fixture) {
		if got := f.tags(t); len(got) != 0 {
			t.Fatalf("hooks before the write: %v", got)
		}
		f.write(t, dir, "a.json", "a", false)
	}, dir)
	f.waitTags(t, "a")
}

func TestFolderCreatedLaterAndRecreated(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "containers", "oci", "hooks.d")
	f := start(t, dir)

	f.write(t, dir, "a.json", "a", false) // creates every missing folder
	f.waitTags(t, "a")
	if err := os.RemoveAll(filepath.Join(base, "containers")); err != nil {
		t.Fatal(err)
	}
	f.waitTags(t)
	f.write(t, dir, "b.json", "b", true)
	f.waitTags(t, "b")
	f.write(t, dir, "c.json", "c", false)
	f.waitTags(t, "b", "c")
}

func TestBadFileKeepsOthersAndIsLogged(t *testing.T) {
	dir := t.TempDir()
	f := start(t, dir)
	f.write(t, dir, "a.json", "a", false)
	f.waitTags(t, "a")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":"1.0.0","hook":{"path":"relative"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f.write(t, dir, "c.json", "c", false)
	f.waitTags(t, "a", "c")
	if logs := f.logs.String(); !strings.Contains(logs, "Hook file rejected") || !strings.Contains(logs, bad) {
		t.Fatalf("the rejected file is not logged with its path:\n%s", logs)
	}
}

func TestLaterFolderMasksLive(t *testing.T) {
	usr, etc := t.TempDir(), filepath.Join(t.TempDir(), "etc-hooks")
	f := start(t, usr, etc)
	f.write(t, usr, "x.json", "usr", false)
	f.waitTags(t, "usr")
	f.write(t, etc, "x.json", "etc", false)
	f.waitTags(t, "etc")
	if err := os.Remove(filepath.Join(etc, "x.json")); err != nil {
		t.Fatal(err)
	}
	f.waitTags(t, "usr")
}

func TestTargets(t *testing.T) {
	base := t.TempDir()
	hooksDir := filepath.Join(base, "a", "b", "hooks.d")
	tg := newTargets([]string{hooksDir})
	if got := nearestFolder(hooksDir); got != base {
		t.Fatalf("nearestFolder = %s, want %s", got, base)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{hooksDir, true},
		{filepath.Join(hooksDir, "x.json"), true},
		{filepath.Join(base, "a"), true},
		{filepath.Join(base, "a", "b"), true},
		{filepath.Join(base, "other"), false},
		{filepath.Join(base, "a", "bb"), false},
		{filepath.Join(hooksDir, "sub", "x.json"), false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := tg.relevant(tc.path); got != tc.want {
				t.Fatalf("relevant(%s) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}
