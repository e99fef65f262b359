package config

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Render writes c as a commented TOML file. Reading the output back with a
// Loader yields c again.
func Render(c *Config, w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Arbor configuration. Precedence: flag > ARBOR_* environment > drop-in files > this file > default.")
	section := ""
	for _, f := range Fields(c) {
		if f.Section != section {
			section = f.Section
			fmt.Fprintf(bw, "\n[%s]\n", section)
		}
		fmt.Fprintf(bw, "\n# %s.\n", capitalize(f.Usage))
		if f.Flag != "" {
			fmt.Fprintf(bw, "# Flag --%s, environment %s.\n", f.Flag, f.Env())
		}
		var err error
		if reflect.ValueOf(f.Value()).Kind() == reflect.Map {
			err = renderTables(bw, f)
		} else {
			err = renderValue(bw, f)
		}
		if err != nil {
			return fmt.Errorf("rendering %s: %w", f.Key, err)
		}
	}
	return bw.Flush()
}

func renderValue(w io.Writer, f Field) error {
	name := f.Key[strings.LastIndex(f.Key, ".")+1:]
	b, err := toml.Marshal(map[string]any{name: f.Value()})
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

// renderTables writes a map of structs as one [key.NAME] table per entry.
// Such a field must come last in its section: what follows a table header
// belongs to the table.
func renderTables(w io.Writer, f Field) error {
	m := reflect.ValueOf(f.Value())
	keys := m.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		b, err := toml.Marshal(m.MapIndex(k).Interface())
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "[%s.%s]\n%s", f.Key, k.String(), b)
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
