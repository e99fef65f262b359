// Package store keeps Arbor's pods and containers: an in-memory index by
// full ID, unique ID prefix and CRI name, and a durable record of each
// object written atomically before a call reports success, so that a
// restarted daemon can find everything again.
//
// Each object has two locks. Op serializes state-changing calls on that
// object (a create, a stop, a remove) and may be held for long; a call
// that adds to it (a container create in a pod) holds it shared, so that
// the pod's stop or removal waits for the new container and covers it.
// The data lock guards the record and is held only to read or write it.
// List calls take only data locks, so a stuck stop never blocks
// ListContainers.
package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Sentinel errors; the CRI boundary maps them to status codes.
var (
	// ErrNotFound means no object has that ID or ID prefix.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous means an ID prefix matches more than one object.
	ErrAmbiguous = errors.New("ID prefix matches more than one object")
	// ErrNameInUse means another object holds the name.
	ErrNameInUse = errors.New("name is reserved")
)

// Index maps names and IDs to objects of one kind. It is safe for
// concurrent use.
type Index[T any] struct {
	kind string

	mu    sync.RWMutex
	byID  map[string]*Entry[T] // guarded by mu
	names map[string]string    // guarded by mu; name → ID
}

// NewIndex returns an empty index; kind names the objects in errors.
func NewIndex[T any](kind string) *Index[T] {
	return &Index[T]{kind: kind, byID: map[string]*Entry[T]{}, names: map[string]string{}}
}

// Entry is one object: its record and its locks.
type Entry[T any] struct {
	ID string
	// Op serializes state-changing calls on this object; calls that add
	// to it (a container to a pod) hold it shared.
	Op sync.RWMutex

	mu      sync.RWMutex
	rec     T    // guarded by mu
	removed bool // guarded by mu

	// saveMu orders the writes of the record with its deletion: see
	// Store.SaveContainerOf.
	saveMu sync.Mutex
}

// Get returns a copy of the record.
func (e *Entry[T]) Get() T {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.rec
}

// Update changes the record under its lock and returns the new copy.
func (e *Entry[T]) Update(fn func(*T)) T {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(&e.rec)
	return e.rec
}

// Removed reports whether the object was removed from its index, which a
// caller that waited for Op must check.
func (e *Entry[T]) Removed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.removed
}

// ReserveName claims name for id. A name held by another ID is
// ErrNameInUse naming the holder; the same ID may reserve it again.
func (x *Index[T]) ReserveName(name, id string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if holder, ok := x.names[name]; ok && holder != id {
		return fmt.Errorf("%s name %q is reserved by %s: %w", x.kind, name, holder, ErrNameInUse)
	}
	x.names[name] = id
	return nil
}

// ReleaseName frees name if id holds it.
func (x *Index[T]) ReleaseName(name, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.names[name] == id {
		delete(x.names, name)
	}
}

// NameHolder returns the ID that holds name.
func (x *Index[T]) NameHolder(name string) (string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	id, ok := x.names[name]
	return id, ok
}

// Add puts a new object in the index and returns its entry.
func (x *Index[T]) Add(id string, rec T) *Entry[T] {
	e := &Entry[T]{ID: id, rec: rec}
	x.mu.Lock()
	x.byID[id] = e
	x.mu.Unlock()
	return e
}

// Remove takes the object out of the index and frees its name.
func (x *Index[T]) Remove(id, name string) {
	x.mu.Lock()
	e, ok := x.byID[id]
	delete(x.byID, id)
	if x.names[name] == id {
		delete(x.names, name)
	}
	x.mu.Unlock()
	if ok {
		e.mu.Lock()
		e.removed = true
		e.mu.Unlock()
	}
}

// Lookup finds an object by full ID or unique ID prefix.
func (x *Index[T]) Lookup(idOrPrefix string) (*Entry[T], error) {
	if idOrPrefix == "" {
		return nil, fmt.Errorf("%s ID is empty: %w", x.kind, ErrNotFound)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e, ok := x.byID[idOrPrefix]; ok {
		return e, nil
	}
	var found *Entry[T]
	for id, e := range x.byID {
		if !strings.HasPrefix(id, idOrPrefix) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%s %q: %w", x.kind, idOrPrefix, ErrAmbiguous)
		}
		found = e
	}
	if found == nil {
		return nil, fmt.Errorf("%s %q: %w", x.kind, idOrPrefix, ErrNotFound)
	}
	return found, nil
}

// All returns every entry, sorted by ID.
func (x *Index[T]) All() []*Entry[T] {
	x.mu.RLock()
	out := make([]*Entry[T], 0, len(x.byID))
	for _, e := range x.byID {
		out = append(out, e)
	}
	x.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of objects.
func (x *Index[T]) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}
