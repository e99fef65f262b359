package stream

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/syncbuf"
	"github.com/arbor-cri/arbor/oci"
)

func validationBackend() *fakeBackend {
	return &fakeBackend{
		containers: map[string]error{
			"running": nil,
			"stopped": fmt.Errorf("container stopped: %w", ErrNotRunning),
			"gone":    fmt.Errorf("state: %w", oci.ErrNotFound),
			"broken":  errFake,
		},
		pods:    map[string]string{"ready": ""},
		podErrs: map[string]error{"notready": fmt.Errorf("sandbox: %w", ErrNotRunning)},
	}
}

func TestGetExecValidation(t *testing.T) {
	svc, err := New(Config{}, validationBackend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *runtimeapi.ExecRequest
		want codes.Code
	}{
		{"valid", &runtimeapi.ExecRequest{ContainerId: "running", Cmd: []string{"ls"}, Stdout: true}, codes.OK},
		{"valid tty", &runtimeapi.ExecRequest{ContainerId: "running", Cmd: []string{"sh"}, Stdin: true, Stdout: true, Tty: true}, codes.OK},
		{"unknown container", &runtimeapi.ExecRequest{ContainerId: "nosuch", Cmd: []string{"ls"}, Stdout: true}, codes.NotFound},
		{"oci not found", &runtimeapi.ExecRequest{ContainerId: "gone", Cmd: []string{"ls"}, Stdout: true}, codes.NotFound},
		{"not running", &runtimeapi.ExecRequest{ContainerId: "stopped", Cmd: []string{"ls"}, Stdout: true}, codes.FailedPrecondition},
		{"lookup failure", &runtimeapi.ExecRequest{ContainerId: "broken", Cmd: []string{"ls"}, Stdout: true}, codes.Internal},
		{"no container id", &runtimeapi.ExecRequest{Cmd: []string{"ls"}, Stdout: true}, codes.InvalidArgument},
		{"empty command", &runtimeapi.ExecRequest{ContainerId: "running", Stdout: true}, codes.InvalidArgument},
		{"empty program", &runtimeapi.ExecRequest{ContainerId: "running", Cmd: []string{""}, Stdout: true}, codes.InvalidArgument},
		{"no streams", &runtimeapi.ExecRequest{ContainerId: "running", Cmd: []string{"ls"}}, codes.InvalidArgument},
		{"tty with stderr", &runtimeapi.ExecRequest{ContainerId: "running", Cmd: []string{"ls"}, Stdout: true, Stderr: true, Tty: true}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := svc.GetExec(tc.req)
			assertCode(t, err, tc.want)
			if tc.want == codes.OK {
				assertURL(t, resp.GetUrl(), "http://"+svc.Address()+"/exec/")
			}
		})
	}
}

func TestGetAttachValidation(t *testing.T) {
	svc, err := New(Config{}, validationBackend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *runtimeapi.AttachRequest
		want codes.Code
	}{
		{"valid", &runtimeapi.AttachRequest{ContainerId: "running", Stdout: true, Stderr: true}, codes.OK},
		{"unknown container", &runtimeapi.AttachRequest{ContainerId: "nosuch", Stdout: true}, codes.NotFound},
		{"not running", &runtimeapi.AttachRequest{ContainerId: "stopped", Stdout: true}, codes.FailedPrecondition},
		{"no container id", &runtimeapi.AttachRequest{Stdout: true}, codes.InvalidArgument},
		{"no streams", &runtimeapi.AttachRequest{ContainerId: "running"}, codes.InvalidArgument},
		{"tty with stderr", &runtimeapi.AttachRequest{ContainerId: "running", Stderr: true, Tty: true}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := svc.GetAttach(tc.req)
			assertCode(t, err, tc.want)
			if tc.want == codes.OK {
				assertURL(t, resp.GetUrl(), "http://"+svc.Address()+"/attach/")
			}
		})
	}
}

