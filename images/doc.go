// Package images is Arbor's image layer: it pulls container images from
// registries and archives into a go.podman.io/storage store, lists,
// inspects and removes them, reports the store's disk usage and keeps
// pinned images (including the pause image) from being removed.
//
// A Service owns one storage.Store. The runtime layer creates containers
// from the same store (Service.Store) using the image IDs that Resolve and
// Pull return. Every error that callers need to tell apart wraps one of the
// sentinel errors in errors.go, so callers test them with errors.Is.
package images
