package hooks

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// hookBinary makes an executable file to point hook.path at.
func hookBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook-bin")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeHook writes content, with BIN replaced by bin, to dir/name.
func writeHook(t *testing.T, dir, name, bin, content string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "BIN", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParse(t *testing.T) {
	bin := hookBinary(t)
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"good", `{"version":"1.0.0","hook":{"path":"BIN","args":["x","y"],"env":["A=1"],"timeout":3},"when":{"always":true},"stages":["prestart","poststop"]}`, ""},
		{"every stage", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"commands":["sh"]},"stages":["prestart","createRuntime","createContainer","startContainer","poststart","poststop"]}`, ""},
		{"not JSON", `{"version":`, "decoding JSON"},
		{"unknown version", `{"version":"0.1.0","hook":{"path":"BIN"},"when":{"always":true},"stages":["prestart"]}`, `unknown version "0.1.0"`},
		{"missing version", `{"hook":{"path":"BIN"},"when":{"always":true},"stages":["prestart"]}`, `unknown version ""`},
		{"missing hook.path", `{"version":"1.0.0","hook":{"args":["x"]},"when":{"always":true},"stages":["prestart"]}`, "missing hook.path"},
		{"relative hook.path", `{"version":"1.0.0","hook":{"path":"bin/hook"},"when":{"always":true},"stages":["prestart"]}`, "is not absolute"},
		{"absent hook.path", `{"version":"1.0.0","hook":{"path":"/nonexistent/arbor-hook"},"when":{"always":true},"stages":["prestart"]}`, "no such file"},
		{"folder hook.path", `{"version":"1.0.0","hook":{"path":"/"},"when":{"always":true},"stages":["prestart"]}`, "is a folder"},
		{"zero timeout", `{"version":"1.0.0","hook":{"path":"BIN","timeout":0},"when":{"always":true},"stages":["prestart"]}`, "hook.timeout must be positive"},
		{"bad annotation key", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"annotations":{"a(":"b"}},"stages":["prestart"]}`, "when.annotations key"},
		{"bad annotation value", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"annotations":{"a":"[b"}},"stages":["prestart"]}`, "when.annotations value"},
		{"bad command", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"commands":["*sh"]},"stages":["prestart"]}`, "when.commands"},
		{"unknown stage", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"always":true},"stages":["prestart","afterlunch"]}`, `unknown stage "afterlunch"`},
		{"no stages", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"always":true},"stages":[]}`, "missing stages"},
		{"stage twice", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{"always":true},"stages":["poststop","poststop"]}`, "listed twice"},
		{"no condition", `{"version":"1.0.0","hook":{"path":"BIN"},"when":{},"stages":["prestart"]}`, "no condition set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeHook(t, t.TempDir(), "h.json", bin, tc.content)
			h, err := Read(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if h.Name != "h.json" || h.Source != path || h.Definition.Hook.Path != bin {
					t.Fatalf("hook = %+v", h)
				}
				return
			}
			if err == nil {
				t.Fatalf("Read accepted a bad file: %+v", h)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not name %s and %q", err, path, tc.wantErr)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path {
				t.Fatalf("error %#v is not a *FileError for %s", err, path)
			}
		})
	}
}

func TestReadMissingFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.json")
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Read of a missing file: %v", err)
	}
}
