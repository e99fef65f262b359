package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	main := write(t, filepath.Join(dir, "arbor.conf"), `
log_level = "warn"
root = "/main/root"
runroot = "/main/run"
[api]
listen = "/main.sock"
shutdown_timeout = "7s"
`)
	write(t, filepath.Join(dir, "d", "10-a.conf"), "root = \"/dropin10\"\n[api]\nlisten = \"/a.sock\"\n")
	write(t, filepath.Join(dir, "d", "20-b.conf"), "[api]\nlisten = \"/b.sock\"\n")
	write(t, filepath.Join(dir, "d", "ignored.txt"), "not toml at all = = =")

	ld, err := Loader{File: main, Dir: filepath.Join(dir, "d"),
		Env: envOf(map[string]string{"ARBOR_LISTEN": "/env.sock", "ARBOR_RUNROOT": "/env/run"})}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := ld.SetFlag("runroot", "/flag/run"); err != nil {
		t.Fatal(err)
	}
	c := ld.Config
	checks := []struct{ name, got, want string }{
		{"default survives", c.LogFormat, "text"},
		{"main file beats default", c.LogLevel, "warn"},
		{"drop-in beats main file", c.Root, "/dropin10"},
		{"env beats drop-ins", c.API.Listen, "/env.sock"},
		{"flag beats env", c.RunRoot, "/flag/run"},
		{"duration from file", c.API.ShutdownTimeout.String(), (7 * time.Second).String()},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if ch.got != ch.want {
				t.Errorf("got %q, want %q", ch.got, ch.want)
			}
		})
	}
	if got := ld.Sources["root"].String(); !strings.Contains(got, "10-a.conf line 1") {
		t.Errorf("source of root = %q", got)
	}
}

func TestErrorsNameKeyFileAndLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, text string
		env        map[string]string
		flag       [2]string
		want       []string
	}{
		{name: "unknown key", text: "\n[api]\nlisen = \"/x\"\n", want: []string{`"api.lisen"`, "line 3", "unknown key"}},
		{name: "wrong type", text: "[api]\ngrpc_max_send_msg_size = \"big\"\n", want: []string{"grpc_max_send_msg_size", "line 2"}},
		{name: "bad duration", text: "[api]\n\nshutdown_timeout = \"soon\"\n", want: []string{"shutdown_timeout", "line 3", "not a duration"}},
		{name: "bad level", text: "log_level = \"loud\"\n", want: []string{`"log_level"`, "line 1", "must be one of"}},
		{name: "relative socket", text: "[api]\nlisten = \"arbor.sock\"\n", want: []string{`"api.listen"`, "line 2", "absolute"}},
		{name: "unknown handler key", text: "[runtime.handlers.kata]\nruntime_pth = \"/x\"\n", want: []string{"runtime.handlers.kata.runtime_pth", "line 2", "unknown key"}},
		{name: "default runtime missing", text: "[runtime]\ndefault_runtime = \"kata\"\n", want: []string{`"runtime.default_runtime"`, "line 2", "names no handler"}},
		{name: "relative handler path", text: "[runtime.handlers.kata]\nruntime_path = \"kata\"\n", want: []string{`"runtime.handlers.kata.runtime_path"`, "line 2", "absolute"}},
		{name: "relative CDI folder", text: "[runtime]\ncdi_spec_dirs = [\"/etc/cdi\", \"cdi\"]\n", want: []string{`"runtime.cdi_spec_dirs"`, "line 2", "absolute"}},
		{name: "bad env", env: map[string]string{"ARBOR_PROFILE_PORT": "http"}, want: []string{`"profile.port"`, "ARBOR_PROFILE_PORT", "not an integer"}},
		{name: "bad env value", env: map[string]string{"ARBOR_PROFILE_PORT": "70000"}, want: []string{`"profile.port"`, "ARBOR_PROFILE_PORT", "1 to 65535"}},
		{name: "bad flag value", flag: [2]string{"log-format", "xml"}, want: []string{`"log_format"`, "flag --log-format"}},
		{name: "sampling rate too high", text: "[tracing]\nsampling_rate_per_million = 1000001\n", want: []string{`"tracing.sampling_rate_per_million"`, "line 2", "0 to 1000000"}},
		{name: "negative sampling rate", env: map[string]string{"ARBOR_TRACING_SAMPLING_RATE_PER_MILLION": "-1"}, want: []string{`"tracing.sampling_rate_per_million"`, "ARBOR_TRACING_SAMPLING_RATE_PER_MILLION", "0 to 1000000"}},
		{name: "endpoint without port", text: "[tracing]\nendpoint = \"collector\"\n", want: []string{`"tracing.endpoint"`, "line 2", "host:port"}},
		{name: "endpoint bad port", env: map[string]string{"ARBOR_TRACING_ENDPOINT": "127.0.0.1:0"}, want: []string{`"tracing.endpoint"`, "ARBOR_TRACING_ENDPOINT", "host:port"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, filepath.Join(dir, tc.name+".conf"), tc.text)
			ld, err := Loader{File: path, Env: envOf(tc.env)}.Load()
			if err == nil {
				if tc.flag[0] != "" {
					if err := ld.SetFlag(tc.flag[0], tc.flag[1]); err != nil {
						t.Fatal(err)
					}
				}
				err = ld.Validate()
			}
			var cfgErr *Error
			if !errors.As(err, &cfgErr) {
				t.Fatalf("want *Error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.text != "" && tc.env == nil && tc.flag[0] == "" && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := (Loader{File: filepath.Join(dir, "none.conf"), Dir: filepath.Join(dir, "none.d")}).Load(); err != nil {
		t.Fatalf("a missing default file must be fine: %v", err)
	}
	if _, err := (Loader{File: filepath.Join(dir, "none.conf"), Required: true}).Load(); err == nil {
		t.Fatal("a missing file named explicitly must be an error")
	}
}

func TestRenderRoundTrip(t *testing.T) {
	for _, name := range []string{"default", "changed"} {
		t.Run(name, func(t *testing.T) {
			c := Default()
			if name == "changed" {
				c.LogLevel = "debug"
				c.API.Listen = "/tmp/with \"quotes\".sock"
				c.Supervisor.FailureBackoff = Duration(1500 * time.Millisecond)
				c.EnableFaultInjection = true
				c.Tracing = Tracing{Enable: true, Endpoint: "collector.local:14317", SamplingRatePerMillion: 250000}
			}
			var buf bytes.Buffer
			if err := Render(&c, &buf); err != nil {
				t.Fatal(err)
			}
			path := write(t, filepath.Join(t.TempDir(), "out.conf"), buf.String())
			ld, err := Loader{File: path, Required: true, Env: envOf(nil)}.Load()
			if err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(ld.Config, c) {
				t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", ld.Config, c)
			}
			var again bytes.Buffer
			if err := Render(&ld.Config, &again); err != nil {
				t.Fatal(err)
			}
			if again.String() != buf.String() {
				t.Fatal("rendering the read-back config gave different text")
			}
		})
	}
}

func TestEveryFlagIsUniqueAndHasUsage(t *testing.T) {
	c := Default()
	seen := map[string]string{}
	for _, f := range Fields(&c) {
		if f.Usage == "" {
			t.Errorf("%s has no usage text", f.Key)
		}
		if f.Flag == "" {
			continue
		}
		if other, dup := seen[f.Flag]; dup {
			t.Errorf("flag --%s used by %s and %s", f.Flag, other, f.Key)
		}
		seen[f.Flag] = f.Key
	}
	if err := (&Loaded{Config: c}).Validate(); err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
}
