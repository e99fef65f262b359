package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Source says where the value of a key came from, so that an error can
// point at it.
type Source struct {
	File string
	Line int
	Env  string
	Flag string
}

func (s Source) String() string {
	switch {
	case s.Flag != "":
		return "flag --" + s.Flag
	case s.Env != "":
		return "environment variable " + s.Env
	case s.File != "":
		return fmt.Sprintf("file %s line %d", s.File, s.Line)
	}
	return "default"
}

// Error is a bad or unknown setting. It names the key, where it was set
// and what is wrong.
type Error struct {
	Key     string
	Source  Source
	Problem string
}

func (e *Error) Error() string {
	return fmt.Sprintf("config key %q (%s): %s", e.Key, e.Source, e.Problem)
}

// Loader reads the configuration files and the environment.
type Loader struct {
	File     string // main file
	Required bool   // the main file must exist (it was named explicitly)
	Dir      string // drop-in folder; its *.conf files are read in name order
	// Env looks up environment variables; nil means the process
	// environment.
	Env func(string) (string, bool)
}

// Loaded is a configuration with the source of each key that was set.
type Loaded struct {
	Config  Config
	Sources map[string]Source
}

// Load merges defaults, the main file, the drop-ins and the environment,
// in that order. Flags are applied afterwards with Set, then Validate.
func (l Loader) Load() (*Loaded, error) {
	ld := &Loaded{Config: Default(), Sources: map[string]Source{}}
	if err := ld.readFile(l.File, l.Required); err != nil {
		return nil, err
	}
	dropIns, err := listDropIns(l.Dir)
	if err != nil {
		return nil, err
	}
	for _, f := range dropIns {
		if err := ld.readFile(f, true); err != nil {
			return nil, err
		}
	}
	if err := ld.readEnv(l.Env); err != nil {
		return nil, err
	}
	emptyListsToNil(&ld.Config)
	return ld, nil
}

// emptyListsToNil makes "key = []" and an unset list the same value, so
// that a rendered config reads back equal.
func emptyListsToNil(c *Config) {
	for _, f := range Fields(c) {
		if l, ok := f.Value().([]string); ok && len(l) == 0 {
			f.Set([]string(nil))
		}
	}
}

func listDropIns(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, fmt.Errorf("listing drop-in folder %s: %w", dir, err)
	}
	sort.Strings(files)
	return files, nil
}

func (ld *Loaded) readFile(path string, required bool) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	if err := decodeStrict(data, &ld.Config); err != nil {
		return fileError(path, err)
	}
	for key, line := range keyLines(data) {
		ld.Sources[key] = Source{File: path, Line: line}
	}
	return nil
}

func decodeStrict(data []byte, c *Config) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(c)
}

// fileError turns a decoder error into an Error that names the key and line.
func fileError(path string, err error) error {
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) && len(missing.Errors) > 0 {
		first := missing.Errors[0]
		row, _ := first.Position()
		return &Error{Key: strings.Join(first.Key(), "."),
			Source: Source{File: path, Line: row}, Problem: "unknown key"}
	}
	var decErr *toml.DecodeError
	if errors.As(err, &decErr) {
		row, _ := decErr.Position()
		return &Error{Key: strings.Join(decErr.Key(), "."),
			Source: Source{File: path, Line: row}, Problem: decErr.Error()}
	}
	return fmt.Errorf("config file %s: %w", path, err)
}

// keyLines maps each dotted key set in a TOML document to its line.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table, _ = keyParts(&p, e)
		case unstable.KeyValue:
			parts, line := keyParts(&p, e)
			lines[strings.Join(append(append([]string{}, table...), parts...), ".")] = line
		}
	}
	return lines
}

func keyParts(p *unstable.Parser, e *unstable.Node) ([]string, int) {
	var parts []string
	line := 0
	it := e.Key()
	for it.Next() {
		n := it.Node()
		if line == 0 && n.Raw.Length > 0 {
			line = p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

func (ld *Loaded) readEnv(lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	for _, f := range Fields(&ld.Config) {
		name := f.Env()
		raw, ok := "", false
		if name != "" {
			raw, ok = lookup(name)
		}
		if !ok {
			continue
		}
		src := Source{Env: name}
		if err := f.SetString(raw); err != nil {
			return &Error{Key: f.Key, Source: src, Problem: err.Error()}
		}
		ld.Sources[f.Key] = src
	}
	return nil
}

// SetFlag stores a value given on the command line for the field whose
// flag is name.
func (ld *Loaded) SetFlag(name string, v any) error {
	for _, f := range Fields(&ld.Config) {
		if f.Flag == name {
			f.Set(v)
			ld.Sources[f.Key] = Source{Flag: name}
			return nil
		}
	}
	return fmt.Errorf("no setting has the flag --%s", name)
}

// Validate checks the merged configuration and returns the first problem
// as an *Error naming the key and where it was set.
func (ld *Loaded) Validate() error {
	ps := ld.Config.problems()
	if len(ps) == 0 {
		return nil
	}
	return &Error{Key: ps[0].key, Source: ld.Sources[ps[0].key], Problem: ps[0].text}
}
