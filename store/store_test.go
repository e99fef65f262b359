package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type rec struct {
	Name  string
	State string
}

func TestLookupByPrefix(t *testing.T) {
	x := NewIndex[rec]("container")
	x.Add("abc123", rec{Name: "a"})
	x.Add("abd456", rec{Name: "b"})
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{in: "abc123", want: "abc123"},
		{in: "abc", want: "abc123"},
		{in: "abd", want: "abd456"},
		{in: "ab", err: ErrAmbiguous},
		{in: "zz", err: ErrNotFound},
		{in: "", err: ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			e, err := x.Lookup(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("want %v, got %v", tc.err, err)
				}
				return
			}
			if err != nil || e.ID != tc.want {
				t.Fatalf("got %v, %v", e, err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	x := NewIndex[rec]("pod")
	if err := x.ReserveName("web_default_uid_0", "id1"); err != nil {
		t.Fatal(err)
	}
	if err := x.ReserveName("web_default_uid_0", "id1"); err != nil {
		t.Fatalf("the holder may reserve again: %v", err)
	}
	err := x.ReserveName("web_default_uid_0", "id2")
	if !errors.Is(err, ErrNameInUse) || !contains(err.Error(), "id1") {
		t.Fatalf("a taken name must name its holder: %v", err)
	}
	x.Add("id1", rec{})
	x.Remove("id1", "web_default_uid_0")
	if err := x.ReserveName("web_default_uid_0", "id2"); err != nil {
		t.Fatalf("a removed object frees its name: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestStuckOpDoesNotBlockReads(t *testing.T) {
	x := NewIndex[rec]("container")
	e := x.Add("id", rec{State: "running"})
	e.Op.Lock() // a stop that hangs
	defer e.Op.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, en := range x.All() {
			_ = en.Get()
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("listing blocked behind a held operation lock")
	}
}

func TestConcurrentUpdates(t *testing.T) {
	x := NewIndex[rec]("container")
	e := x.Add("id", rec{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { e.Update(func(r *rec) { r.Name += "x" }) })
	}
	wg.Wait()
	if got := len(e.Get().Name); got != 50 {
		t.Fatalf("lost updates: %d of 50", got)
	}
}

func TestDiskRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pods")
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Save("p1", rec{Name: "one", State: "ready"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := Load[rec](d)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs["p1"].Name != "one" {
		t.Fatalf("records: %+v", recs)
	}
	if _, ok := bad["broken"]; !ok {
		t.Fatalf("a broken record must be reported: %v", bad)
	}
	if err := d.Delete("p1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("p1"); err != nil {
		t.Fatalf("deleting twice must be fine: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestSaveContainerOfAfterRemoval has savers race a removal: whichever
// order they run in, no record is left once the container is removed, and
// a save before it writes the newest state.
func TestSaveContainerOfAfterRemoval(t *testing.T) {
	for range 50 {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		e := s.Containers.Add("c1", Container{ID: "c1", Name: "n", State: 1})
		if err := s.SaveContainerOf(e); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				e.Update(func(c *Container) { c.ExitCode = int32(i) })
				if err := s.SaveContainerOf(e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Go(func() {
			if err := s.RemoveContainerOf(e); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		_, ctrs, _, err := s.LoadRecords()
		if err != nil {
			t.Fatal(err)
		}
		if len(ctrs) != 0 {
			t.Fatalf("records after the removal: %v", ctrs)
		}
		if _, err := s.Containers.Lookup("c1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lookup after the removal: %v", err)
		}
	}
}

// TestSaveContainerOfWritesTheNewest: a save that was held up writes the
// record as it is by then, not the state its caller changed.
func TestSaveContainerOfWritesTheNewest(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := s.Containers.Add("c1", Container{ID: "c1", State: 1})
	e.saveMu.Lock() // a save in progress
	done := make(chan error, 1)
	e.Update(func(c *Container) { c.State = 2 })
	go func() { done <- s.SaveContainerOf(e) }()
	e.Update(func(c *Container) { c.State = 3; c.ExitCode = 7 })
	e.saveMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, ctrs, _, err := s.LoadRecords()
	if err != nil {
		t.Fatal(err)
	}
	if c := ctrs["c1"]; c == nil || c.State != 3 || c.ExitCode != 7 {
		t.Fatalf("record on disk: %+v, want the newest state 3 with exit code 7", c)
	}
}
