package hooks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// set is one immutable generation of loaded hooks.
type set struct {
	byName  map[string]*Hook
	ordered []*Hook // by lower-cased name, then name
}

func newSet(byName map[string]*Hook) *set {
	s := &set{byName: byName}
	for _, h := range byName {
		s.ordered = append(s.ordered, h)
	}
	sort.Slice(s.ordered, func(i, j int) bool {
		a, b := s.ordered[i].Name, s.ordered[j].Name
		if la, lb := strings.ToLower(a), strings.ToLower(b); la != lb {
			return la < lb
		}
		return a < b
	})
	return s
}

// loadResult is what reading the folders produced.
type loadResult struct {
	hooks    map[string]*Hook
	rejected []*FileError
}

// loadDirs reads every folder in order, later files masking earlier ones
// of the same name. A bad file is rejected and skipped (an earlier file of
// its name stays). A folder that exists but cannot be listed fails the
// whole load.
func loadDirs(dirs []string) (loadResult, error) {
	res := loadResult{hooks: map[string]*Hook{}}
	for _, dir := range dirs {
		if err := loadDir(dir, &res); err != nil {
			return loadResult{}, err
		}
	}
	return res, nil
}

func loadDir(dir string, res *loadResult) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing hook folder %s: %w", dir, err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !isHookFile(path, e) {
			continue
		}
		h, ferr := readHook(path)
		if ferr != nil {
			res.rejected = append(res.rejected, ferr)
			continue
		}
		res.hooks[h.Name] = h
	}
	return nil
}

// isHookFile holds for a visible *.json entry that is (or links to) a
// regular file.
func isHookFile(path string, e fs.DirEntry) bool {
	if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
		return false
	}
	if e.Type().IsRegular() {
		return true
	}
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// Changes are the hook file names a reload added, removed or changed
// (content or source path), each sorted.
type Changes struct {
	Added   []string
	Removed []string
	Changed []string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

func diff(old, cur *set) Changes {
	var c Changes
	for name, h := range cur.byName {
		was, ok := old.byName[name]
		switch {
		case !ok:
			c.Added = append(c.Added, name)
		case was.Source != h.Source || !reflect.DeepEqual(was.Definition, h.Definition):
			c.Changed = append(c.Changed, name)
		}
	}
	for name := range old.byName {
		if _, ok := cur.byName[name]; !ok {
			c.Removed = append(c.Removed, name)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Removed)
	sort.Strings(c.Changed)
	return c
}
