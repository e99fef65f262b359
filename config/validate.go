package config

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
)

// maxSocketPath is the longest path a unix socket address can hold.
const maxSocketPath = 107

type problem struct{ key, text string }

type checker []problem

func (c *checker) add(key, format string, args ...any) {
	*c = append(*c, problem{key, fmt.Sprintf(format, args...)})
}

func (c *checker) absPath(key, p string) {
	if !filepath.IsAbs(p) {
		c.add(key, "must be an absolute path, got %q", p)
	}
}

func (c *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.add(key, "must be one of %v, got %q", allowed, v)
	}
}

func (c *checker) positive(key string, v float64) {
	if v <= 0 {
		c.add(key, "must be greater than zero, got %v", v)
	}
}

// problems lists every invalid setting, in key order of the file.
func (cfg *Config) problems() []problem {
	var c checker
	c.absPath("root", cfg.Root)
	c.absPath("runroot", cfg.RunRoot)
	c.oneOf("log_level", cfg.LogLevel, "debug", "info", "warn", "error")
	c.oneOf("log_format", cfg.LogFormat, "text", "json")

	c.absPath("api.listen", cfg.API.Listen)
	if len(cfg.API.Listen) > maxSocketPath {
		c.add("api.listen", "a unix socket path holds at most %d bytes, got %d", maxSocketPath, len(cfg.API.Listen))
	}
	c.positive("api.grpc_max_send_msg_size", float64(cfg.API.GRPCMaxSendMsgSize))
	c.positive("api.grpc_max_recv_msg_size", float64(cfg.API.GRPCMaxRecvMsgSize))
	c.positive("api.shutdown_timeout", float64(cfg.API.ShutdownTimeout))

	c.oneOf("storage.driver", cfg.Storage.Driver, "overlay", "vfs")
	c.oneOf("storage.check_after_crash", cfg.Storage.CheckAfterCrash, "off", "quick", "full")
	cfg.imageProblems(&c)
	cfg.runtimeProblems(&c)
	c.absPath("network.cni_config_dir", cfg.Network.CNIConfigDir)
	for _, d := range cfg.Network.CNIPluginDirs {
		c.absPath("network.cni_plugin_dirs", d)
	}

	if net.ParseIP(cfg.Stream.Address) == nil {
		c.add("stream.address", "must be an IP address, got %q", cfg.Stream.Address)
	}
	if cfg.Stream.Port < 0 || cfg.Stream.Port > 65535 {
		c.add("stream.port", "must be a port from 0 to 65535, got %d", cfg.Stream.Port)
	}
	if (cfg.Stream.TLSCert == "") != (cfg.Stream.TLSKey == "") {
		c.add("stream.tls_key", "a TLS certificate and key go together")
	}
	c.positive("stream.idle_timeout", float64(cfg.Stream.IdleTimeout))

	if cfg.Metrics.Port < 1 || cfg.Metrics.Port > 65535 {
		c.add("metrics.port", "must be a port from 1 to 65535, got %d", cfg.Metrics.Port)
	}
	if ip := net.ParseIP(cfg.Metrics.Host); cfg.Metrics.Socket == "" && !cfg.Metrics.AllowNonLoopback && (ip == nil || !ip.IsLoopback()) {
		c.add("metrics.host", "must be a loopback IP unless metrics.allow_non_loopback is set, got %q", cfg.Metrics.Host)
	}
	c.positive("observe.stats_fs_interval", float64(cfg.Observe.StatsFsInterval))
	c.positive("observe.events_buffer", float64(cfg.Observe.EventsBuffer))
	cfg.tracingProblems(&c)
	cfg.nriProblems(&c)

	if net.ParseIP(cfg.Profile.Address) == nil {
		c.add("profile.address", "must be an IP address, got %q", cfg.Profile.Address)
	}
	if cfg.Profile.Port < 1 || cfg.Profile.Port > 65535 {
		c.add("profile.port", "must be a port from 1 to 65535, got %d", cfg.Profile.Port)
	}

	c.positive("supervisor.failure_threshold", cfg.Supervisor.FailureThreshold)
	c.positive("supervisor.failure_decay", float64(cfg.Supervisor.FailureDecay))
	if cfg.Supervisor.FailureBackoff < 0 {
		c.add("supervisor.failure_backoff", "must not be negative, got %s", cfg.Supervisor.FailureBackoff)
	}
	c.positive("supervisor.stop_timeout", float64(cfg.Supervisor.StopTimeout))
	return c
}

func (cfg *Config) imageProblems(c *checker) {
	if cfg.Image.PauseImage == "" {
		c.add("image.pause_image", "must name an image")
	}
	c.oneOf("image.short_name_mode", cfg.Image.ShortNameMode, "enforcing", "permissive", "disabled")
	c.positive("image.pull_progress_timeout", float64(cfg.Image.PullProgressTimeout))
}

func (cfg *Config) runtimeProblems(c *checker) {
	rt := cfg.Runtime
	if _, ok := rt.Handlers[rt.DefaultRuntime]; !ok {
		c.add("runtime.default_runtime", "names no handler in [runtime.handlers], got %q", rt.DefaultRuntime)
	}
	c.absPath("runtime.conmon", rt.Conmon)
	c.oneOf("runtime.conmon_log_level", rt.ConmonLogLevel, "debug", "info", "warn", "error")
	c.oneOf("runtime.cgroup_manager", rt.CgroupManager, "cgroupfs")
	for _, d := range rt.HooksDirs {
		c.absPath("runtime.hooks_dirs", d)
	}
	for _, d := range rt.CDISpecDirs {
		c.absPath("runtime.cdi_spec_dirs", d)
	}
	names := make([]string, 0, len(rt.Handlers))
	for name := range rt.Handlers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c.absPath("runtime.handlers."+name+".runtime_path", rt.Handlers[name].RuntimePath)
	}
}

func (cfg *Config) tracingProblems(c *checker) {
	tr := cfg.Tracing
	if host, port, err := net.SplitHostPort(tr.Endpoint); err != nil || host == "" || !validPort(port) {
		c.add("tracing.endpoint", "must be host:port, got %q", tr.Endpoint)
	}
	if tr.SamplingRatePerMillion < 0 || tr.SamplingRatePerMillion > 1_000_000 {
		c.add("tracing.sampling_rate_per_million", "must be from 0 to 1000000, got %d", tr.SamplingRatePerMillion)
	}
}

func (cfg *Config) nriProblems(c *checker) {
	n := cfg.NRI
	c.absPath("nri.socket_path", n.SocketPath)
	if len(n.SocketPath) > maxSocketPath {
		c.add("nri.socket_path", "is longer than %d bytes", maxSocketPath)
	}
	c.absPath("nri.plugin_dir", n.PluginDir)
	c.absPath("nri.plugin_config_dir", n.PluginConfigDir)
	c.positive("nri.plugin_registration_timeout", n.RegistrationTimeout.Std().Seconds())
	c.positive("nri.plugin_request_timeout", n.RequestTimeout.Std().Seconds())
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}
