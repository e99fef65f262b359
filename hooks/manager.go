package hooks

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager holds the current set of hooks read from its folders. Apply,
// Names and Reload are safe for concurrent use: Apply sees either the set
// before a reload or the one after, never a mix.
type Manager struct {
	dirs    []string
	log     *slog.Logger
	reload  sync.Mutex // one reload at a time
	current atomic.Pointer[set]
}

// New returns a manager of dirs (increasing precedence) with their hooks
// loaded. The manager is never nil: it holds every good hook even when err
// names rejected files or a folder that could not be listed (then it holds
// none); the caller decides whether that is fatal.
func New(dirs []string, log *slog.Logger) (*Manager, error) {
	m := &Manager{dirs: slices.Clone(dirs), log: log}
	m.current.Store(newSet(map[string]*Hook{}))
	return m, m.Reload()
}

// Dirs returns the hook folders, in increasing precedence.
func (m *Manager) Dirs() []string { return slices.Clone(m.dirs) }

// Names returns the file names of the loaded hooks, in injection order.
func (m *Manager) Names() []string {
	s := m.current.Load()
	names := make([]string, len(s.ordered))
	for i, h := range s.ordered {
		names[i] = h.Name
	}
	return names
}

// Reload reads the folders again and swaps in the new set at once. Bad
// files are logged, skipped and named in the error while the good ones
// load; if a folder cannot be listed the current set is kept and the error
// says why.
func (m *Manager) Reload() error {
	_, err := m.ReloadChanges()
	return err
}

// ReloadChanges is Reload that also returns what changed.
func (m *Manager) ReloadChanges() (Changes, error) {
	m.reload.Lock()
	defer m.reload.Unlock()
	res, err := loadDirs(m.dirs)
	if err != nil {
		m.log.Warn("Hook folders not reloaded; keeping the current hooks", "error", err)
		return Changes{}, err
	}
	errs := make([]error, len(res.rejected))
	for i, r := range res.rejected {
		m.log.Warn("Hook file rejected", "path", r.Path, "error", r.Err)
		errs[i] = r
	}
	cur := newSet(res.hooks)
	old := m.current.Swap(cur)
	return diff(old, cur), errors.Join(errs...)
}

// Apply adds every matching hook to its stages in sp, in injection order,
// after the hooks sp already has, and returns the matching file names.
// annotations are the container's annotations; hasBindMounts says whether
// the caller asked for host bind mounts (the CRI config's mounts, not the
// runtime's own). sp's hook lists share no memory with the manager. The
// only error is a nil spec. A nil manager injects nothing.
func (m *Manager) Apply(sp *specs.Spec, annotations map[string]string, hasBindMounts bool) (applied []string, err error) {
	if sp == nil {
		return nil, errors.New("applying hooks: nil spec")
	}
	if m == nil {
		return nil, nil
	}
	for _, h := range m.current.Load().ordered {
		if !h.Matches(sp, annotations, hasBindMounts) {
			continue
		}
		if sp.Hooks == nil {
			sp.Hooks = &specs.Hooks{}
		}
		for _, stage := range h.Definition.Stages {
			list := stageLists[stage](sp.Hooks)
			*list = append(*list, h.entry())
		}
		applied = append(applied, h.Name)
	}
	return applied, nil
}
