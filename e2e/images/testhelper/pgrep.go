package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// process is what pgrep knows about one /proc entry.
type process struct {
	pid, ppid, session int
	comm, cmdline      string
	startTicks         uint64
}

// pgrepQuery is the parsed pgrep command line.
type pgrepQuery struct {
	full, exact, long, invert, newest, oldest bool
	parent, session                           int // -1 when not given
	pattern                                   *regexp.Regexp
}

// runPgrep prints the pids of matching processes (busybox option subset
// -f -x -l -v -n -o -P PPID -s SID) and exits 1 when none matched.
func runPgrep(argv []string) int {
	q, err := parsePgrep(argv[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\nUsage: pgrep [-flnovx] [-s SID|-P PPID|PATTERN]\n", err)
		return 2
	}
	found := q.filter(listProcesses())
	for _, p := range found {
		fmt.Println(q.format(p))
	}
	if len(found) == 0 {
		return 1
	}
	return 0
}

func parsePgrep(args []string) (pgrepQuery, error) {
	q := pgrepQuery{parent: -1, session: -1}
	var pattern string
	havePattern := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if havePattern || !strings.HasPrefix(arg, "-") || arg == "-" {
			if havePattern {
				return q, fmt.Errorf("only one pattern can be given")
			}
			pattern, havePattern = arg, true
			continue
		}
		used, err := q.applyFlags(arg[1:], args[i+1:])
		if err != nil {
			return q, err
		}
		i += used
	}
	if !havePattern && q.parent < 0 && q.session < 0 {
		return q, fmt.Errorf("no matching criteria given")
	}
	if havePattern {
		return q, q.compile(pattern)
	}
	return q, nil
}

// applyFlags applies one cluster of single-letter flags and reports how many
// following arguments it consumed as option values.
func (q *pgrepQuery) applyFlags(cluster string, rest []string) (int, error) {
	bools := map[byte]*bool{'f': &q.full, 'x': &q.exact, 'l': &q.long, 'v': &q.invert, 'n': &q.newest, 'o': &q.oldest}
	for j := 0; j < len(cluster); j++ {
		if b, ok := bools[cluster[j]]; ok {
			*b = true
			continue
		}
		if cluster[j] != 'P' && cluster[j] != 's' {
			return 0, fmt.Errorf("invalid option -- '%c'", cluster[j])
		}
		value, used := cluster[j+1:], 0
		if value == "" && len(rest) > 0 {
			value, used = rest[0], 1
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			return 0, fmt.Errorf("bad number %q", value)
		}
		if cluster[j] == 'P' {
			q.parent = n
		} else {
			q.session = sessionOrSelf(n)
		}
		return used, nil
	}
	return 0, nil
}

func sessionOrSelf(sid int) int {
	if sid != 0 {
		return sid
	}
	own, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	return int(own)
}

func (q *pgrepQuery) compile(pattern string) error {
	if q.exact {
		pattern = "^(?:" + pattern + ")$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("bad regex %q", pattern)
	}
	q.pattern = re
	return nil
}

// filter keeps the processes that match, honouring -v, -n and -o.
func (q pgrepQuery) filter(all []process) []process {
	var out []process
	self := os.Getpid()
	for _, p := range all {
		if p.pid != self && q.matches(p) != q.invert {
			out = append(out, p)
		}
	}
	if len(out) == 0 || (!q.newest && !q.oldest) {
		return out
	}
	pick := out[0]
	for _, p := range out[1:] {
		if (q.newest && p.startTicks >= pick.startTicks) || (q.oldest && p.startTicks < pick.startTicks) {
			pick = p
		}
	}
	return []process{pick}
}

func (q pgrepQuery) matches(p process) bool {
	if q.parent >= 0 && p.ppid != q.parent {
		return false
	}
	if q.session >= 0 && p.session != q.session {
		return false
	}
	return q.pattern == nil || q.pattern.MatchString(q.subject(p))
}

func (q pgrepQuery) subject(p process) string {
	if q.full && p.cmdline != "" {
		return p.cmdline
	}
	return p.comm
}

func (q pgrepQuery) format(p process) string {
	if q.long {
		return strconv.Itoa(p.pid) + " " + q.subject(p)
	}
	return strconv.Itoa(p.pid)
}

// listProcesses reads every readable /proc/<pid>, sorted by pid.
func listProcesses() []process {
	entries, _ := os.ReadDir("/proc")
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProcess(pid); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

func readProcess(pid int) (process, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return process{}, false
	}
	open, close := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
	if open < 0 || close < open {
		return process{}, false
	}
	p := process{pid: pid, comm: string(stat[open+1 : close])}
	// Fields after ")": state ppid pgrp session ... starttime is the 20th.
	fields := strings.Fields(string(stat[close+1:]))
	if len(fields) > 19 {
		p.ppid, _ = strconv.Atoi(fields[1])
		p.session, _ = strconv.Atoi(fields[3])
		p.startTicks, _ = strconv.ParseUint(fields[19], 10, 64)
	}
	if raw, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.cmdline = strings.TrimRight(strings.ReplaceAll(string(raw), "\x00", " "), " ")
	}
	return p, true
}
