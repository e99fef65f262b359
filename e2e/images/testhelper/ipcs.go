package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ipcFacility describes one System V IPC kind as listed in /proc/sysvipc.
type ipcFacility struct {
	flag    string
	file    string
	title   string
	columns []string // output headings after key
	fields  []string // /proc/sysvipc field for each heading ("" = owner name)
}

var ipcFacilities = []ipcFacility{
	{"-m", "shm", "Shared Memory Segments",
		[]string{"shmid", "owner", "perms", "bytes", "nattch"}, []string{"shmid", "", "perms", "size", "nattch"}},
	{"-s", "sem", "Semaphore Arrays",
		[]string{"semid", "owner", "perms", "nsems"}, []string{"semid", "", "perms", "nsems"}},
	{"-q", "msg", "Message Queues",
		[]string{"msqid", "owner", "perms", "used-bytes", "messages"}, []string{"msqid", "", "perms", "cbytes", "qnum"}},
}

// runIpcs lists System V IPC objects visible in this IPC namespace
// (options -m, -s, -q, -a; none means all).
func runIpcs(argv []string) int {
	wanted := map[string]bool{}
	for _, arg := range argv[1:] {
		switch arg {
		case "-m", "-s", "-q":
			wanted[arg] = true
		case "-a":
			wanted["-m"], wanted["-s"], wanted["-q"] = true, true, true
		default:
			fmt.Fprintf(os.Stderr, "ipcs: unsupported option %s (supported: -m -s -q -a)\n", arg)
			return 1
		}
	}
	users := loadUserNames()
	for _, f := range ipcFacilities {
		if len(wanted) == 0 || wanted[f.flag] {
			f.print(users)
		}
	}
	return 0
}

func (f ipcFacility) print(users map[string]string) {
	fmt.Printf("\n------ %s --------\n%-10s", f.title, "key")
	for _, c := range f.columns {
		fmt.Printf(" %-10s", c)
	}
	fmt.Println()
	for _, row := range readSysvIPC(f.file) {
		fmt.Printf("0x%08x", keyOf(row["key"]))
		for _, field := range f.fields {
			fmt.Printf(" %-10s", f.value(row, field, users))
		}
		fmt.Println()
	}
	fmt.Println()
}

func (f ipcFacility) value(row map[string]string, field string, users map[string]string) string {
	switch field {
	case "":
		if name, ok := users[row["uid"]]; ok {
			return name
		}
		return row["uid"]
	case "perms":
		mode, err := strconv.ParseUint(row["perms"], 8, 32)
		if err != nil {
			return row["perms"]
		}
		return strconv.FormatUint(mode&0o777, 8)
	}
	return row[field]
}

func keyOf(s string) uint32 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return uint32(n)
}

// readSysvIPC parses /proc/sysvipc/<kind> into one map per object.
func readSysvIPC(kind string) []map[string]string {
	f, err := os.Open("/proc/sysvipc/" + kind)
	if err != nil {
		return nil
	}
	defer f.Close()
	var header []string
	var rows []map[string]string
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		fields := strings.Fields(scan.Text())
		if header == nil {
			header = fields
			continue
		}
		row := map[string]string{}
		for i := 0; i < len(header) && i < len(fields); i++ {
			row[header[i]] = fields[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// loadUserNames maps uid to user name from /etc/passwd.
func loadUserNames() map[string]string {
	names := map[string]string{}
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return names
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.Split(line, ":")
		if len(parts) > 2 {
			names[parts[2]] = parts[0]
		}
	}
	return names
}
