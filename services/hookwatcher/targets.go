package hookwatcher

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// maxSyncAttempts bounds re-planning when folders appear or vanish while
// watches are being added.
const maxSyncAttempts = 5

// targets plans which paths to watch: each hook folder, or its nearest
// existing ancestor while it does not exist.
type targets struct {
	dirs    []string        // clean absolute hook folders
	watched map[string]bool // paths added to the watcher
}

func newTargets(dirs []string) *targets {
	t := &targets{watched: map[string]bool{}}
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil {
			t.dirs = append(t.dirs, abs)
		}
	}
	return t
}

// sync makes the watcher watch exactly the planned paths. Every planned
// path is added again, as a folder removed and created anew needs a new
// watch. The plan is checked again once the watches are in place, so a
// folder created (or removed) between planning and watching, which no
// event reports, is planned for too.
func (t *targets) sync(fw *fsnotify.Watcher) error {
	for range maxSyncAttempts {
		want := t.plan()
		err := t.apply(fw, want)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && maps.Equal(want, t.plan()) {
			return nil
		}
	}
	return fmt.Errorf("hook folders keep changing while being watched: %v", t.dirs)
}

// plan returns the path to watch for each hook folder.
func (t *targets) plan() map[string]bool {
	want := map[string]bool{}
	for _, d := range t.dirs {
		want[nearestFolder(d)] = true
	}
	return want
}

func (t *targets) apply(fw *fsnotify.Watcher, want map[string]bool) error {
	for p := range want {
		if err := fw.Add(p); err != nil {
			return fmt.Errorf("watching %s: %w", p, err)
		}
		t.watched[p] = true
	}
	for p := range t.watched {
		if !want[p] {
			_ = fw.Remove(p) // fails when the folder is already gone, and so unwatched
			delete(t.watched, p)
		}
	}
	return nil
}

// nearestFolder returns dir when it is a folder, else its nearest ancestor
// that is.
func nearestFolder(dir string) string {
	for p := dir; ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); (err == nil && st.IsDir()) || p == filepath.Dir(p) {
			return p
		}
	}
}

// relevant reports whether an event on path can change the hooks: it is a
// hook folder, an entry in one, or an ancestor of one.
func (t *targets) relevant(path string) bool {
	path = filepath.Clean(path)
	for _, d := range t.dirs {
		if path == d || filepath.Dir(path) == d || strings.HasPrefix(d, path+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
