package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// confExtensions are the configuration file extensions considered, like CRI-O.
var confExtensions = []string{".conf", ".conflist", ".json"}

// errNoConfig reports an empty or unusable configuration directory.
var errNoConfig = errors.New("network not ready")

// network is a loaded network configuration and the file it came from.
type network struct {
	file string
	list *libcni.NetworkConfigList
}

// Ready reports whether a default network is loaded. When it is not, reason
// says why (for the CRI NetworkReady condition). Without a default network it
// reloads the configuration directory first, so it works without Serve.
func (m *Manager) Ready() (bool, string) {
	if m.defaultLoaded() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
		defer cancel()
		m.reload(ctx)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.def == nil {
		return false, m.reason
	}
	return true, ""
}

// DefaultNetworkName returns the name of the loaded default network, or "".
func (m *Manager) DefaultNetworkName() string {
	if n := m.defaultLoaded(); n != nil {
		return n.list.Name
	}
	return ""
}

func (m *Manager) defaultLoaded() *network {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.def
}

// defaultNetwork returns the default network, loading it if none is loaded.
func (m *Manager) defaultNetwork(ctx context.Context) (*network, error) {
	if n := m.defaultLoaded(); n != nil {
		return n, nil
	}
	m.reload(ctx)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.def == nil {
		return nil, errors.New(m.reason)
	}
	return m.def, nil
}

// reload loads the default network from ConfDir and records it, or records
// why there is none.
func (m *Manager) reload(ctx context.Context) {
	n, err := m.loadDefault(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.def
	m.def = n
	if err != nil {
		m.reason = err.Error()
		if old != nil {
			m.log.Warn("CNI default network lost", "network", old.list.Name, "reason", m.reason)
		}
		return
	}
	m.reason = ""
	if old == nil || old.file != n.file || old.list.Name != n.list.Name {
		m.log.Info("CNI default network loaded", "network", n.list.Name, "file", n.file)
	}
}

// loadDefault returns the first valid network in lexical file order.
func (m *Manager) loadDefault(ctx context.Context) (*network, error) {
	files, err := libcni.ConfFiles(m.cfg.ConfDir, confExtensions)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", m.cfg.ConfDir, err)
	}
	sort.Strings(files)
	var problems []string
	for _, file := range files {
		n, err := m.loadFile(ctx, file)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("CNI configuration skipped", "file", file, "error", err)
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(file), err))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: no valid CNI configuration in %s (%s)", errNoConfig, m.cfg.ConfDir, strings.Join(problems, "; "))
	}
	return nil, fmt.Errorf("%w: no CNI configuration file in %s", errNoConfig, m.cfg.ConfDir)
}

// loadFile parses one configuration file and checks its plugins exist.
func (m *Manager) loadFile(ctx context.Context, file string) (*network, error) {
	list, err := parseConfFile(file)
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New("no plugins")
	}
	vctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if _, err := m.cni.ValidateNetworkList(vctx, list); err != nil {
		return nil, fmt.Errorf("validating plugins: %w", err)
	}
	return &network{file: file, list: list}, nil
}

// parseConfFile reads a .conflist, or a single-plugin .conf/.json as a list.
func parseConfFile(file string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(file, ".conflist") {
		return libcni.NetworkConfFromFile(file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}
