package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// record is what Runtime keeps on disk about one container so that a later
// Runtime (after a daemon restart) can manage it.
type record struct {
	ID        string `json:"id"`
	Handler   string `json:"handler"`
	BundleDir string `json:"bundle_dir"`
	LogPath   string `json:"log_path"`
}

func (r *Runtime) recordPath(id string) string {
	return filepath.Join(r.stateDir(id), "record.json")
}

// writeRecord stores rec atomically in the container's state folder.
func (r *Runtime) writeRecord(rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding container record: %w", err)
	}
	tmp := r.recordPath(rec.ID) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing container record: %w", err)
	}
	if err := os.Rename(tmp, r.recordPath(rec.ID)); err != nil {
		return fmt.Errorf("renaming container record: %w", err)
	}
	return nil
}

// loadRecord reads the record of id; a missing record is ErrNotFound.
func (r *Runtime) loadRecord(id string) (record, error) {
	if err := validateID(id); err != nil {
		return record{}, err
	}
	data, err := os.ReadFile(r.recordPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return record{}, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return record{}, fmt.Errorf("reading container record: %w", err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, fmt.Errorf("decoding container record: %w", err)
	}
	return rec, nil
}

// handlerFor loads the record of id and its handler.
func (r *Runtime) handlerFor(id string) (record, Handler, error) {
	rec, err := r.loadRecord(id)
	if err != nil {
		return record{}, Handler{}, err
	}
	h, err := r.Handler(rec.Handler)
	if err != nil {
		return record{}, Handler{}, err
	}
	return rec, h, nil
}

// IDs lists the containers that have a record in StateDir.
func (r *Runtime) IDs() ([]string, error) {
	entries, err := os.ReadDir(r.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("listing state folder: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if _, err := os.Stat(r.recordPath(e.Name())); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
