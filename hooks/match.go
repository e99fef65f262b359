package hooks

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Matches reports whether every condition set in the hook's when holds for
// a container with spec sp, annotations and (when hasBindMounts) bind
// mounts the caller asked for.
func (h *Hook) Matches(sp *specs.Spec, annotations map[string]string, hasBindMounts bool) bool {
	w := h.Definition.When
	if w.Always != nil && !*w.Always {
		return false
	}
	if w.HasBindMounts != nil && !(*w.HasBindMounts && hasBindMounts) {
		return false
	}
	if !h.annotationsMatch(annotations) {
		return false
	}
	return len(h.commands) == 0 || h.commandMatches(sp)
}

// annotationsMatch holds when each key/value pattern pair matches some
// annotation.
func (h *Hook) annotationsMatch(annotations map[string]string) bool {
	for _, p := range h.annotations {
		if !anyAnnotation(p, annotations) {
			return false
		}
	}
	return true
}

func anyAnnotation(p annotationPattern, annotations map[string]string) bool {
	for k, v := range annotations {
		if p.key.MatchString(k) && p.value.MatchString(v) {
			return true
		}
	}
	return false
}

// commandMatches holds when a pattern matches process.args[0] or its base
// name. A spec without a command matches no pattern.
func (h *Hook) commandMatches(sp *specs.Spec) bool {
	if sp.Process == nil || len(sp.Process.Args) == 0 {
		return false
	}
	cmd := sp.Process.Args[0]
	base := filepath.Base(cmd)
	for _, re := range h.commands {
		if re.MatchString(cmd) || re.MatchString(base) {
			return true
		}
	}
	return false
}
