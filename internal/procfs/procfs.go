// Package procfs answers the few questions the daemon asks /proc about
// other processes when something of its own is held by one of them.
package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Holders returns the processes, this one excluded, that have a descriptor
// whose link target (a path, or "socket:[inode]") is in targets. When
// consider is set, only the descriptors of the processes it accepts are
// read.
func Holders(targets map[string]bool, consider func(pid int) bool) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		pid, err := strconv.Atoi(filepath.Base(proc))
		if err != nil || pid == os.Getpid() || (consider != nil && !consider(pid)) {
			continue
		}
		if hasOpen(proc, targets) {
			out = append(out, pid)
		}
	}
	return out
}

func hasOpen(proc string, targets map[string]bool) bool {
	fds, _ := filepath.Glob(proc + "/fd/*")
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && targets[target] {
			return true
		}
	}
	return false
}

// SameExecutable reports whether process pid runs the executable this
// process runs.
func SameExecutable(pid int) bool {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == self
}

// Describe names a process for an error message: "pid (comm, parent
// ppid)", or just the pid when it is gone.
func Describe(pid int) string {
	st, ok := readStat(pid)
	if !ok {
		return strconv.Itoa(pid)
	}
	return fmt.Sprintf("%d (%s, parent %s)", pid, st.comm, st.ppid)
}

// Exiting reports whether process pid is gone or a zombie.
func Exiting(pid int) bool {
	st, ok := readStat(pid)
	return !ok || st.state == "Z" || st.state == "X"
}

// stat is what the daemon reads of /proc/<pid>/stat.
type stat struct{ comm, state, ppid string }

// readStat parses /proc/<pid>/stat; the command name may hold spaces and
// parentheses, so it is taken up to the last ')'.
func readStat(pid int) (stat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	rest := strings.Fields(s[closing+1:])
	if open < 0 || closing < open || len(rest) < 2 {
		return stat{}, false
	}
	return stat{comm: s[open+1 : closing], state: rest[0], ppid: rest[1]}, true
}