func TestGetPortForwardValidation(t *testing.T) {
	svc, err := New(Config{}, validationBackend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *runtimeapi.PortForwardRequest
		want codes.Code
	}{
		{"valid", &runtimeapi.PortForwardRequest{PodSandboxId: "ready", Port: []int32{80, 65535, 1}}, codes.OK},
		{"no ports", &runtimeapi.PortForwardRequest{PodSandboxId: "ready"}, codes.OK},
		{"unknown pod", &runtimeapi.PortForwardRequest{PodSandboxId: "nosuch", Port: []int32{80}}, codes.NotFound},
		{"pod not ready", &runtimeapi.PortForwardRequest{PodSandboxId: "notready", Port: []int32{80}}, codes.FailedPrecondition},
		{"no pod id", &runtimeapi.PortForwardRequest{Port: []int32{80}}, codes.InvalidArgument},
		{"port zero", &runtimeapi.PortForwardRequest{PodSandboxId: "ready", Port: []int32{80, 0}}, codes.InvalidArgument},
		{"port negative", &runtimeapi.PortForwardRequest{PodSandboxId: "ready", Port: []int32{-1}}, codes.InvalidArgument},
		{"port too large", &runtimeapi.PortForwardRequest{PodSandboxId: "ready", Port: []int32{65536}}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := svc.GetPortForward(tc.req)
			assertCode(t, err, tc.want)
			if tc.want == codes.OK {
				assertURL(t, resp.GetUrl(), "http://"+svc.Address()+"/portforward/")
			}
		})
	}
}

func assertCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("error %v has code %s, want %s", err, got, want)
	}
}

func assertURL(t *testing.T, got, prefix string) {
	t.Helper()
	if !strings.HasPrefix(got, prefix) || len(got) == len(prefix) {
		t.Fatalf("url %q, want %q followed by a token", got, prefix)
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"fixed port kept", Config{Address: "127.0.0.1:10999"}, ""},
		{"bad address", Config{Address: "nohostport"}, "parsing stream address"},
		{"cert without key", Config{TLSCert: "/nonexistent"}, "set together"},
		{"ca without cert", Config{TLSCA: "/nonexistent"}, "tls CA set without"},
		{"missing key pair", Config{TLSCert: "/nonexistent", TLSKey: "/nonexistent"}, "loading stream tls key pair"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := New(tc.cfg, runningBackend(), testLog())
			if tc.wantErr == "" {
				if err != nil || svc.Address() != tc.cfg.Address {
					t.Fatalf("New = %v, address %q", err, svc.Address())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := New(Config{}, nil, testLog()); err == nil {
		t.Fatal("New accepted a nil backend")
	}
}

func TestDefaultAddressPicksPort(t *testing.T) {
	svc, err := New(Config{}, runningBackend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svc.Address(), "127.0.0.1:") || strings.HasSuffix(svc.Address(), ":0") {
		t.Fatalf("address %q, want 127.0.0.1 with a picked port", svc.Address())
	}
}

// TestTokenSingleUse shows that a streaming URL works once: its second
// use, and a made-up token, get 404.
func TestTokenSingleUse(t *testing.T) {
	b := runningBackend()
	b.exec = func(_ context.Context, _ string, opts oci.ExecOptions) (int, error) {
		_, err := opts.Stdout.Write([]byte("once"))
		return 0, err
	}
	s := startService(t, Config{}, b)
	resp, err := s.svc.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"x"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	if err := stream(context.Background(), t, nil, resp.Url, remotecommand.StreamOptions{Stdout: &out}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if out.String() != "once" {
		t.Fatalf("first use printed %q", out.String())
	}
	for _, u := range []string{resp.Url, "http://" + s.svc.Address() + "/exec/madeup"} {
		r, err := http.Post(u, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusNotFound {
			t.Fatalf("POST %s: status %d, want 404", u, r.StatusCode)
		}
	}
	if err := stream(context.Background(), t, nil, resp.Url, remotecommand.StreamOptions{Stdout: &out}); err == nil {
		t.Fatal("second use of the URL streamed")
	}
}
