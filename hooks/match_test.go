package hooks

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func specRunning(args ...string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Args: args}}
}

func TestMatches(t *testing.T) {
	bin := hookBinary(t)
	pod := map[string]string{"io.kubernetes.cri.container-name": "web", "example.com/gpu": "nvidia-a100"}
	for _, tc := range []struct {
		name       string
		when       string
		spec       *specs.Spec
		annots     map[string]string
		bindMounts bool
		want       bool
	}{
		{"always true", `{"always":true}`, specRunning("/bin/sh"), nil, false, true},
		{"always false", `{"always":false}`, specRunning("/bin/sh"), pod, true, false},
		{"annotation key and value", `{"annotations":{"^example\\.com/gpu$":"^nvidia-"}}`, specRunning("/bin/sh"), pod, false, true},
		{"annotation value differs", `{"annotations":{"^example\\.com/gpu$":"^amd-"}}`, specRunning("/bin/sh"), pod, false, false},
		{"annotation key absent", `{"annotations":{"^example\\.com/fpga$":".*"}}`, specRunning("/bin/sh"), pod, false, false},
		{"every annotation pair must match", `{"annotations":{"gpu$":"nvidia","container-name$":"^db$"}}`, specRunning("/bin/sh"), pod, false, false},
		{"no annotations", `{"annotations":{".*":".*"}}`, specRunning("/bin/sh"), nil, false, false},
		{"command full path", `{"commands":["^/usr/sbin/nginx$"]}`, specRunning("/usr/sbin/nginx", "-g"), nil, false, true},
		{"command base name", `{"commands":["^nginx$"]}`, specRunning("/usr/sbin/nginx"), nil, false, true},
		{"command any pattern", `{"commands":["^httpd$","^nginx$"]}`, specRunning("nginx"), nil, false, true},
		{"command differs", `{"commands":["^nginx$"]}`, specRunning("/bin/sh", "nginx"), nil, false, false},
		{"command without process", `{"commands":[".*"]}`, &specs.Spec{}, nil, false, false},
		{"command without args", `{"commands":[".*"]}`, specRunning(), nil, false, false},
		{"bind mounts asked", `{"hasBindMounts":true}`, specRunning("/bin/sh"), nil, true, true},
		{"bind mounts not asked", `{"hasBindMounts":true}`, specRunning("/bin/sh"), nil, false, false},
		{"hasBindMounts false never matches", `{"hasBindMounts":false}`, specRunning("/bin/sh"), nil, false, false},
		{"all conditions hold", `{"always":true,"commands":["sh$"],"hasBindMounts":true,"annotations":{"gpu":"a100"}}`, specRunning("/bin/sh"), pod, true, true},
		{"one condition fails", `{"always":true,"commands":["sh$"],"hasBindMounts":true,"annotations":{"gpu":"a100"}}`, specRunning("/bin/sh"), pod, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := `{"version":"1.0.0","hook":{"path":"BIN"},"when":` + tc.when + `,"stages":["prestart"]}`
			h, err := Read(writeHook(t, t.TempDir(), "h.json", bin, content))
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Matches(tc.spec, tc.annots, tc.bindMounts); got != tc.want {
				t.Fatalf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}
