package network

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// DefaultBridge is the bridge WriteDefaultConfig uses.
const DefaultBridge = "arbor0"

// BridgeConfig describes a bridge + host-local + portmap network. The network
// has no default route and no masquerading: pods reach only the bridge (the
// host) and each other, never anything off the machine.
type BridgeConfig struct {
	// Name is the CNI network name.
	Name string
	// Bridge is the host bridge device (at most 15 characters).
	Bridge string
	// Subnet is the pod address range in CIDR form; the bridge gets its
	// first address as gateway.
	Subnet string
	// DataDir overrides host-local's lease directory
	// (default /var/lib/cni/networks).
	DataDir string
}

// ConfigFileName is the file name WriteDefaultConfig and WriteBridgeConfig
// use for a network called name.
func ConfigFileName(name string) string { return "10-" + name + ".conflist" }

// WriteDefaultConfig writes dir/ConfigFileName(name): a bridge network on
// DefaultBridge with host-local addresses from subnet and port mappings,
// without default route or ipMasq. The file appears atomically.
func WriteDefaultConfig(dir, name, subnet string) error {
	_, err := WriteBridgeConfig(dir, BridgeConfig{Name: name, Bridge: DefaultBridge, Subnet: subnet})
	return err
}

// WriteBridgeConfig writes c as dir/ConfigFileName(c.Name) atomically and
// returns the file's path.
func WriteBridgeConfig(dir string, c BridgeConfig) (string, error) {
	data, err := c.marshal()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cni config dir: %w", err)
	}
	path := filepath.Join(dir, ConfigFileName(c.Name))
	if err := writeFileAtomic(path, data); err != nil {
		return "", fmt.Errorf("writing cni config: %w", err)
	}
	return path, nil
}

func (c BridgeConfig) marshal() ([]byte, error) {
	if c.Name == "" {
		return nil, fmt.Errorf("network name is empty")
	}
	if c.Bridge == "" || len(c.Bridge) > 15 {
		return nil, fmt.Errorf("invalid bridge name %q", c.Bridge)
	}
	if _, _, err := net.ParseCIDR(c.Subnet); err != nil {
		return nil, fmt.Errorf("parsing subnet: %w", err)
	}
	ipam := map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": c.Subnet}}}}
	if c.DataDir != "" {
		ipam["dataDir"] = c.DataDir
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       c.Name,
		"plugins": []map[string]any{
			{"type": "bridge", "bridge": c.Bridge, "isGateway": true, "ipMasq": false,
				"hairpinMode": true, "ipam": ipam},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// writeFileAtomic writes data beside path under a name the loader ignores,
// then renames it into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
