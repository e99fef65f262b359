// Package e2e runs the real arbor binary with real clients (crictl,
// critest) and the real runtime. Each test ends with a clean SIGTERM.
package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
)

func TestCrictlVersionAndInfo(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	out, err := d.Crictl("version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RuntimeName:  arbor", "RuntimeApiVersion:  v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("crictl version lacks %q:\n%s", want, out)
		}
	}
	out, err = d.Crictl("info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status bool   `json:"status"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("crictl info is not JSON: %v\n%s", err, out)
	}
	ready := map[string]bool{}
	for _, c := range info.Status.Conditions {
		ready[c.Type] = c.Status
	}
	if !ready["RuntimeReady"] {
		t.Errorf("RuntimeReady is not true: %s", out)
	}
	d.Stop(t)
}

func TestSocketIsPrivate(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o660 {
		t.Errorf("socket mode %o, want 660", mode)
	}
	d.Stop(t)
}

func TestStatusCommands(t *testing.T) {
	d := harness.Start(t, harness.Options{ConfigText: "log_format = \"json\"\n"})
	info, err := d.Arbor("status", "info")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(info), &got); err != nil {
		t.Fatalf("status info is not JSON: %v\n%s", err, info)
	}
	if got["cgroup_driver"] != "cgroupfs" || got["socket"] != d.Socket {
		t.Errorf("status info: %s", info)
	}
	cfg, err := d.Arbor("status", "config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg, `log_format = 'json'`) && !strings.Contains(cfg, `log_format = "json"`) {
		t.Errorf("status config does not show the file's log_format:\n%s", cfg)
	}
	tree, err := d.Arbor("status", "tree")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tree, "listener") || !strings.Contains(tree, "running") {
		t.Errorf("status tree:\n%s", tree)
	}
	if _, err := d.Arbor("status", "container", "abc"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("status container of an unknown ID: %v", err)
	}
	d.Stop(t)
}

// treeRow returns the status tree line of a service.
func treeRow(t *testing.T, d *harness.Daemon, service string) []string {
	t.Helper()
	out, err := d.Arbor("status", "tree")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 5 && f[1] == service {
			return f
		}
	}
	t.Fatalf("no %s in tree:\n%s", service, out)
	return nil
}

func TestListenerPanicIsContained(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	if err := d.Fault("listener", "panic", 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.WaitLog("injected panic in service listener", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitServing(5 * time.Second); err != nil {
		t.Fatalf("listener did not come back: %v\n%s", err, d.Log())
	}
	t.Logf("serving again %s after the injected panic", time.Since(start).Round(time.Millisecond))
	// The supervisor's hook counts the panic, then logs it; suture may
	// restart the service before it runs the hook.
	if err := d.WaitLog("Service panicked", 5*time.Second); err != nil {
		t.Errorf("the panic is not in the log: %v", err)
	}
	row := treeRow(t, d, "listener")
	if row[2] != "running" || row[3] != "1" || row[4] != "1" {
		t.Errorf("listener row after one panic: %v", row)
	}
	d.Stop(t)
}

func TestCRIMethodPanicIsContained(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	cri := d.Client(t)
	ctx := context.Background()
	if err := d.Fault("Version", "panic", 1); err != nil {
		t.Fatal(err)
	}
	_, err := cri.Version(ctx, &runtimeapi.VersionRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("a panicking Version must fail with Internal, got %v", err)
	}
	if _, err := cri.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("the next call must succeed: %v", err)
	}
	if err := d.WaitLog("Handler panicked", 5*time.Second); err != nil {
		t.Errorf("the panic is not in the log: %v", err)
	}
	if row := treeRow(t, d, "listener"); row[3] != "0" {
		t.Errorf("a handler panic must not restart the listener: %v", row)
	}
	d.Stop(t)
}

func TestFaultModes(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	cri := d.Client(t)
	ctx := context.Background()
	if err := d.Fault("Status", "error", 2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, err := cri.Status(ctx, &runtimeapi.StatusRequest{})
		if err == nil || !strings.Contains(err.Error(), "injected fault") {
			t.Fatalf("call %d with an armed error: %v", i, err)
		}
	}
	if _, err := cri.Status(ctx, &runtimeapi.StatusRequest{}); err != nil {
		t.Fatalf("the third call must succeed: %v", err)
	}
	if err := d.Fault("Status", "delay=300ms", 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := cri.Status(ctx, &runtimeapi.StatusRequest{}); err != nil {
		t.Fatalf("a delayed call must succeed: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("the armed delay did not happen (call took %s)", took)
	}
	if err := d.Fault("Version", "explode", 1); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a bad mode must be refused with 400: %v", err)
	}
	_, err := cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{})
	if status.Code(err) != codes.Unimplemented && status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an RPC that is not built must not succeed: %v", err)
	}
	d.Stop(t)
}

