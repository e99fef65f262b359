package hooks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookJSON is a hook file running BIN with args for stages when always.
func hookJSON(stages string, args ...string) string {
	a := `"` + strings.Join(args, `","`) + `"`
	return `{"version":"1.0.0","hook":{"path":"BIN","args":[` + a + `]},"when":{"always":true},"stages":[` + stages + `]}`
}

func newManager(t *testing.T, dirs ...string) *Manager {
	t.Helper()
	m, err := New(dirs, discard())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// argsOf returns the first argument after the program name of each hook.
func argsOf(hs []specs.Hook) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Args[1])
	}
	return out
}

func TestApplyPlacesStagesInOrder(t *testing.T) {
	bin, dir := hookBinary(t), t.TempDir()
	writeHook(t, dir, "20-b.json", bin, hookJSON(`"createRuntime","poststop"`, "b", "b"))
	writeHook(t, dir, "10-a.json", bin, hookJSON(`"prestart","createRuntime","createContainer","startContainer","poststart","poststop"`, "a", "a"))
	writeHook(t, dir, "10-A.json", bin, hookJSON(`"poststart"`, "A", "A"))
	writeHook(t, dir, "30-c.json", bin, `{"version":"1.0.0","hook":{"path":"BIN","args":["c","c"]},"when":{"commands":["^nginx$"]},"stages":["prestart"]}`)
	writeHook(t, dir, "notes.txt", bin, "not a hook")
	m := newManager(t, dir)

	existing := specs.Hook{Path: "/usr/bin/existing", Args: []string{"e", "e"}}
	sp := specRunning("/bin/sh")
	sp.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{existing}}
	applied, err := m.Apply(sp, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10-A.json", "10-a.json", "20-b.json"}; !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	h := sp.Hooks
	for stage, want := range map[string][]string{
		"prestart":        {"a"},
		"createRuntime":   {"e", "a", "b"},
		"createContainer": {"a"},
		"startContainer":  {"a"},
		"poststart":       {"A", "a"},
		"poststop":        {"a", "b"},
	} {
		if got := argsOf(*stageLists[stage](h)); !slices.Equal(got, want) {
			t.Errorf("stage %s has %v, want %v", stage, got, want)
		}
	}
	if h.CreateRuntime[1].Path != bin {
		t.Fatalf("hook path %q, want %q", h.CreateRuntime[1].Path, bin)
	}
}

func TestApplyNothingMatchingLeavesSpec(t *testing.T) {
	bin, dir := hookBinary(t), t.TempDir()
	writeHook(t, dir, "c.json", bin, `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"commands":["^nginx$"]},"stages":["prestart"]}`)
	m := newManager(t, dir)
	sp := specRunning("/bin/sh")
	applied, err := m.Apply(sp, nil, false)
	if err != nil || len(applied) != 0 || sp.Hooks != nil {
		t.Fatalf("Apply = %v, %v; hooks %+v", applied, err, sp.Hooks)
	}
	if _, err := m.Apply(nil, nil, false); err == nil {
		t.Fatal("Apply accepted a nil spec")
	}
	var none *Manager
	if applied, err := none.Apply(sp, nil, false); err != nil || applied != nil || sp.Hooks != nil {
		t.Fatalf("a nil manager applied %v, %v", applied, err)
	}
}

func TestApplySharesNoMemory(t *testing.T) {
	bin, dir := hookBinary(t), t.TempDir()
	writeHook(t, dir, "a.json", bin, `{"version":"1.0.0","hook":{"path":"BIN","args":["a","1"],"env":["X=1"],"timeout":5},"when":{"always":true},"stages":["prestart"]}`)
	m := newManager(t, dir)
	first := specRunning("/bin/sh")
	if _, err := m.Apply(first, nil, false); err != nil {
		t.Fatal(err)
	}
	got := first.Hooks.Prestart[0]
	got.Args[1], got.Env[0], *got.Timeout = "changed", "X=2", 99
	second := specRunning("/bin/sh")
	if _, err := m.Apply(second, nil, false); err != nil {
		t.Fatal(err)
	}
	h := second.Hooks.Prestart[0]
	if h.Args[1] != "1" || h.Env[0] != "X=1" || *h.Timeout != 5 {
		t.Fatalf("a change to one spec leaked into the manager: %+v", h)
	}
}

