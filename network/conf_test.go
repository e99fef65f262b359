package network

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

func TestReadyReasons(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name   string
		files  map[string]string
		reason string
	}{
		{name: "empty dir", reason: "no CNI configuration file in"},
		{name: "missing plugin binary", reason: "no-such-plugin",
			files: map[string]string{"10-x.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}`}},
		{name: "malformed json", reason: "10-bad.conflist",
			files: map[string]string{"10-bad.conflist": `{"cniVersion":`}},
		{name: "other extensions ignored", reason: "no CNI configuration file in",
			files: map[string]string{"10-x.conflist.bak": `{}`, "README": "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m := newTestManager(t, dir)
			ready, reason := m.Ready()
			if ready || !strings.Contains(reason, tc.reason) {
				t.Fatalf("Ready() = %v, %q; want false with %q", ready, reason, tc.reason)
			}
		})
	}
}

func TestReadyPicksFirstValidFileLexically(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	bad := `{"cniVersion":"1.0.0","name":"broken","plugins":[{"type":"no-such-plugin"}]}`
	if err := os.WriteFile(filepath.Join(dir, "05-broken.conflist"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"zeta", "alpha"} {
		c := BridgeConfig{Name: name, Bridge: "unused0", Subnet: "10.88.1.0/24"}
		if _, err := WriteBridgeConfig(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	m := newTestManager(t, dir)
	if ready, reason := m.Ready(); !ready {
		t.Fatalf("Ready() = false, %q", reason)
	}
	if got := m.DefaultNetworkName(); got != "alpha" {
		t.Fatalf("default network = %q, want alpha", got)
	}
}

func TestServeFollowsConfDir(t *testing.T) {
	requireRoot(t)
	n := newTestNetwork(t)
	m := newTestManager(t, n.confDir)
	if m.String() != "cni" {
		t.Fatalf("String() = %q", m.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() { serveErr = m.Serve(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		if serveErr != nil {
			t.Errorf("Serve: %v", serveErr)
		}
	}()

	if ready, _ := m.Ready(); ready {
		t.Fatal("ready before any configuration was written")
	}
	n.write(t)
	waitReady(t, m, true)
	if got := m.DefaultNetworkName(); got != n.Name {
		t.Fatalf("default network = %q, want %q", got, n.Name)
	}
	if err := os.Remove(filepath.Join(n.confDir, ConfigFileName(n.Name))); err != nil {
		t.Fatal(err)
	}
	waitReady(t, m, false)
}

// waitReady polls Ready until it reports want, failing after a bounded wait.
func waitReady(t *testing.T, m *Manager, want bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m.mu.RLock()
		ready := m.def != nil
		m.mu.RUnlock()
		if ready == want {
			return
		}
		if time.Now().After(deadline) {
			_, reason := m.Ready()
			t.Fatalf("readiness did not become %v; reason %q", want, reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWriteDefaultConfig(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDefaultConfig(dir, "arbor", "10.88.0.0/16"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ConfigFileName("arbor"))
	list, err := libcni.NetworkConfFromFile(path)
	if err != nil {
		t.Fatalf("loading written config: %v", err)
	}
	if list.Name != "arbor" || len(list.Plugins) != 2 {
		t.Fatalf("unexpected list %q with %d plugins", list.Name, len(list.Plugins))
	}
	var bridge struct {
		Type      string `json:"type"`
		Bridge    string `json:"bridge"`
		IPMasq    bool   `json:"ipMasq"`
		IsGateway bool   `json:"isGateway"`
		IPAM      struct {
			Type   string              `json:"type"`
			Routes []json.RawMessage   `json:"routes"`
			Ranges [][]json.RawMessage `json:"ranges"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Type != "bridge" || bridge.Bridge != DefaultBridge || !bridge.IsGateway {
		t.Errorf("bridge plugin = %+v", bridge)
	}
	if bridge.IPMasq || len(bridge.IPAM.Routes) != 0 || bridge.IPAM.Type != "host-local" {
		t.Errorf("config masquerades or routes off the machine: %s", list.Plugins[0].Bytes)
	}
	if strings.Contains(string(list.Bytes), "0.0.0.0/0") {
		t.Errorf("config has a default route: %s", list.Bytes)
	}
	pm := list.Plugins[1].Network
	if pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
		t.Errorf("second plugin = %+v, want portmap with portMappings", pm)
	}
}

func TestWriteBridgeConfigRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		c    BridgeConfig
	}{
		{"no name", BridgeConfig{Bridge: "b0", Subnet: "10.0.0.0/24"}},
		{"long bridge", BridgeConfig{Name: "n", Bridge: "a-very-long-bridge-name", Subnet: "10.0.0.0/24"}},
		{"bad subnet", BridgeConfig{Name: "n", Bridge: "b0", Subnet: "10.0.0.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := WriteBridgeConfig(dir, tc.c); err == nil {
				t.Fatal("no error")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("left %d files behind", len(entries))
			}
		})
	}
}

func TestUpdatePodCIDR(t *testing.T) {
	m := newTestManager(t, "")
	if err := m.UpdatePodCIDR("10.88.0.0/16"); err != nil || m.PodCIDR() != "10.88.0.0/16" {
		t.Fatalf("UpdatePodCIDR: %v, stored %q", err, m.PodCIDR())
	}
	if err := m.UpdatePodCIDR("garbage"); err == nil || m.PodCIDR() != "10.88.0.0/16" {
		t.Fatalf("bad cidr accepted: %v, stored %q", err, m.PodCIDR())
	}
}
