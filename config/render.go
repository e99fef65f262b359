package config

import (
	"bufio"
	"fmt"
	"io"
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
		line, err := renderValue(f)
		if err != nil {
			return fmt.Errorf("rendering %s: %w", f.Key, err)
		}
		fmt.Fprintf(bw, "\n# %s.\n", capitalize(f.Usage))
		if f.Flag != "" {
			fmt.Fprintf(bw, "# Flag --%s, environment %s.\n", f.Flag, f.Env())
		}
		bw.WriteString(line)
	}
	return bw.Flush()
}

func renderValue(f Field) (string, error) {
	name := f.Key[strings.LastIndex(f.Key, ".")+1:]
	b, err := toml.Marshal(map[string]any{name: f.Value()})
	return string(b), err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
