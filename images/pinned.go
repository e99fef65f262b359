package images

import (
	"fmt"
	"regexp"
	"strings"

	"go.podman.io/image/v5/docker/reference"
)

// pinSet matches image names against the pinned patterns.
type pinSet struct {
	patterns []*regexp.Regexp
}

// newPinSet compiles the configured patterns plus the pause image. A
// pattern without "*" is normalized like an image name ("busybox" becomes
// "docker.io/library/busybox:latest"); "*" matches any run of characters.
func newPinSet(patterns []string, pauseImage string) (*pinSet, error) {
	set := &pinSet{}
	for _, p := range append([]string{pauseImage}, patterns...) {
		if p == "" {
			continue
		}
		re, err := compilePin(p)
		if err != nil {
			return nil, err
		}
		set.patterns = append(set.patterns, re)
	}
	return set, nil
}

// compilePin turns one pattern into an anchored regular expression.
func compilePin(pattern string) (*regexp.Regexp, error) {
	if !strings.Contains(pattern, "*") {
		if named, err := reference.ParseNormalizedNamed(pattern); err == nil {
			pattern = reference.TagNameOnly(named).String()
		}
	}
	parts := strings.Split(pattern, "*")
	for i, part := range parts {
		parts[i] = regexp.QuoteMeta(part)
	}
	re, err := regexp.Compile("^" + strings.Join(parts, ".*") + "$")
	if err != nil {
		return nil, fmt.Errorf("compiling pinned image pattern %q: %w", pattern, err)
	}
	return re, nil
}

// matches reports whether name matches any pinned pattern.
func (p *pinSet) matches(name string) bool {
	for _, re := range p.patterns {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// matchesAny reports whether any of names is pinned.
func (p *pinSet) matchesAny(names []string) bool {
	for _, n := range names {
		if p.matches(n) {
			return true
		}
	}
	return false
}
