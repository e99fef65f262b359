package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Store holds every pod and container, in memory and on disk.
type Store struct {
	Pods       *Index[Pod]
	Containers *Index[Container]
	podDisk    *Disk
	ctrDisk    *Disk
	dir        string

	leftMu sync.Mutex // serializes changes to the left-cgroups file
}

// Open returns an empty store whose records live under dir. Restore loads
// the records that are already there.
func Open(dir string) (*Store, error) {
	pd, err := OpenDisk(filepath.Join(dir, "pods"))
	if err != nil {
		return nil, err
	}
	cd, err := OpenDisk(filepath.Join(dir, "containers"))
	if err != nil {
		return nil, err
	}
	return &Store{
		Pods: NewIndex[Pod]("pod sandbox"), Containers: NewIndex[Container]("container"),
		podDisk: pd, ctrDisk: cd, dir: dir,
	}, nil
}

// SavePod writes a pod's record durably.
func (s *Store) SavePod(p Pod) error {
	if err := s.podDisk.Save(p.ID, p); err != nil {
		return fmt.Errorf("saving pod record: %w", err)
	}
	return nil
}

// DeletePod removes a pod's record.
func (s *Store) DeletePod(id string) error { return s.podDisk.Delete(id) }

// SaveContainer writes a container's record durably.
func (s *Store) SaveContainer(c Container) error {
	if err := s.ctrDisk.Save(c.ID, c); err != nil {
		return fmt.Errorf("saving container record: %w", err)
	}
	return nil
}

// DeleteContainer removes a container's record.
func (s *Store) DeleteContainer(id string) error { return s.ctrDisk.Delete(id) }

// SaveContainerOf writes the record of a listed container as it is when
// the write begins, unless the container was removed. Writes of one
// container are serialized with each other and with RemoveContainerOf,
// so calls that change a container without its Op lock (the exit monitor,
// a status call that notices an exit) never put an older state back on
// disk, nor a record back after the removal deleted it.
func (s *Store) SaveContainerOf(e *Entry[Container]) error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	if e.Removed() {
		return nil
	}
	return s.SaveContainer(e.Get())
}

// RemoveContainerOf deletes a container's record and takes it out of the
// index, as one step for SaveContainerOf.
func (s *Store) RemoveContainerOf(e *Entry[Container]) error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	if err := s.DeleteContainer(e.ID); err != nil {
		return err
	}
	s.Containers.Remove(e.ID, e.Get().Name)
	return nil
}

// LoadRecords reads every record on disk, for restore. Unreadable records
// are returned by ID with their error.
func (s *Store) LoadRecords() (pods map[string]*Pod, ctrs map[string]*Container, bad map[string]error, err error) {
	pods, badPods, err := Load[Pod](s.podDisk)
	if err != nil {
		return nil, nil, nil, err
	}
	ctrs, badCtrs, err := Load[Container](s.ctrDisk)
	if err != nil {
		return nil, nil, nil, err
	}
	for id, e := range badCtrs {
		badPods[id] = e
	}
	return pods, ctrs, badPods, nil
}

// ContainersOf returns the entries of a pod's containers.
func (s *Store) ContainersOf(podID string) []*Entry[Container] {
	var out []*Entry[Container]
	for _, e := range s.Containers.All() {
		if e.Get().PodID == podID {
			out = append(out, e)
		}
	}
	return out
}

// leftFile lists cgroup folders that removed pods made but had to leave,
// because other pods' cgroups were still in them.
func (s *Store) leftFile() string { return filepath.Join(s.dir, "cgroups-left.json") }

// UpdateLeftCgroups changes the list of cgroup folders left behind by
// removed pods: fn gets the current list and returns the new one, which
// is written durably.
func (s *Store) UpdateLeftCgroups(fn func([]string) []string) error {
	s.leftMu.Lock()
	defer s.leftMu.Unlock()
	var left []string
	data, err := os.ReadFile(s.leftFile())
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &left); err != nil {
			return fmt.Errorf("reading %s: %w", s.leftFile(), err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	next := fn(left)
	if len(next) == 0 {
		if err := os.Remove(s.leftFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err = json.Marshal(next)
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.leftFile(), data, 0o600)
}
