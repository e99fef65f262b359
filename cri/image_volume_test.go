package cri

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// imageMountCount is how often the image's top layer is mounted.
func imageMountCount(t *testing.T, e *imageTestEnv, id string) int {
	t.Helper()
	img, err := e.svc.Store().Image(id)
	mustOK(t, err)
	layer, err := e.svc.Store().Layer(img.TopLayer)
	mustOK(t, err)
	return layer.MountCount
}

func TestImageVolumes(t *testing.T) {
	e := newImageTestEnv(t)
	id := e.pull(t)
	s := &RuntimeServer{Deps: Deps{Images: e.svc}}
	mount := func(readonly bool, sub string) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: "/vol", Readonly: readonly, ImageSubPath: sub,
			Image: &runtimeapi.ImageSpec{Image: archiveName}}
	}
	for _, tc := range []struct {
		name string
		m    *runtimeapi.Mount
		code codes.Code // OK: mounted
		file string     // expected under the host path
	}{
		{"whole image", mount(true, ""), codes.OK, "hello.txt"},
		{"sub path", mount(true, "hello.txt"), codes.OK, ""},
		{"writable is refused", mount(false, ""), codes.InvalidArgument, ""},
		{"missing sub path is refused", mount(true, "nope"), codes.InvalidArgument, ""},
		{"escaping sub path stays inside", mount(true, "../../hello.txt"), codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &store.Container{Config: &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{tc.m}}}
			u := &undo{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := s.mountImageVolumes(context.Background(), c, nil, u)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("mountImageVolumes: code %v (%v), want %v", got, err, tc.code)
			}
			if err != nil {
				u.run()
				if n := imageMountCount(t, e, id); n != 0 {
					t.Fatalf("failed mount left the image mounted %d times", n)
				}
				return
			}
			m := c.Config.GetMounts()[0]
			if m.GetImage().GetImageRef() != id || tc.m.GetHostPath() != "" {
				t.Fatalf("image_ref %q (want %q); request mount changed: %q", m.GetImage().GetImageRef(), id, tc.m.GetHostPath())
			}
			if _, err := os.Stat(filepath.Join(m.GetHostPath(), tc.file)); err != nil {
				t.Fatalf("image content not at the host path: %v", err)
			}
			if n := imageMountCount(t, e, id); n != 1 {
				t.Fatalf("image mounted %d times, want 1", n)
			}
			mustOK(t, s.unmountImageVolumes(c))
			mustOK(t, s.unmountImageVolumes(c)) // a repeated removal is harmless
			if n := imageMountCount(t, e, id); n != 0 {
				t.Fatalf("image still mounted %d times after removal", n)
			}
		})
	}
}
