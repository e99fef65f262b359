package stats

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultProc is where procfs is mounted.
const DefaultProc = "/proc"

// files counts the open files of the processes in cgroup rel; nil when
// the process list or a process' descriptors cannot be read.
func (l Layout) files(rel string) *Files {
	dir := filepath.Join(l.Root, rel)
	if !l.V2 {
		dir = l.v1Dir("cpuacct", rel)
	}
	data, err := readFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	f, err := CountFiles(cmp.Or(l.Proc, DefaultProc), parsePids(string(data)))
	if err != nil {
		return nil
	}
	return &f
}

// parsePids parses a cgroup.procs file, one pid a line.
func parsePids(data string) []int {
	var pids []int
	for _, line := range strings.Fields(data) {
		if pid, err := strconv.Atoi(line); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// CountFiles counts the entries of proc/<pid>/fd of each pid, and among
// them the sockets (links to "socket:[inode]"). A process or descriptor
// that goes away during the count is skipped.
func CountFiles(proc string, pids []int) (Files, error) {
	var out Files
	for _, pid := range pids {
		dir := filepath.Join(proc, strconv.Itoa(pid), "fd")
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // exited
		}
		if err != nil {
			return Files{}, fmt.Errorf("listing open files of process %d: %w", pid, err)
		}
		for _, e := range entries {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue // closed meanwhile
			}
			if err != nil {
				return Files{}, fmt.Errorf("reading open file %s of process %d: %w", e.Name(), pid, err)
			}
			out.Descriptors++
			if strings.HasPrefix(target, "socket:") {
				out.Sockets++
			}
		}
	}
	return out, nil
}