func TestFaultExitKillsAtOnce(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	if err := d.Fault("Version", "exit", 1); err != nil {
		t.Fatal(err)
	}
	_, _ = d.Crictl("version")
	code, err := d.Wait(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != -1 { // killed by a signal
		t.Fatalf("exit fault: exit code %d, want death by SIGKILL", code)
	}
	if _, err := os.Stat(filepath.Join(d.Root, "clean.shutdown")); err == nil {
		t.Fatal("a killed daemon must not leave a clean-shutdown marker")
	}
	// A restart on the same folders finds the unclean stop and serves.
	again := harness.Start(t, harness.Options{Dir: d.Dir})
	for _, want := range []string{"Last stop was not clean", "Storage checked after an unclean stop"} {
		if err := again.WaitLog(want, 5*time.Second); err != nil {
			t.Error(err)
		}
	}
	again.Stop(t)
}

func TestSIGHUPReload(t *testing.T) {
	d := harness.Start(t, harness.Options{ConfigText: "log_level = \"info\"\n", LevelFromConfig: true})
	if _, err := d.Crictl("version"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.Log(), "CRI call") {
		t.Fatal("polling calls must not log at info")
	}
	reload := func(text, wantLog string) {
		t.Helper()
		if err := os.WriteFile(d.ConfigFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitLog(wantLog, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	reload("log_level = \"debug\"\n", "Config reloaded")
	if _, err := d.Crictl("version"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitLog("CRI call", 5*time.Second); err != nil {
		t.Fatalf("debug level did not take effect: %v\n%s", err, d.Log())
	}

	reload("log_level = \"loud\"\n", "Config reload rejected")
	if !strings.Contains(d.Log(), `log_level`) {
		t.Error("the rejection does not name the key")
	}
	if _, err := d.Crictl("version"); err != nil {
		t.Fatalf("serving must go on after a bad reload: %v", err)
	}
	d.Stop(t)
}

// TestSignalAsSoonAsTheSocketExists sends SIGHUP the moment the socket
// file appears: the daemon must already handle it (a reload), not die of
// the signal's default action.
func TestSignalAsSoonAsTheSocketExists(t *testing.T) {
	for round := range 10 {
		d, err := harness.Launch(t, harness.Options{})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(d.Socket); err == nil {
				break
			}
			if d.Exited() || time.Now().After(deadline) {
				t.Fatalf("round %d: no socket\n%s", round, d.Log())
			}
			time.Sleep(time.Millisecond)
		}
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitLog("Config reloaded", 5*time.Second); err != nil {
			t.Fatalf("round %d: %v (exited: %v)\n%s", round, err, d.Exited(), d.Log())
		}
		d.Stop(t)
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	took := d.Stop(t)
	t.Logf("SIGTERM to exit: %s", took.Round(time.Millisecond))
	if !strings.Contains(d.Log(), "Stopped cleanly") {
		t.Error("no clean-stop line in the log")
	}
}

func TestSecondDaemonRefuses(t *testing.T) {
	first := harness.Start(t, harness.Options{})
	for _, tc := range []struct {
		name string
		opts harness.Options
		want string
	}{
		{name: "same state folders", opts: harness.Options{Dir: first.Dir}, want: "another arbor daemon is running"},
		{name: "same socket only", opts: harness.Options{Args: []string{"--listen", first.Socket}}, want: "served by a live process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second, err := harness.Launch(t, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			code, err := second.Wait(20 * time.Second)
			if err != nil || code == 0 {
				t.Fatalf("second daemon: exit %d, %v", code, err)
			}
			if !strings.Contains(second.Log(), tc.want) {
				t.Errorf("second daemon's error does not say %q:\n%s", tc.want, second.Log())
			}
			if _, err := first.Crictl("version"); err != nil {
				t.Fatalf("first daemon stopped serving: %v", err)
			}
		})
	}
	first.Stop(t)
}

func TestBadConfigExitsTwo(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(conf, []byte("[api]\nlisen = \"/x.sock\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{name: "unknown key", args: []string{"--config", conf}, want: []string{`"api.lisen"`, conf, "line 2"}},
		{name: "bad flag value", args: []string{"--log-level", "loud"}, want: []string{`"log_level"`, "--log-level"}},
		{name: "bad env value", env: []string{"ARBOR_PROFILE_PORT=http"}, want: []string{`"profile.port"`, "ARBOR_PROFILE_PORT"}},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: []string{"no-such-flag"}},
		{name: "missing named file", args: []string{"--config", filepath.Join(dir, "none.conf")}, want: []string{"none.conf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
				"--listen", filepath.Join(dir, "a.sock"), "--config-dir", filepath.Join(dir, "none.d")}, tc.args...)
			if tc.name != "unknown key" && tc.name != "missing named file" {
				args = append(args, "--config", empty)
			}
			cmd := exec.Command(harness.Bin(), args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != 2 {
				t.Fatalf("want exit 2, got %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 {
				t.Errorf("want one line, got %d:\n%s", len(lines), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestConfigCommandRoundTrip(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.conf")
	out, err := exec.Command(harness.Bin(), "--config-dir", dir+"/none", "--listen", "/tmp/x y.sock",
		"--supervisor-failure-backoff", "750ms", "config").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first, out, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := exec.Command(harness.Bin(), "--config", first, "--config-dir", dir+"/none", "config").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Fatalf("config output changed on a round trip:\n%s\n---\n%s", out, again)
	}
	if !strings.Contains(string(out), "750ms") || !strings.Contains(string(out), "/tmp/x y.sock") {
		t.Fatalf("flags are not in the effective config:\n%s", out)
	}
}