func TestLaterFolderMasksEarlier(t *testing.T) {
	bin := hookBinary(t)
	usr, etc := t.TempDir(), t.TempDir()
	writeHook(t, usr, "shared.json", bin, hookJSON(`"prestart"`, "x", "usr"))
	writeHook(t, usr, "usr-only.json", bin, hookJSON(`"prestart"`, "x", "usr-only"))
	writeHook(t, etc, "shared.json", bin, hookJSON(`"poststop"`, "x", "etc"))
	writeHook(t, etc, "etc-only.json", bin, hookJSON(`"poststop"`, "x", "etc-only"))
	m := newManager(t, usr, etc, filepath.Join(t.TempDir(), "missing"))

	sp := specRunning("/bin/sh")
	if _, err := m.Apply(sp, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := argsOf(sp.Hooks.Prestart); !slices.Equal(got, []string{"usr-only"}) {
		t.Errorf("prestart %v, want only usr-only", got)
	}
	if got := argsOf(sp.Hooks.Poststop); !slices.Equal(got, []string{"etc-only", "etc"}) {
		t.Errorf("poststop %v, want etc-only then the masking etc/shared.json", got)
	}
}

func TestBadFileIsSkippedOthersLoad(t *testing.T) {
	bin := hookBinary(t)
	usr, etc := t.TempDir(), t.TempDir()
	writeHook(t, usr, "shared.json", bin, hookJSON(`"prestart"`, "x", "usr"))
	writeHook(t, etc, "good.json", bin, hookJSON(`"prestart"`, "x", "good"))
	bad := writeHook(t, etc, "shared.json", bin, `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"always":true},"stages":["never"]}`)

	m, err := New([]string{usr, etc}, discard())
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("New error %v does not name %s", err, bad)
	}
	if got := m.Names(); !slices.Equal(got, []string{"good.json", "shared.json"}) {
		t.Fatalf("loaded %v", got)
	}
	sp := specRunning("/bin/sh")
	if _, err := m.Apply(sp, nil, false); err != nil {
		t.Fatal(err)
	}
	if got := argsOf(sp.Hooks.Prestart); !slices.Equal(got, []string{"good", "usr"}) {
		t.Fatalf("prestart %v: the rejected file must not mask the earlier one", got)
	}
}

func TestReloadChanges(t *testing.T) {
	bin, dir := hookBinary(t), t.TempDir()
	writeHook(t, dir, "keep.json", bin, hookJSON(`"prestart"`, "x", "keep"))
	writeHook(t, dir, "edit.json", bin, hookJSON(`"prestart"`, "x", "v1"))
	gone := writeHook(t, dir, "gone.json", bin, hookJSON(`"prestart"`, "x", "gone"))
	m := newManager(t, dir)

	writeHook(t, dir, "edit.json", bin, hookJSON(`"prestart"`, "x", "v2"))
	writeHook(t, dir, "new.json", bin, hookJSON(`"prestart"`, "x", "new"))
	bad := writeHook(t, dir, "bad.json", bin, `{"version":"2.0.0"}`)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	ch, err := m.ReloadChanges()
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("reload error %v does not name %s", err, bad)
	}
	want := Changes{Added: []string{"new.json"}, Removed: []string{"gone.json"}, Changed: []string{"edit.json"}}
	if !slices.Equal(ch.Added, want.Added) || !slices.Equal(ch.Removed, want.Removed) || !slices.Equal(ch.Changed, want.Changed) {
		t.Fatalf("changes %+v, want %+v", ch, want)
	}
	if ch, err := m.ReloadChanges(); !ch.Empty() || err == nil {
		t.Fatalf("second reload: %+v, %v", ch, err)
	}
}

func TestReloadKeepsSetWhenFolderUnreadable(t *testing.T) {
	bin := hookBinary(t)
	dir := filepath.Join(t.TempDir(), "hooks.d")
	writeHook(t, dir, "a.json", bin, hookJSON(`"prestart"`, "x", "a"))
	m := newManager(t, dir)
	// A file where the folder should be cannot be listed.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Reload error %v does not name %s", err, dir)
	}
	if got := m.Names(); !slices.Equal(got, []string{"a.json"}) {
		t.Fatalf("a refused reload changed the set to %v", got)
	}
}

// TestApplyDuringReload runs Apply and Reload together; run with -race.
// Every Apply must see a whole set: both files of a generation or neither.
func TestApplyDuringReload(t *testing.T) {
	bin, dir := hookBinary(t), t.TempDir()
	m := newManager(t, dir)
	var wg sync.WaitGroup
	var reloads atomic.Int64
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			flipFiles(t, dir, bin, i%2 == 0)
			if err := m.Reload(); err != nil {
				t.Errorf("Reload: %v", err)
			}
			reloads.Add(1)
		}
	}()
	// Apply throughout at least 100 reloads.
	for reloads.Load() < 100 {
		applied, err := m.Apply(specRunning("/bin/sh"), nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) == 1 {
			t.Fatalf("applied %v: a half-loaded set", applied)
		}
	}
}

// flipFiles writes or removes a.json and b.json; it may run off the test
// goroutine, so it reports with Errorf.
func flipFiles(t *testing.T, dir, bin string, write bool) {
	for _, name := range []string{"a.json", "b.json"} {
		p := filepath.Join(dir, name)
		var err error
		if write {
			err = os.WriteFile(p, []byte(strings.ReplaceAll(hookJSON(`"prestart"`, "x", name), "BIN", bin)), 0o644)
		} else {
			err = os.Remove(p)
		}
		if err != nil {
			t.Errorf("flipping %s: %v", name, err)
		}
	}
}
