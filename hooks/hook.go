// Package hooks loads OCI hook definitions and injects them into container
// specs. A definition is a JSON file in the 1.0.0 schema that CRI-O and
// podman read (oci-hooks(5)):
//
//	{"version": "1.0.0",
//	 "hook": {"path": "/abs/bin", "args": [...], "env": [...], "timeout": 5},
//	 "when": {"always": true, "annotations": {"key-regex": "value-regex"},
//	          "commands": ["regex"], "hasBindMounts": true},
//	 "stages": ["prestart", "createRuntime", "createContainer",
//	            "startContainer", "poststart", "poststop"]}
//
// Files are read from a list of folders; a file in a later folder masks the
// file of the same name in an earlier one. A file that fails validation is
// rejected with an error naming its path and skipped, as if it were absent;
// the others still load. Matching hooks are injected in the order of their
// lower-cased file names.
package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SchemaVersion is the only hook schema version accepted.
const SchemaVersion = "1.0.0"

// DefaultDirs are the hook folders CRI-O and podman read, in increasing
// precedence.
var DefaultDirs = []string{"/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"}

// stageLists maps each stage name to its list in specs.Hooks.
var stageLists = map[string]func(*specs.Hooks) *[]specs.Hook{
	"prestart":        func(h *specs.Hooks) *[]specs.Hook { return &h.Prestart }, // deprecated in the spec; runc still runs it
	"createRuntime":   func(h *specs.Hooks) *[]specs.Hook { return &h.CreateRuntime },
	"createContainer": func(h *specs.Hooks) *[]specs.Hook { return &h.CreateContainer },
	"startContainer":  func(h *specs.Hooks) *[]specs.Hook { return &h.StartContainer },
	"poststart":       func(h *specs.Hooks) *[]specs.Hook { return &h.Poststart },
	"poststop":        func(h *specs.Hooks) *[]specs.Hook { return &h.Poststop },
}

// When holds the injection conditions of a hook. Every condition that is
// set must match; at least one must be set.
type When struct {
	// Always, when set, matches only if true.
	Always *bool `json:"always,omitempty"`
	// Annotations match if, for every key/value pattern pair, some
	// annotation's key and value match the patterns.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Commands match if any pattern matches process.args[0] or its base
	// name.
	Commands []string `json:"commands,omitempty"`
	// HasBindMounts, when set, matches only if true and the caller asked
	// for bind mounts (false never matches, as in podman).
	HasBindMounts *bool `json:"hasBindMounts,omitempty"`
}

// Definition is the content of one hook file.
type Definition struct {
	Version string     `json:"version"`
	Hook    specs.Hook `json:"hook"`
	When    When       `json:"when"`
	Stages  []string   `json:"stages"`
}

// Hook is one validated hook file with its patterns compiled. It is never
// modified after Read returns it.
type Hook struct {
	// Name is the file name: the key for masking and the injection order.
	Name string
	// Source is the path the hook was read from.
	Source string
	// Definition is the parsed file.
	Definition Definition

	annotations []annotationPattern
	commands    []*regexp.Regexp
}

type annotationPattern struct{ key, value *regexp.Regexp }

// FileError is why the hook file at Path was rejected.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("hook file %s: %v", e.Path, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }

// Read reads and validates the hook file at path. The error is a
// *FileError naming path.
func Read(path string) (*Hook, error) {
	h, ferr := readHook(path)
	if ferr != nil {
		return nil, ferr
	}
	return h, nil
}

func readHook(path string) (*Hook, *FileError) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	h, err := parse(path, data)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return h, nil
}

// Parse validates the hook file content data read from path. The error is
// a *FileError naming path and what is wrong.
func Parse(path string, data []byte) (*Hook, error) {
	h, err := parse(path, data)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return h, nil
}

func parse(path string, data []byte) (*Hook, error) {
	var def Definition
	if err := json.Unmarshal(data, &def); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	if def.Version != SchemaVersion {
		return nil, fmt.Errorf("unknown version %q (want %q)", def.Version, SchemaVersion)
	}
	if err := checkHook(def.Hook); err != nil {
		return nil, err
	}
	if err := checkStages(def.Stages); err != nil {
		return nil, err
	}
	h := &Hook{Name: filepath.Base(path), Source: path, Definition: def}
	if err := h.compile(); err != nil {
		return nil, err
	}
	return h, nil
}

// checkHook validates the runtime-spec hook entry: an absolute path to an
// existing file and a positive timeout.
func checkHook(h specs.Hook) error {
	if h.Path == "" {
		return errors.New("missing hook.path")
	}
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("hook.path %q is not absolute", h.Path)
	}
	st, err := os.Stat(h.Path)
	if err != nil {
		return fmt.Errorf("hook.path: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("hook.path %q is a folder", h.Path)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("hook.timeout must be positive, got %d", *h.Timeout)
	}
	return nil
}

func checkStages(stages []string) error {
	if len(stages) == 0 {
		return errors.New("missing stages")
	}
	seen := map[string]bool{}
	for _, s := range stages {
		if _, ok := stageLists[s]; !ok {
			return fmt.Errorf("unknown stage %q", s)
		}
		if seen[s] {
			return fmt.Errorf("stage %q listed twice", s)
		}
		seen[s] = true
	}
	return nil
}

// compile checks that a condition is set and compiles its patterns.
func (h *Hook) compile() error {
	w := h.Definition.When
	if w.Always == nil && w.HasBindMounts == nil && len(w.Annotations) == 0 && len(w.Commands) == 0 {
		return errors.New("when: no condition set (always, annotations, commands or hasBindMounts)")
	}
	for k, v := range w.Annotations {
		kr, err := regexp.Compile(k)
		if err != nil {
			return fmt.Errorf("when.annotations key %q: %w", k, err)
		}
		vr, err := regexp.Compile(v)
		if err != nil {
			return fmt.Errorf("when.annotations value %q: %w", v, err)
		}
		h.annotations = append(h.annotations, annotationPattern{kr, vr})
	}
	for _, c := range w.Commands {
		cr, err := regexp.Compile(c)
		if err != nil {
			return fmt.Errorf("when.commands %q: %w", c, err)
		}
		h.commands = append(h.commands, cr)
	}
	return nil
}

// entry returns a copy of the runtime-spec hook that shares no memory
// with h.
func (h *Hook) entry() specs.Hook {
	e := h.Definition.Hook
	e.Args = append([]string(nil), e.Args...)
	e.Env = append([]string(nil), e.Env...)
	if e.Timeout != nil {
		t := *e.Timeout
		e.Timeout = &t
	}
	return e
}
