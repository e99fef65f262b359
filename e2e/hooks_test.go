package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestOCIHooks: a hook file written after start is picked up by the hooks
// service and injected into matching containers only, infra containers
// included.
func TestOCIHooks(t *testing.T) {
	work := t.TempDir()
	hooksDir := filepath.Join(work, "hooks.d")
	script := filepath.Join(work, "record")
	out := filepath.Join(work, "states")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n/bin/cat >> \"$1\"; echo >> \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pt := newPodTest(t, "--hooks-dir", hooksDir)
	defer pt.finish()
	if err := os.MkdirAll(hooksDir, 0o755); err != nil {
		t.Fatal(err)
	}
	hook := `{"version":"1.0.0","hook":{"path":"` + script + `","args":["record","` + out + `"]},` +
		`"when":{"annotations":{"^example\\.com/hooked$":"^yes$"}},"stages":["createRuntime"]}`
	if err := os.WriteFile(filepath.Join(hooksDir, "10-record.json"), []byte(hook), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(pt.d.Log(), "added=[10-record.json]") {
		if time.Now().After(deadline) {
			t.Fatalf("hook file never picked up:\n%s", pt.d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pod := pt.podConfig("hooks")
	podID := pt.runPod(pod)
	hooked := pt.ctrConfig("hooked", "echo hi")
	hooked.Annotations = map[string]string{"example.com/hooked": "yes"}
	hookedID := pt.createAndStart(podID, pod, hooked)
	plainID := pt.createAndStart(podID, pod, pt.ctrConfig("plain", "echo hi"))
	// A pod that shares its PID namespace has an infra container, which
	// gets the hooks its pod's annotations match.
	sharedPID := func(name string, annotations map[string]string) string {
		cfg := pt.podConfig(name)
		cfg.Annotations = annotations
		cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		return pt.runPod(cfg)
	}
	hookedPodID := sharedPID("hooked-pod", map[string]string{"example.com/hooked": "yes"})
	plainPodID := sharedPID("plain-pod", nil)
	pt.waitExit(hookedID)
	pt.waitExit(plainID)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook never ran: %v\n%s", err, pt.d.Log())
	}
	states := string(data)
	for _, id := range []string{hookedID, hookedPodID} {
		if !strings.Contains(states, `"id":"`+id+`"`) {
			t.Errorf("hook states lack %s:\n%s", id, states)
		}
	}
	for _, id := range []string{plainID, plainPodID} {
		if strings.Contains(states, id) {
			t.Errorf("hook ran for %s, which does not match:\n%s", id, states)
		}
	}
	if !strings.Contains(pt.d.Log(), "OCI hooks injected") {
		t.Fatalf("injection not logged")
	}
}
