// Package network is Arbor's pod network layer. It drives CNI plugins through
// libcni: it loads the default network from a configuration directory (and
// watches it), creates persistent network namespaces for pod sandboxes, and
// attaches pods to the loopback and default networks with Kubernetes-style
// arguments and port mappings.
//
// The Manager is safe for concurrent use; operations on the same pod ID are
// serialized. All plugin invocations run under a bounded context.
package network

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// Default locations used when a Config field is empty.
const (
	DefaultConfDir  = "/etc/cni/net.d"
	DefaultNetNSDir = "/run/arbor/netns"
	DefaultCacheDir = "/var/lib/cni"
)

// DefaultPluginDirs are searched for plugin binaries when Config.PluginDirs is empty.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

const (
	defaultPluginTimeout = time.Minute
	loadTimeout          = 20 * time.Second
	rollbackTimeout      = time.Minute
)

// Config locates CNI configuration, plugins, namespaces and libcni's cache.
type Config struct {
	// ConfDir holds *.conflist, *.conf and *.json network configurations.
	ConfDir string
	// PluginDirs are searched, in order, for plugin binaries.
	PluginDirs []string
	// NetNSDir holds the bind mounts of pod network namespaces.
	NetNSDir string
	// CacheDir is libcni's result cache, used to replay DEL after restarts.
	CacheDir string
	// PluginTimeout bounds every plugin invocation (default one minute).
	PluginTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.ConfDir == "" {
		c.ConfDir = DefaultConfDir
	}
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = append([]string(nil), DefaultPluginDirs...)
	}
	if c.NetNSDir == "" {
		c.NetNSDir = DefaultNetNSDir
	}
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir
	}
	if c.PluginTimeout <= 0 {
		c.PluginTimeout = defaultPluginTimeout
	}
	return c
}

// Manager attaches pods to CNI networks. Create it with New; run Serve under a
// supervisor to follow changes of the configuration directory.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	cni      *libcni.CNIConfig
	loopback *libcni.NetworkConfigList
	locks    podLocks

	mu      sync.RWMutex
	def     *network
	reason  string
	podCIDR string
}

// New returns a Manager for cfg. It does not require a network configuration
// to exist yet: the default network is loaded on demand and by Serve.
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	lo, err := libcni.NetworkConfFromBytes([]byte(loopbackConf))
	if err != nil {
		return nil, fmt.Errorf("parsing loopback network: %w", err)
	}
	m := &Manager{cfg: cfg, log: log, loopback: lo, reason: "CNI configuration not loaded yet"}
	exec := &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: &stderrLogger{log: log}},
		PluginDecoder: version.PluginDecoder{},
	}
	m.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.CacheDir, exec)
	return m, nil
}

// loopbackConf is the in-memory network that brings up "lo" in every pod.
const loopbackConf = `{"cniVersion":"1.0.0","name":"cni-loopback","plugins":[{"type":"loopback"}]}`

// String names the service for the supervisor.
func (m *Manager) String() string { return "cni" }

// Config returns the effective configuration, defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// UpdatePodCIDR records the node's pod CIDR (from the kubelet's
// UpdateRuntimeConfig). It is stored for configuration writers; the loaded
// CNI configuration is not rewritten.
func (m *Manager) UpdatePodCIDR(cidr string) error {
	if cidr != "" {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("parsing pod cidr: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.podCIDR != cidr {
		m.log.Info("Pod CIDR updated", "pod_cidr", cidr)
	}
	m.podCIDR = cidr
	return nil
}

// PodCIDR returns the CIDR last stored by UpdatePodCIDR, or "".
func (m *Manager) PodCIDR() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.podCIDR
}

// stderrLogger forwards plugin stderr lines to the logger.
type stderrLogger struct {
	log *slog.Logger
}

func (s *stderrLogger) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			s.log.Warn("CNI plugin stderr", "output", line)
		}
	}
	return len(p), nil
}

// podLocks serializes operations per pod ID.
type podLocks struct {
	mu    sync.Mutex
	locks map[string]*podLock
}

type podLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the lock for id and returns its release function.
func (p *podLocks) lock(id string) func() {
	p.mu.Lock()
	if p.locks == nil {
		p.locks = map[string]*podLock{}
	}
	l := p.locks[id]
	if l == nil {
		l = &podLock{}
		p.locks[id] = l
	}
	l.refs++
	p.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		if l.refs--; l.refs == 0 {
			delete(p.locks, id)
		}
	}
}
