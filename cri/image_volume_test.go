package cri

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/images"
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

// TestOrphanImageMounts plays a crash after an image volume was mounted
// and before the container's record named it: the orphan finder drops
// only that extra mount, not the one a known container holds, and the
// image cannot be removed while a volume holds it.
func TestOrphanImageMounts(t *testing.T) {
	e := newImageTestEnv(t)
	id := e.pull(t)
	st, err := store.Open(t.TempDir())
	mustOK(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &RuntimeServer{Deps: Deps{Images: e.svc, Store: st}, log: log}
	volume := func() *store.Container {
		c := &store.Container{Config: &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{
			ContainerPath: "/vol", Readonly: true, Image: &runtimeapi.ImageSpec{Image: archiveName}}}}}
		mustOK(t, s.mountImageVolumes(context.Background(), c, nil, &undo{log: log}))
		return c
	}

	// A known container holds one mount; a crashed create left a second.
	kept := volume()
	kept.ID = "kept"
	st.Containers.Add(kept.ID, *kept)
	volume()
	if n := imageMountCount(t, e, id); n != 2 {
		t.Fatalf("image mounted %d times, want 2", n)
	}
	if err := e.svc.Remove(context.Background(), id); !errors.Is(err, images.ErrInUse) ||
		!strings.Contains(err.Error(), "image volume") {
		t.Fatalf("removing an image mounted as a volume: %v, want ErrInUse naming the volume", err)
	}
	orphans := s.orphanImageMounts(context.Background(), nil)
	if len(orphans) != 1 || orphans[0].ID != id {
		t.Fatalf("orphans %+v, want the one extra mount of %s", orphans, id)
	}
	mustOK(t, orphans[0].remove(context.Background()))
	if n := imageMountCount(t, e, id); n != 1 {
		t.Fatalf("after removing the orphan the image is mounted %d times, want 1 (the kept volume)", n)
	}
	if o := s.orphanImageMounts(context.Background(), nil); len(o) != 0 {
		t.Fatalf("orphans after clean-up: %+v", o)
	}

	// Once the kept container is removed the image can go.
	mustOK(t, s.unmountImageVolumes(kept))
	st.Containers.Remove(kept.ID, kept.Name)
	if o := s.orphanImageMounts(context.Background(), nil); len(o) != 0 {
		t.Fatalf("orphans with no volume left: %+v", o)
	}
	mustOK(t, e.svc.Remove(context.Background(), id))
}
