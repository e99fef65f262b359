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
	"net"
	"path/filepath"
	"strconv"
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
	Storage    Storage    `toml:"storage"`
	Image      Image      `toml:"image"`
	Runtime    Runtime    `toml:"runtime"`
	Network    Network    `toml:"network"`
	Stream     Stream     `toml:"stream"`
	Metrics    Metrics    `toml:"metrics"`
	Observe    Observe    `toml:"observe"`
	Tracing    Tracing    `toml:"tracing"`
	NRI        NRI        `toml:"nri"`
	Profile    Profile    `toml:"profile"`
	Supervisor Supervisor `toml:"supervisor"`
}

// Storage configures containers/storage. Its folders are <root>/storage
// and <runroot>/storage.
type Storage struct {
	Driver          string   `toml:"driver" flag:"storage-driver" usage:"storage driver: overlay (falls back to vfs when overlay cannot mount) or vfs"`
	Options         []string `toml:"options" flag:"storage-opt" usage:"storage driver options, such as overlay.mountopt=nodev"`
	CheckAfterCrash string   `toml:"check_after_crash" flag:"storage-check-after-crash" usage:"after an unclean stop, check storage and repair what is damaged: off, quick (metadata) or full (layer digests and contents, slow)"`
	// WipeImagesOnUpgrade removes unused images when the version changed.
	WipeImagesOnUpgrade bool `toml:"wipe_images_on_upgrade" flag:"wipe-images-on-upgrade" usage:"remove every unused image when the daemon's version changed since its last run"`
}

// Image configures pulling and the pause image.
type Image struct {
	PauseImage          string   `toml:"pause_image" flag:"pause-image" usage:"image of the infra container that holds a shared PID namespace"`
	PauseCommand        string   `toml:"pause_command" flag:"pause-command" usage:"command of the infra container; empty means the image's entrypoint"`
	PauseImageAuthFile  string   `toml:"pause_image_auth_file" flag:"pause-image-auth-file" usage:"auth file for pulling the pause image"`
	RegistriesConf      string   `toml:"registries_conf" flag:"registries-conf" usage:"registries.conf file: rewrites, mirrors, insecure registries, short names"`
	RegistriesConfDir   string   `toml:"registries_conf_dir" flag:"registries-conf-dir" usage:"folder of registries.conf drop-ins"`
	SignaturePolicy     string   `toml:"signature_policy" flag:"signature-policy" usage:"policy.json for image signatures; a missing file accepts everything"`
	AuthFile            string   `toml:"auth_file" flag:"global-auth-file" usage:"registry credentials used when a pull request has none"`
	ShortNameMode       string   `toml:"short_name_mode" flag:"short-name-mode" usage:"short-name resolution: enforcing, permissive or disabled"`
	PullProgressTimeout Duration `toml:"pull_progress_timeout" flag:"pull-progress-timeout" usage:"cancel a pull that makes no progress for this long"`
	PinnedImages        []string `toml:"pinned_images" flag:"pinned-images" usage:"images (globs allowed) that are never removed"`
}

// Runtime configures how containers run.
type Runtime struct {
	DefaultRuntime string   `toml:"default_runtime" flag:"default-runtime" usage:"runtime handler used when a pod names none"`
	Conmon         string   `toml:"conmon" flag:"conmon" usage:"path of the conmon binary"`
	ConmonLogLevel string   `toml:"conmon_log_level" flag:"conmon-log-level" usage:"conmon's log level: debug, info, warn or error"`
	CgroupManager  string   `toml:"cgroup_manager" flag:"cgroup-manager" usage:"cgroup manager; only cgroupfs is supported (cgroup v1 and v2)"`
	HooksDirs      []string `toml:"hooks_dirs" flag:"hooks-dir" usage:"folders of OCI hook files (oci-hooks(5) 1.0.0 JSON), later ones masking same-named files of earlier ones; watched for changes"`
	CDISpecDirs    []string `toml:"cdi_spec_dirs" flag:"cdi-spec-dirs" usage:"folders of CDI spec files that CDI device requests are resolved against, later ones taking precedence"`
	// Handlers are the runtime handlers by name. File only: one table each.
	Handlers map[string]RuntimeHandler `toml:"handlers" usage:"runtime handlers, one [runtime.handlers.NAME] table each"`
}

// RuntimeHandler is one OCI runtime a pod can ask for by name.
type RuntimeHandler struct {
	RuntimePath string   `toml:"runtime_path"`
	RuntimeRoot string   `toml:"runtime_root,omitempty"`
	RuntimeArgs []string `toml:"runtime_args,omitempty"`
}

// Stream configures the server for exec, attach and port-forward sessions.
type Stream struct {
	Address     string   `toml:"address" flag:"stream-address" usage:"address the streaming server listens on"`
	Port        int      `toml:"port" flag:"stream-port" usage:"port of the streaming server; 0 picks a free one at start"`
	TLSCert     string   `toml:"tls_cert" flag:"stream-tls-cert" usage:"TLS certificate of the streaming server; empty serves plain HTTP"`
	TLSKey      string   `toml:"tls_key" flag:"stream-tls-key" usage:"TLS key of the streaming server"`
	TLSCA       string   `toml:"tls_ca" flag:"stream-tls-ca" usage:"CA that client certificates must be signed by; empty accepts any client"`
	IdleTimeout Duration `toml:"idle_timeout" flag:"stream-idle-timeout" usage:"close a streaming session idle for this long"`
}

