package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Disk keeps one JSON record per object in a folder, written atomically:
// a temporary file, fsync, rename, fsync of the folder.
type Disk struct {
	dir string
}

// OpenDisk creates the folder if needed.
func OpenDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating record folder: %w", err)
	}
	return &Disk{dir: dir}, nil
}

func (d *Disk) path(id string) string { return filepath.Join(d.dir, id+".json") }

// Save writes the record of id durably.
func (d *Disk) Save(id string, rec any) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding record %s: %w", id, err)
	}
	return WriteFileAtomic(d.path(id), data, 0o600)
}

// Delete removes the record of id; a missing record is fine.
func (d *Disk) Delete(id string) error {
	err := os.Remove(d.path(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing record %s: %w", id, err)
	}
	return syncDir(d.dir)
}

// Load decodes every record into values made by newRec; a record that
// cannot be read is returned in bad by ID so the caller can clean it up.
func Load[T any](d *Disk) (recs map[string]*T, bad map[string]error, err error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("listing records: %w", err)
	}
	recs, bad = map[string]*T{}, map[string]error{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d.dir, e.Name()))
		if err != nil {
			bad[id] = err
			continue
		}
		rec := new(T)
		if err := json.Unmarshal(data, rec); err != nil {
			bad[id] = err
			continue
		}
		recs[id] = rec
	}
	return recs, bad, nil
}

// WriteFileAtomic replaces path with data so that a crash leaves either
// the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
