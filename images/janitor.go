package images

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.podman.io/storage"
)

// layerJanitor removes layers left behind by failed or cancelled pulls.
// go.podman.io/image commits each layer to the store as soon as it is
// downloaded and records the image only at the end, so a pull that stops
// half-way leaves layers that no image references. Cleanup runs when no
// pull is active (so it never deletes the layers of a pull in progress)
// and holds the janitor lock so that no new pull starts meanwhile.
type layerJanitor struct {
	store storage.Store
	log   *slog.Logger

	mu         sync.Mutex
	active     int
	dirtySince time.Time // earliest start of a failed pull not yet cleaned
}

// begin registers a pull that is about to write to the store.
func (j *layerJanitor) begin() {
	j.mu.Lock()
	j.active++
	j.mu.Unlock()
}

// end unregisters a pull. When it failed, its layers (created at or after
// started) are removed as soon as no other pull is active.
func (j *layerJanitor) end(started time.Time, failed bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.active--
	if failed && (j.dirtySince.IsZero() || started.Before(j.dirtySince)) {
		j.dirtySince = started
	}
	if j.active > 0 || j.dirtySince.IsZero() {
		return
	}
	j.removeOrphans(j.dirtySince)
	j.dirtySince = time.Time{}
}

// removeOrphans deletes pulled layers created at or after since that no
// image or container uses, children before parents, then lets the store
// collect its own leftovers (staging directories, incomplete layers).
func (j *layerJanitor) removeOrphans(since time.Time) {
	orphans, err := j.orphanLayers(since)
	if err != nil {
		j.log.Warn("Listing orphan layers failed", "error", err)
		return
	}
	for _, layer := range orphans {
		if err := j.store.DeleteLayer(layer.ID); err != nil && !errors.Is(err, storage.ErrLayerUnknown) {
			j.log.Warn("Removing orphan layer failed", "layer_id", layer.ID, "error", err)
			continue
		}
		j.log.Debug("Removed orphan layer", "layer_id", layer.ID)
	}
	if err := j.store.GarbageCollect(); err != nil {
		j.log.Warn("Collecting storage garbage failed", "error", err)
	}
	if len(orphans) > 0 {
		j.log.Info("Removed layers of failed pull", "layers", len(orphans))
	}
}

// orphanLayers lists unreferenced pulled layers created at or after
// since, newest first. Layers without a content digest (container
// writable layers being created by the runtime) are never orphans here.
func (j *layerJanitor) orphanLayers(since time.Time) ([]storage.Layer, error) {
	layers, err := j.store.Layers()
	if err != nil {
		return nil, err
	}
	used, err := j.usedLayers(layers)
	if err != nil {
		return nil, err
	}
	var orphans []storage.Layer
	for _, l := range layers {
		pulled := l.UncompressedDigest != "" || l.CompressedDigest != "" || l.TOCDigest != ""
		if pulled && !used[l.ID] && !l.Created.Before(since) {
			orphans = append(orphans, l)
		}
	}
	sort.Slice(orphans, func(a, b int) bool { return orphans[a].Created.After(orphans[b].Created) })
	return orphans, nil
}

// usedLayers returns the IDs of layers that images or containers use,
// directly or as ancestors.
func (j *layerJanitor) usedLayers(layers []storage.Layer) (map[string]bool, error) {
	parent := make(map[string]string, len(layers))
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	imgs, err := j.store.Images()
	if err != nil {
		return nil, err
	}
	ctrs, err := j.store.Containers()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	mark := func(id string) {
		for ; id != "" && !used[id]; id = parent[id] {
			used[id] = true
		}
	}
	for _, img := range imgs {
		mark(img.TopLayer)
		for _, id := range img.MappedTopLayers {
			mark(id)
		}
	}
	for _, c := range ctrs {
		mark(c.LayerID)
	}
	return used, nil
}