// Metrics configures the Prometheus endpoint, off by default.
type Metrics struct {
	Enable           bool   `toml:"enable" flag:"enable-metrics" usage:"serve Prometheus metrics"`
	Host             string `toml:"host" flag:"metrics-host" usage:"address the metrics endpoint listens on (loopback unless allow_non_loopback)"`
	Port             int    `toml:"port" flag:"metrics-port" usage:"port of the metrics endpoint"`
	Socket           string `toml:"socket" flag:"metrics-socket" usage:"serve metrics on this unix socket instead of host:port"`
	AllowNonLoopback bool   `toml:"allow_non_loopback" flag:"metrics-allow-non-loopback" usage:"let the metrics endpoint listen on a non-loopback address"`
}

// Address is where the metrics endpoint listens.
func (m Metrics) Address() string {
	if m.Socket != "" {
		return m.Socket
	}
	return net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
}

// Observe configures stats and container events.
type Observe struct {
	StatsFsInterval Duration `toml:"stats_fs_interval" flag:"stats-fs-interval" usage:"how often the writable layers' disk usage is measured again for stats"`
	EventsBuffer    int      `toml:"events_buffer" flag:"events-buffer" usage:"container events buffered per subscriber before a slow one is dropped"`
}

// Tracing configures OpenTelemetry tracing of CRI calls, exported over
// OTLP gRPC; off by default.
type Tracing struct {
	Enable                 bool   `toml:"enable" flag:"enable-tracing" usage:"export OpenTelemetry traces of CRI calls over OTLP gRPC"`
	Endpoint               string `toml:"endpoint" flag:"tracing-endpoint" usage:"host:port of the OTLP gRPC collector (plaintext)"`
	SamplingRatePerMillion int    `toml:"sampling_rate_per_million" flag:"tracing-sampling-rate-per-million" usage:"traces sampled per million root calls, 0 to 1000000; a sampled parent is always followed"`
}

// NRI configures the Node Resource Interface: plugins that see pod and
// container events and may adjust containers. On by default, as in
// containerd 2 and CRI-O.
type NRI struct {
	Enable          bool   `toml:"enable" flag:"enable-nri" usage:"serve NRI plugins: relay pod and container events to them and apply their adjustments (--enable-nri=false turns it off)"`
	SocketPath      string `toml:"socket_path" flag:"nri-socket-path" usage:"unix socket on which external NRI plugins connect"`
	PluginDir       string `toml:"plugin_dir" flag:"nri-plugin-dir" usage:"folder of NRI plugins the daemon starts itself (IDX-NAME executables)"`
	PluginConfigDir string `toml:"plugin_config_dir" flag:"nri-plugin-config-dir" usage:"folder of configuration drop-ins for the plugins the daemon starts"`
	// The NRI library's own default for requests is 2s; a plugin that
	// synchronizes a full node can take longer.
	RegistrationTimeout Duration `toml:"plugin_registration_timeout" flag:"nri-plugin-registration-timeout" usage:"how long a connecting NRI plugin may take to register"`
	RequestTimeout      Duration `toml:"plugin_request_timeout" flag:"nri-plugin-request-timeout" usage:"how long an NRI plugin may take to answer one event or its synchronization; a plugin past it is disconnected"`
}

// Network configures CNI.
type Network struct {
	CNIConfigDir  string   `toml:"cni_config_dir" flag:"cni-config-dir" usage:"folder of CNI network configs; the first in name order is the pod network"`
	CNIPluginDirs []string `toml:"cni_plugin_dirs" flag:"cni-plugin-dir" usage:"folders searched for CNI plugin binaries"`
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
		Storage: Storage{Driver: "overlay", CheckAfterCrash: "quick"},
		Image: Image{
			PauseImage:          "registry.k8s.io/pause:3.10",
			RegistriesConf:      "/etc/containers/registries.conf",
			RegistriesConfDir:   "/etc/containers/registries.conf.d",
			SignaturePolicy:     "/etc/containers/policy.json",
			ShortNameMode:       "enforcing",
			PullProgressTimeout: Duration(2 * time.Minute),
		},
		Runtime: Runtime{
			DefaultRuntime: "runc",
			Conmon:         "/usr/bin/conmon",
			ConmonLogLevel: "error",
			CgroupManager:  "cgroupfs",
			HooksDirs:      []string{"/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"},
			CDISpecDirs:    []string{"/etc/cdi", "/var/run/cdi"},
			Handlers: map[string]RuntimeHandler{
				"runc": {RuntimePath: "/usr/sbin/runc"},
				"crun": {RuntimePath: "/usr/bin/crun"},
			},
		},
		Network: Network{
			CNIConfigDir:  "/etc/cni/net.d",
			CNIPluginDirs: []string{"/usr/lib/cni", "/opt/cni/bin"},
		},
		Stream:  Stream{Address: "127.0.0.1", IdleTimeout: Duration(4 * time.Hour)},
		Metrics: Metrics{Host: "127.0.0.1", Port: 9090},
		Observe: Observe{StatsFsInterval: Duration(30 * time.Second), EventsBuffer: 1000},
		Tracing: Tracing{Endpoint: "127.0.0.1:4317"},
		NRI: NRI{Enable: true, SocketPath: "/var/run/nri/nri.sock", PluginDir: "/opt/nri/plugins", PluginConfigDir: "/etc/nri/conf.d",
			RegistrationTimeout: Duration(5 * time.Second), RequestTimeout: Duration(5 * time.Second)},
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

// StorageRoot and StorageRunRoot are containers/storage's folders.
func (c *Config) StorageRoot() string    { return filepath.Join(c.Root, "storage") }
func (c *Config) StorageRunRoot() string { return filepath.Join(c.RunRoot, "storage") }

// VolatileVersionFile lives on tmpfs; its absence means the node rebooted.
func (c *Config) VolatileVersionFile() string { return filepath.Join(c.RunRoot, "version") }
