package images

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/storage"
)

// idPattern matches a full or abbreviated image ID, optionally "sha256:"-prefixed.
var idPattern = regexp.MustCompile(`^(sha256:)?[0-9a-f]{3,64}$`)

// match is an image found by lookup and the name that found it (empty
// when found by ID).
type match struct {
	image *storage.Image
	name  reference.Named
}

// lookup finds a stored image by ID, ID prefix, name (tag) or digest
// reference; short names resolve like registries.conf says. It returns
// ErrNotFound or ErrInvalidReference.
func (s *Service) lookup(ref string) (match, error) {
	if strings.TrimSpace(ref) == "" {
		return match{}, fmt.Errorf("%w: empty image name", ErrInvalidReference)
	}
	if idPattern.MatchString(ref) {
		if img, err := s.store.Image(strings.TrimPrefix(ref, "sha256:")); err == nil {
			return match{image: img}, nil
		}
	}
	names, err := s.localNames(ref)
	if err != nil {
		return match{}, err
	}
	for _, named := range names {
		if img := s.imageByName(named); img != nil {
			return match{image: img, name: named}, nil
		}
	}
	return match{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// localNames lists the fully qualified names ref may be stored under.
func (s *Service) localNames(ref string) ([]reference.Named, error) {
	st := s.settings.Load()
	sys := st.systemContext()
	if strings.Contains(ref, ":") && !shortnames.IsShortName(ref) {
		if targets, err := st.pullTargets(sys, ref); err == nil || !errors.Is(err, ErrInvalidReference) {
			return targetNames(targets), err
		}
	}
	if err := checkTransport(ref); err != nil {
		return nil, err
	}
	names, err := shortnames.ResolveLocally(sys, ref)
	if err != nil {
		return nil, invalidRef(ref, err)
	}
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		names = append(names, reference.TagNameOnly(named))
	}
	return names, nil
}

// targetNames returns the stored names of pull targets.
func targetNames(targets []pullTarget) []reference.Named {
	names := make([]reference.Named, 0, len(targets))
	for _, t := range targets {
		names = append(names, t.name)
	}
	return names
}

// imageByName returns the image stored under a tagged name, or the image
// with a digest reference's digest in the same repository.
func (s *Service) imageByName(named reference.Named) *storage.Image {
	digested, ok := named.(reference.Digested)
	if !ok {
		img, err := s.store.Image(named.String())
		if err != nil {
			return nil
		}
		return img
	}
	imgs, err := s.store.ImagesByDigest(digested.Digest())
	if err != nil {
		return nil
	}
	for _, img := range imgs {
		if hasRepo(img, named.Name()) {
			return img
		}
	}
	return nil
}

// hasRepo reports whether any name of img is in repository repo.
func hasRepo(img *storage.Image, repo string) bool {
	for _, n := range img.Names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil && named.Name() == repo {
			return true
		}
	}
	return false
}
