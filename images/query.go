package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// Image describes one stored image.
type Image struct {
	// ID is the storage image ID (hex config digest), usable with Store().
	ID string
	// TopLayer is the storage layer a container's rootfs is created on.
	TopLayer string
	// RepoTags are the tagged names, e.g. "docker.io/library/busybox:1.36".
	RepoTags []string
	// RepoDigests are "repository@digest" names, one per repository.
	RepoDigests []string
	// Size is the image's size in the store in bytes.
	Size uint64
	// UID is the numeric user of the image config's User, if numeric.
	UID *int64
	// Username is the user name of the image config's User, if not numeric.
	Username string
	// Pinned reports whether the image is pinned (never removed).
	Pinned bool
	// Config is the OCI image configuration (entrypoint, cmd, env, working
	// dir, user, labels, volumes, stop signal). Set by Status only.
	Config *imgspecv1.Image
}

// List returns all stored images, or only the image filter resolves to
// when filter is not empty (none if it resolves to nothing).
func (s *Service) List(ctx context.Context, filter string) ([]Image, error) {
	if filter != "" {
		m, err := s.lookup(filter)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []Image{s.describe(m.image)}, nil
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	out := make([]Image, 0, len(imgs))
	for i := range imgs {
		out = append(out, s.describe(&imgs[i]))
	}
	return out, nil
}

// Status returns the image ref resolves to (ID, ID prefix, name or digest
// reference), including its OCI config. It returns ErrNotFound when no
// image matches. The runtime layer uses it to resolve a container's image.
func (s *Service) Status(ctx context.Context, ref string) (*Image, error) {
	m, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	img := s.describe(m.image)
	cfg, err := s.ociConfig(ctx, m.image.ID)
	if err != nil {
		return nil, err
	}
	img.Config = cfg
	img.UID, img.Username = userOf(cfg.Config.User)
	return &img, nil
}

// describe builds the Image for a stored image without reading its config
// unless it is cached.
func (s *Service) describe(img *storage.Image) Image {
	out := Image{ID: img.ID, TopLayer: img.TopLayer}
	out.RepoTags, out.RepoDigests = repoNames(img)
	if size, err := s.store.ImageSize(img.ID); err == nil && size > 0 {
		out.Size = uint64(size)
	}
	out.Pinned = s.settings.Load().pinned.matchesAny(img.Names)
	if cfg, ok := s.cachedConfig(img.ID); ok {
		out.UID, out.Username = userOf(cfg.Config.User)
	} else if cfg, err := s.ociConfig(context.Background(), img.ID); err == nil {
		out.UID, out.Username = userOf(cfg.Config.User)
	}
	return out
}

// repoNames splits an image's names into tags and repository digests.
func repoNames(img *storage.Image) (tags, digests []string) {
	repos := []string{}
	for _, n := range img.Names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.NamedTagged); ok {
			tags = append(tags, named.String())
		}
		if d, ok := named.(reference.Digested); ok {
			digests = append(digests, named.Name()+"@"+d.Digest().String())
		}
		repos = append(repos, named.Name())
	}
	if img.Digest != "" {
		for _, repo := range repos {
			digests = append(digests, repo+"@"+img.Digest.String())
		}
	}
	slices.Sort(digests)
	return tags, slices.Compact(digests)
}

// ociConfig reads (and caches) the OCI config of a stored image.
func (s *Service) ociConfig(ctx context.Context, id string) (*imgspecv1.Image, error) {
	if cfg, ok := s.cachedConfig(id); ok {
		return cfg, nil
	}
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, id)
	if err != nil {
		return nil, fmt.Errorf("referencing image %s: %w", id, err)
	}
	img, err := ref.NewImage(ctx, s.settings.Load().systemContext())
	if err != nil {
		return nil, notFoundOr(fmt.Errorf("opening image %s: %w", id, err))
	}
	defer img.Close()
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading config of image %s: %w", id, err)
	}
	s.configs.Store(id, cfg)
	return cfg, nil
}

// notFoundOr adds ErrNotFound to an error about a vanished image.
func notFoundOr(err error) error {
	if errors.Is(err, storage.ErrImageUnknown) || errors.Is(err, istorage.ErrNoSuchImage) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// userOf splits an image config User ("uid[:gid]" or "name[:group]")
// into a numeric UID or a user name; both are unset when User is empty.
func userOf(user string) (*int64, string) {
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(name, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, name
}
