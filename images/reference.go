package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.podman.io/image/v5/docker"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// Transport prefixes accepted by Pull besides plain registry names.
const (
	prefixDocker        = "docker://"
	prefixOCIArchive    = "oci-archive:"
	prefixDockerArchive = "docker-archive:"
)

// unsupportedTransports are go.podman.io/image transports Pull refuses.
var unsupportedTransports = []string{"dir:", "oci:", "containers-storage:", "docker-daemon:", "ostree:", "sif:", "tarball:"}

// pullTarget is one concrete source a pull may copy from.
type pullTarget struct {
	src  types.ImageReference
	name reference.Named // name recorded in the store
	// origin names where the image comes from (registry host or archive
	// path) in logs and errors.
	origin string
}

// key identifies the pull for sharing between concurrent callers.
func (t pullTarget) key() string {
	return t.src.Transport().Name() + ":" + t.src.StringWithinTransport()
}

// fromRegistry reports whether the source is a registry (not an archive).
func (t pullTarget) fromRegistry() bool {
	return t.src.Transport().Name() == docker.Transport.Name()
}

// invalidRef wraps a parse error with ErrInvalidReference naming ref.
func invalidRef(ref string, err error) error {
	return fmt.Errorf("%w %q: %w", ErrInvalidReference, ref, err)
}

// pullTargets resolves ref into the sources to try, in order.
func (st *settings) pullTargets(sys *types.SystemContext, ref string) ([]pullTarget, error) {
	switch {
	case strings.TrimSpace(ref) == "":
		return nil, fmt.Errorf("%w: empty image name", ErrInvalidReference)
	case strings.HasPrefix(ref, prefixOCIArchive):
		return archiveTarget(ref, ociarchive.ParseReference, ociArchiveName)
	case strings.HasPrefix(ref, prefixDockerArchive):
		return archiveTarget(ref, dockerarchive.ParseReference, nil)
	case strings.HasPrefix(ref, prefixDocker):
		named, err := reference.ParseNormalizedNamed(strings.TrimPrefix(ref, prefixDocker))
		if err != nil {
			return nil, invalidRef(ref, err)
		}
		return dockerTargets(ref, []reference.Named{reference.TagNameOnly(named)})
	}
	if err := checkTransport(ref); err != nil {
		return nil, err
	}
	names, err := st.registryCandidates(sys, ref)
	if err != nil {
		return nil, err
	}
	return dockerTargets(ref, names)
}

// checkTransport refuses transport prefixes other than the supported ones.
func checkTransport(ref string) error {
	for _, p := range unsupportedTransports {
		if strings.HasPrefix(ref, p) {
			return fmt.Errorf("%w %q: transport %s is not supported", ErrInvalidReference, ref, strings.TrimSuffix(p, ":"))
		}
	}
	return nil
}

// dockerTargets builds docker:// sources for fully qualified names.
func dockerTargets(ref string, names []reference.Named) ([]pullTarget, error) {
	targets := make([]pullTarget, 0, len(names))
	for _, named := range names {
		named = dropTagIfDigested(named)
		src, err := docker.NewReference(named)
		if err != nil {
			return nil, invalidRef(ref, err)
		}
		targets = append(targets, pullTarget{src: src, name: named, origin: reference.Domain(named)})
	}
	return targets, nil
}

// archiveTarget parses an archive reference; nameOf, when set, derives
// the stored name from the text after the transport prefix.
func archiveTarget(ref string, parse func(string) (types.ImageReference, error), nameOf func(string) reference.Named) ([]pullTarget, error) {
	prefix, within, _ := strings.Cut(ref, ":")
	if err := checkArchivePath(ref, strings.SplitN(within, ":", 2)[0]); err != nil {
		return nil, err
	}
	src, err := parse(within)
	if err != nil {
		return nil, invalidRef(ref, err)
	}
	name := src.DockerReference()
	if name == nil && nameOf != nil {
		name = nameOf(within)
	}
	if name == nil {
		name = archiveFileName(within)
	}
	name = reference.TagNameOnly(name)
	return []pullTarget{{src: src, name: name, origin: prefix + ":" + strings.SplitN(within, ":", 2)[0]}}, nil
}

// checkArchivePath requires an absolute path to an existing file.
func checkArchivePath(ref, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w %q: archive path must be absolute", ErrInvalidReference, ref)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: archive %s does not exist", ErrNotFound, path)
	}
	if err != nil {
		return fmt.Errorf("reading archive %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w %q: %s is a directory", ErrInvalidReference, ref, path)
	}
	return nil
}

