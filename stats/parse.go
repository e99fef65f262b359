package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// unlimited is the smallest value treated as "no limit": cgroup v1 reports
// an unset memory limit as a page-rounded maximum int64.
const unlimited = 1 << 62

// ParseKeyValues parses "key value" lines (memory.stat, cpu.stat,
// memory.events); lines that do not parse are skipped.
func ParseKeyValues(data string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(data, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out
}

// ParsePSI parses a pressure file: lines
// "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" (total in
// microseconds, returned in nanoseconds). The "full" line is optional.
func ParsePSI(data string) (*PSI, error) {
	p := &PSI{}
	var seen bool
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var into *PSIData
		switch fields[0] {
		case "some":
			into = &p.Some
		case "full":
			into = &p.Full
		default:
			return nil, fmt.Errorf("pressure line %q: unknown kind", line)
		}
		if err := parsePSILine(fields[1:], into); err != nil {
			return nil, fmt.Errorf("pressure line %q: %w", line, err)
		}
		seen = true
	}
	if !seen {
		return nil, errors.New("pressure file is empty")
	}
	return p, nil
}

func parsePSILine(fields []string, into *PSIData) error {
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("field %q has no value", f)
		}
		var err error
		switch k {
		case "avg10":
			into.Avg10, err = strconv.ParseFloat(v, 64)
		case "avg60":
			into.Avg60, err = strconv.ParseFloat(v, 64)
		case "avg300":
			into.Avg300, err = strconv.ParseFloat(v, 64)
		case "total":
			var us uint64
			us, err = strconv.ParseUint(v, 10, 64)
			into.Total = us * 1000
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", f, err)
		}
	}
	return nil
}

// readUint reads a file holding one number; "max" is 0 (no limit).
func readUint(path string) (uint64, error) {
	data, err := readFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return n, nil
}

// readOptionalUint is readUint where a missing file is 0 and ok false.
func readOptionalUint(path string) (n uint64, ok bool, err error) {
	n, err = readUint(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	return n, err == nil, err
}

// readKeyValues reads a "key value" file; a missing one is empty.
func readKeyValues(path string) (map[string]uint64, error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseKeyValues(string(data)), nil
}

// limit turns a read limit into 0 when it means "unlimited".
func limit(n uint64) uint64 {
	if n >= unlimited {
		return 0
	}
	return n
}

// sub is a-b floored at 0.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
