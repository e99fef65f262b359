package spec

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultPathEnv is the PATH set when neither the image nor the request sets one.
const DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultNofile is the RLIMIT_NOFILE containers get (as CRI-O does),
// lowered to the daemon's own hard limit when that is smaller.
const DefaultNofile uint64 = 1048576

// ProcessArgs merges the CRI command and args with the image entrypoint and
// cmd the way Kubernetes defines it: command replaces the entrypoint (and
// drops the image cmd), args replace the cmd.
func ProcessArgs(command, args []string, img imagespec.ImageConfig) ([]string, error) {
	if len(command) == 0 {
		if len(args) == 0 {
			args = img.Cmd
		}
		if !(len(img.Entrypoint) == 1 && img.Entrypoint[0] == "") {
			command = img.Entrypoint
		}
	}
	out := append(append([]string{}, command...), args...)
	if len(out) == 0 {
		return nil, errors.New("no command specified: the request and the image set neither command nor args")
	}
	return out, nil
}

// MergeEnv layers environment lists: later lists override earlier ones key
// by key, keeping the first position of each key. PATH defaults to
// DefaultPathEnv.
func MergeEnv(lists ...[]string) []string {
	var out []string
	index := map[string]int{}
	for _, list := range lists {
		for _, kv := range list {
			key, _, _ := strings.Cut(kv, "=")
			if i, ok := index[key]; ok {
				out[i] = kv
				continue
			}
			index[key] = len(out)
			out = append(out, kv)
		}
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, DefaultPathEnv)
	}
	return out
}

// criEnv renders CRI key/value pairs as KEY=value strings.
func criEnv(kvs []*runtimeapi.KeyValue) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.GetKey()+"="+string(kv.GetValue()))
	}
	return out
}

// workingDir picks the CRI working dir, then the image's, then "/".
func workingDir(criDir, imageDir string) (string, error) {
	dir := criDir
	if dir == "" {
		dir = imageDir
	}
	if dir == "" {
		return "/", nil
	}
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("working_dir %q: not an absolute path", dir)
	}
	return path.Clean(dir), nil
}

// defaultRlimits returns the nofile limit, bounded by the daemon's own.
func defaultRlimits(h Host) []specs.POSIXRlimit {
	n := DefaultNofile
	if h.NofileHardLimit != 0 && h.NofileHardLimit < n {
		n = h.NofileHardLimit
	}
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}}
}

// StopSignal picks the CRI stop signal, then the image's, then SIGTERM.
func StopSignal(cri runtimeapi.Signal, image string) (int, error) {
	if cri != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		name := strings.TrimPrefix(cri.String(), "SIGNAL_")
		if sig := unix.SignalNum(name); sig != 0 {
			return int(sig), nil
		}
		return 0, fmt.Errorf("stop_signal %s: unknown signal", cri)
	}
	if image == "" {
		return int(unix.SIGTERM), nil
	}
	return parseSignal(image)
}

// parseSignal accepts "SIGTERM", "TERM" or "15".
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("image stop signal %q: out of range", s)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, fmt.Errorf("image stop signal %q: unknown signal", s)
}
