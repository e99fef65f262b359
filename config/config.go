// Package config holds Arbor's configuration: the typed settings, their
// defaults, and how the layers (defaults, main file, drop-in files,
// environment, flags) are merged and validated.
//
// Every setting is described once, by the struct tags of its field: `toml`
// names its key, `flag` its command-line flag (and so its ARBOR_* variable)
// and `usage` the sentence shown in --help and in `arbor config`. A field
// without a flag tag exists only in files (maps of runtime handlers, say).
package config

import (
	"path/filepath"
	"time"
)

// Config is the daemon's effective configuration. The zero value is not
// useful; start from Default.
type Config struct {
	Root                 string `toml:"root" flag:"root" usage:"folder for persistent state, storage included"`
	RunRoot              string `toml:"runroot" flag:"runroot" usage:"folder for volatile state, storage included (tmpfs on a real node)"`
	LogLevel             string `toml:"log_level" flag:"log-level" usage:"log level: debug, info, warn or error"`
	LogFormat            string `toml:"log_format" flag:"log-format" usage:"log format: text or json"`
	EnableFaultInjection bool   `toml:"enable_fault_injection" flag:"enable-fault-injection" usage:"serve POST /debug/fault on the socket to inject panics, errors, delays and exits (tests only)"`

	API        API        `toml:"api"`
	Profile    Profile    `toml:"profile"`
	Supervisor Supervisor `toml:"supervisor"`
}

// API configures the CRI socket and what it serves.
type API struct {
	Listen                  string   `toml:"listen" flag:"listen" usage:"path of the unix socket that serves CRI gRPC and HTTP info"`
	GRPCMaxSendMsgSize      int      `toml:"grpc_max_send_msg_size" flag:"grpc-max-send-msg-size" usage:"largest gRPC message the daemon sends, in bytes"`
	GRPCMaxRecvMsgSize      int      `toml:"grpc_max_recv_msg_size" flag:"grpc-max-recv-msg-size" usage:"largest gRPC message the daemon accepts, in bytes"`
	EnableProfileUnixSocket bool     `toml:"enable_profile_unix_socket" flag:"enable-profile-unix-socket" usage:"serve pprof under /debug/pprof/ on the socket's HTTP side"`
	ShutdownTimeout         Duration `toml:"shutdown_timeout" flag:"shutdown-timeout" usage:"how long running RPCs may take to finish at shutdown before they are cut off"`
}

// Profile configures Go profiling of the daemon itself.
type Profile struct {
	Enable  bool   `toml:"enable" flag:"profile" usage:"serve pprof on profile-address:profile-port"`
	Address string `toml:"address" flag:"profile-address" usage:"loopback address for the pprof server"`
	Port    int    `toml:"port" flag:"profile-port" usage:"port for the pprof server"`
	CPU     string `toml:"cpu" flag:"profile-cpu" usage:"write a CPU profile of the whole run to this file"`
	Mem     string `toml:"mem" flag:"profile-mem" usage:"write a heap profile to this file at exit"`
}

// Supervisor configures restart backoff and stop timeouts of the service
// tree. The defaults bring a failed child back at once and only back off a
// child that keeps failing.
type Supervisor struct {
	FailureThreshold float64  `toml:"failure_threshold" flag:"supervisor-failure-threshold" usage:"failures (decaying) a subtree tolerates before it backs off"`
	FailureDecay     Duration `toml:"failure_decay" flag:"supervisor-failure-decay" usage:"half-life of the failure count"`
	FailureBackoff   Duration `toml:"failure_backoff" flag:"supervisor-failure-backoff" usage:"how long a subtree past its threshold waits before restarting children"`
	StopTimeout      Duration `toml:"stop_timeout" flag:"supervisor-stop-timeout" usage:"how long each service may take to stop before it is named as stuck"`
}

// Default returns the configuration used when nothing overrides it.
func Default() Config {
	return Config{
		Root:      "/var/lib/arbor",
		RunRoot:   "/run/arbor",
		LogLevel:  "info",
		LogFormat: "text",
		API: API{
			Listen:             "/var/run/arbor/arbor.sock",
			GRPCMaxSendMsgSize: 80 << 20,
			GRPCMaxRecvMsgSize: 80 << 20,
			ShutdownTimeout:    Duration(5 * time.Second),
		},
		Profile: Profile{Address: "127.0.0.1", Port: 6060},
		Supervisor: Supervisor{
			FailureThreshold: 5,
			FailureDecay:     Duration(30 * time.Second),
			FailureBackoff:   Duration(2 * time.Second),
			StopTimeout:      Duration(5 * time.Second),
		},
	}
}

// StateDir is where Arbor keeps its own records of pods and containers.
func (c *Config) StateDir() string { return filepath.Join(c.Root, "state") }

// CleanShutdownFile exists only after a clean stop, until the next start.
func (c *Config) CleanShutdownFile() string { return filepath.Join(c.Root, "clean.shutdown") }

// PersistentVersionFile records the version that last ran; an older one
// means an upgrade happened.
func (c *Config) PersistentVersionFile() string { return filepath.Join(c.Root, "version") }

// VolatileVersionFile lives on tmpfs; its absence means the node rebooted.
func (c *Config) VolatileVersionFile() string { return filepath.Join(c.RunRoot, "version") }
