package spec

import (
	"slices"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcessArgs(t *testing.T) {
	img := imagespec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"}}
	tests := []struct {
		name          string
		command, args []string
		img           imagespec.ImageConfig
		want          []string
		wantErr       bool
	}{
		{"image defaults", nil, nil, img, []string{"/ep", "c1", "c2"}, false},
		{"args override cmd", nil, []string{"a"}, img, []string{"/ep", "a"}, false},
		{"command overrides entrypoint and drops cmd", []string{"/cmd"}, nil, img, []string{"/cmd"}, false},
		{"command and args", []string{"/cmd"}, []string{"a", "b"}, img, []string{"/cmd", "a", "b"}, false},
		{"cmd only image", nil, nil, imagespec.ImageConfig{Cmd: []string{"/bin/sh"}}, []string{"/bin/sh"}, false},
		{"empty-string entrypoint is reset", nil, nil, imagespec.ImageConfig{Entrypoint: []string{""}, Cmd: []string{"/x"}}, []string{"/x"}, false},
		{"nothing at all", nil, nil, imagespec.ImageConfig{}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProcessArgs(tc.command, tc.args, tc.img)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"default path", [][]string{{"A=1"}}, []string{"A=1", DefaultPathEnv}},
		{"request overrides image in place", [][]string{{"PATH=/img", "A=1", "B=2"}, {"A=x", "C=3"}}, []string{"PATH=/img", "A=x", "B=2", "C=3"}},
		{"empty value kept", [][]string{{"PATH=/p", "A=1"}, {"A="}}, []string{"PATH=/p", "A="}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MergeEnv(tc.lists...); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWorkingDir(t *testing.T) {
	tests := []struct {
		cri, img, want string
		wantErr        bool
	}{
		{"", "", "/", false},
		{"", "/img", "/img", false},
		{"/cri/", "/img", "/cri", false},
		{"rel", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.cri+"|"+tc.img, func(t *testing.T) {
			got, err := workingDir(tc.cri, tc.img)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %q, %v; want %q, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestStopSignal(t *testing.T) {
	tests := []struct {
		name    string
		cri     runtimeapi.Signal
		img     string
		want    unix.Signal
		wantErr bool
	}{
		{"default", runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "", unix.SIGTERM, false},
		{"image name", runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "SIGQUIT", unix.SIGQUIT, false},
		{"image short name", runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "int", unix.SIGINT, false},
		{"image number", runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "9", unix.SIGKILL, false},
		{"cri wins", runtimeapi.Signal_SIGNAL_SIGUSR1, "SIGQUIT", unix.SIGUSR1, false},
		{"bad image signal", runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "SIGNOPE", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := StopSignal(tc.cri, tc.img)
			if (err != nil) != tc.wantErr || got != int(tc.want) {
				t.Fatalf("got %d, %v; want %d, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDefaultRlimitsBoundedByHost(t *testing.T) {
	h := fakeHost()
	if got := defaultRlimits(h)[0]; got.Hard != 20000 || got.Soft != 20000 || got.Type != "RLIMIT_NOFILE" {
		t.Fatalf("got %+v, want nofile 20000", got)
	}
	h.NofileHardLimit = 0
	if got := defaultRlimits(h)[0]; got.Hard != DefaultNofile {
		t.Fatalf("got %+v, want %d", got, DefaultNofile)
	}
}