// archiveFileName names an archive that carries no image name after its
// file: "localhost/<file name without extension>:latest".
func archiveFileName(within string) reference.Named {
	file := strings.SplitN(within, ":", 2)[0]
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	clean := strings.Trim(nonNameChars.ReplaceAllString(strings.ToLower(base), "-"), "-._")
	named, err := reference.ParseNormalizedNamed("localhost/" + clean)
	if clean == "" || err != nil {
		named, _ = reference.ParseNormalizedNamed("localhost/archive")
	}
	return named
}

// nonNameChars matches characters not allowed in a repository path.
var nonNameChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// ociArchiveName reads "path:name" and returns name when it is a valid
// image reference (normalized like a registry name), else nil.
func ociArchiveName(within string) reference.Named {
	_, image, ok := strings.Cut(within, ":")
	if !ok || image == "" {
		return nil
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil
	}
	return named
}

// registryCandidates resolves a registry name to fully qualified names.
// Short names go through registries.conf aliases and unqualified-search
// registries without ever prompting; in enforcing mode an ambiguous short
// name is an invalid reference.
func (st *settings) registryCandidates(sys *types.SystemContext, ref string) ([]reference.Named, error) {
	if !shortnames.IsShortName(ref) {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return nil, invalidRef(ref, err)
		}
		return []reference.Named{reference.TagNameOnly(named)}, nil
	}
	short, err := reference.Parse(ref)
	if err != nil {
		return nil, invalidRef(ref, err)
	}
	named, ok := short.(reference.Named)
	if !ok {
		return nil, invalidRef(ref, errors.New("not a named reference"))
	}
	return st.expandShortName(sys, ref, named)
}

// expandShortName applies an alias or the unqualified-search registries.
func (st *settings) expandShortName(sys *types.SystemContext, ref string, short reference.Named) ([]reference.Named, error) {
	repo := reference.TrimNamed(short).String()
	alias, _, err := sysregistriesv2.ResolveShortNameAlias(sys, repo)
	if err != nil {
		return nil, fmt.Errorf("resolving short name %q: %w", ref, err)
	}
	if alias != nil {
		named, err := withTagOrDigest(alias, short)
		if err != nil {
			return nil, invalidRef(ref, err)
		}
		return []reference.Named{named}, nil
	}
	return st.searchRegistries(sys, ref, short)
}

// searchRegistries qualifies a short name with each unqualified-search
// registry.
func (st *settings) searchRegistries(sys *types.SystemContext, ref string, short reference.Named) ([]reference.Named, error) {
	registries, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil {
		return nil, fmt.Errorf("reading unqualified-search registries: %w", err)
	}
	if len(registries) == 0 {
		return nil, fmt.Errorf("%w %q: short name has no alias and no unqualified-search registries are configured", ErrInvalidReference, ref)
	}
	mode, err := sysregistriesv2.GetShortNameMode(sys)
	if err != nil {
		return nil, fmt.Errorf("reading short-name mode: %w", err)
	}
	if mode == types.ShortNameModeEnforcing && len(registries) > 1 {
		return nil, fmt.Errorf("%w %q: short name is ambiguous (search registries %s) in enforcing mode", ErrInvalidReference, ref, strings.Join(registries, ", "))
	}
	var names []reference.Named
	for _, reg := range registries {
		named, err := reference.ParseNormalizedNamed(reg + "/" + short.String())
		if err != nil {
			return nil, invalidRef(ref, err)
		}
		names = append(names, reference.TagNameOnly(named))
	}
	return names, nil
}

// withTagOrDigest copies the tag and digest of from onto repo and adds
// ":latest" when from has neither.
func withTagOrDigest(repo reference.Named, from reference.Named) (reference.Named, error) {
	named := reference.TrimNamed(repo)
	var err error
	if tagged, ok := from.(reference.NamedTagged); ok {
		if named, err = reference.WithTag(named, tagged.Tag()); err != nil {
			return nil, err
		}
	}
	if digested, ok := from.(reference.Digested); ok {
		if named, err = reference.WithDigest(named, digested.Digest()); err != nil {
			return nil, err
		}
	}
	return reference.TagNameOnly(named), nil
}

// dropTagIfDigested removes the tag from a reference that also carries a
// digest: the digest alone identifies the image and the docker transport
// refuses references with both.
func dropTagIfDigested(named reference.Named) reference.Named {
	digested, ok := named.(reference.Digested)
	if _, tagged := named.(reference.NamedTagged); !ok || !tagged {
		return named
	}
	out, err := reference.WithDigest(reference.TrimNamed(named), digested.Digest())
	if err != nil {
		return named
	}
	return out
}
