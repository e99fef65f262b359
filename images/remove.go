package images

import (
	"context"
	"errors"
	"fmt"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// Remove removes the image ref resolves to (ID, ID prefix, tag or digest
// reference). Removing a tag that the image shares with other tags only
// removes that tag. It returns ErrNotFound when nothing matches, ErrPinned
// for a pinned image or tag, and ErrInUse (naming the container) while a
// storage container uses the image. An image that disappears while being
// removed (a concurrent Remove won) counts as removed.
func (s *Service) Remove(ctx context.Context, ref string) error {
	m, err := s.lookup(ref)
	if err != nil {
		return err
	}
	if tag, ok := m.name.(reference.NamedTagged); ok && otherTags(m.image, tag) {
		return s.untag(m.image, tag.String())
	}
	return s.deleteImage(m.image)
}

// otherTags reports whether img has tags besides tag.
func otherTags(img *storage.Image, tag reference.NamedTagged) bool {
	tags, _ := repoNames(img)
	for _, t := range tags {
		if t != tag.String() {
			return true
		}
	}
	return false
}

// untag removes one name from an image.
func (s *Service) untag(img *storage.Image, name string) error {
	if s.settings.Load().pinned.matches(name) {
		return fmt.Errorf("%w: %s", ErrPinned, name)
	}
	if err := s.store.RemoveNames(img.ID, []string{name}); err != nil && !errors.Is(err, storage.ErrImageUnknown) {
		return fmt.Errorf("untagging %s from image %s: %w", name, img.ID, err)
	}
	s.log.Info("Untagged image", "image", name, "image_id", img.ID)
	return nil
}

// deleteImage removes an image and the layers no other image uses.
func (s *Service) deleteImage(img *storage.Image) error {
	if s.settings.Load().pinned.matchesAny(img.Names) {
		return fmt.Errorf("%w: %s (%v)", ErrPinned, img.ID, img.Names)
	}
	if err := s.checkUnused(img.ID); err != nil {
		return err
	}
	_, err := s.store.DeleteImage(img.ID, true)
	switch {
	case errors.Is(err, storage.ErrImageUnknown), errors.Is(err, storage.ErrNotAnImage):
		return nil // removed concurrently
	case errors.Is(err, storage.ErrImageUsedByContainer):
		return fmt.Errorf("%w: removing image %s: %w", ErrInUse, img.ID, err)
	case err != nil:
		return fmt.Errorf("removing image %s: %w", img.ID, err)
	}
	s.configs.Delete(img.ID)
	s.log.Info("Removed image", "image_id", img.ID, "names", img.Names)
	return nil
}

// checkUnused returns ErrInUse naming the first container using image
// id, or saying that the image is mounted (as an image volume).
func (s *Service) checkUnused(id string) error {
	ctrs, err := s.store.Containers()
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range ctrs {
		if c.ImageID == id {
			return fmt.Errorf("%w: image %s is used by container %s", ErrInUse, id, c.ID)
		}
	}
	if img, err := s.store.Image(id); err == nil {
		if l, err := s.store.Layer(VolumeLayer(s.store, img)); err == nil && l.MountCount > 0 {
			return fmt.Errorf("%w: image %s is mounted %d time(s) as an image volume", ErrInUse, id, l.MountCount)
		}
	}
	return nil
}

// VolumeLayer is the layer storage mounts when img is mounted whole (as
// an image volume): its top layer with the host's ID mapping, as
// MountImage picks it.
func VolumeLayer(st storage.Store, img *storage.Image) string {
	for _, id := range img.MappedTopLayers {
		if l, err := st.Layer(id); err == nil && len(l.UIDMap) == 0 && len(l.GIDMap) == 0 {
			return id
		}
	}
	return img.TopLayer
}
