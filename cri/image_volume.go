package cri

import (
	"context"
	"errors"
	"fmt"
	"os"

	securejoin "github.com/cyphar/filepath-securejoin"
	"go.podman.io/storage"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/images"
	"github.com/arbor-cri/arbor/store"
)

// mountImageVolumes mounts, read-only, the image of every CRI mount that
// names one (an image volume) and points the mount at it: at its
// image_sub_path inside the image when one is set. The container's config
// then records the host path and, in image.image_ref, the image ID, which
// ContainerStatus reports and removal unmounts.
func (s *RuntimeServer) mountImageVolumes(ctx context.Context, c *store.Container, _ *store.Pod, u *undo) error {
	if !hasImageVolumes(c.Config) {
		return nil
	}
	cfg := proto.Clone(c.Config).(*runtimeapi.ContainerConfig)
	for i, m := range cfg.GetMounts() {
		if m.GetImage() == nil {
			continue
		}
		if err := s.mountImageVolume(ctx, m, fmt.Sprintf("config.mounts[%d]", i), u); err != nil {
			return err
		}
	}
	c.Config = cfg
	return nil
}

func hasImageVolumes(cfg *runtimeapi.ContainerConfig) bool {
	for _, m := range cfg.GetMounts() {
		if m.GetImage() != nil {
			return true
		}
	}
	return false
}

// mountImageVolume mounts one image volume and fills m's host path and
// image ref; field names m in errors.
func (s *RuntimeServer) mountImageVolume(ctx context.Context, m *runtimeapi.Mount, field string, u *undo) error {
	if !m.GetReadonly() {
		return invalid(field+".readonly", "an image volume must be read-only")
	}
	img, err := s.Images.Status(ctx, m.GetImage().GetImage())
	if err != nil {
		return fmt.Errorf("%s.image %q: %w", field, m.GetImage().GetImage(), err)
	}
	root, err := s.Images.Store().MountImage(img.ID, nil, "")
	if err != nil {
		return fmt.Errorf("mounting image volume %s: %w", img.ID, err)
	}
	u.push("unmounting image volume", func(context.Context) error { return s.unmountImage(img.ID) })
	src, err := imageSubPath(root, m.GetImageSubPath())
	if err != nil {
		return invalid(field+".image_sub_path", "%v", err)
	}
	m.HostPath = src
	m.Image.ImageRef = img.ID
	return nil
}

// imageSubPath resolves sub inside the mounted image root (symlinks cannot
// leave it) and requires it to exist; an empty sub is the root.
func imageSubPath(root, sub string) (string, error) {
	if sub == "" {
		return root, nil
	}
	p, err := securejoin.SecureJoin(root, sub)
	if err != nil {
		return "", fmt.Errorf("resolving %q in the image: %w", sub, err)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%q in the image: %w", sub, err)
	}
	return p, nil
}

// unmountImageVolumes releases the image mounts mountImageVolumes made for
// c; a volume whose image is gone or not mounted is skipped.
func (s *RuntimeServer) unmountImageVolumes(c *store.Container) error {
	for _, m := range c.Config.GetMounts() {
		if id := m.GetImage().GetImageRef(); id != "" && m.GetHostPath() != "" {
			if err := s.unmountImage(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// unmountImage drops one mount of image id, unless the image is unknown
// or not mounted at all (a repeated removal).
func (s *RuntimeServer) unmountImage(id string) error {
	st := s.Images.Store()
	img, err := st.Image(id)
	if errors.Is(err, storage.ErrImageUnknown) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmounting image volume %s: %w", id, err)
	}
	if layer, err := st.Layer(img.TopLayer); err != nil || layer.MountCount == 0 {
		return nil
	}
	if _, err := st.UnmountImage(id, false); err != nil {
		return fmt.Errorf("unmounting image volume %s: %w", id, err)
	}
	return nil
}

// extraImageMounts compares, per image layer, how often storage has it
// mounted with how many image volumes of known containers use it, and
// returns the layers mounted more often than that, each with an image
// that has the layer on top.
func (s *RuntimeServer) extraImageMounts() ([]imageMount, error) {
	st := s.Images.Store()
	imgs, err := st.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	byLayer := map[string]*imageMount{}
	byImage := map[string]*imageMount{}
	for i := range imgs {
		layer := images.VolumeLayer(st, &imgs[i])
		m, ok := byLayer[layer]
		if !ok {
			l, err := st.Layer(layer)
			if err != nil {
				continue
			}
			m = &imageMount{Image: imgs[i].ID, Layer: layer, Path: l.MountPoint, Extra: l.MountCount}
			byLayer[layer] = m
		}
		byImage[imgs[i].ID] = m
	}
	for _, e := range s.Store.Containers.All() {
		for _, mnt := range e.Get().Config.GetMounts() {
			if id := mnt.GetImage().GetImageRef(); id != "" && mnt.GetHostPath() != "" {
				if m, ok := byImage[id]; ok {
					m.Extra--
				}
			}
		}
	}
	var out []imageMount
	for _, m := range byLayer {
		if m.Extra > 0 {
			out = append(out, *m)
		}
	}
	return out, nil
}

// imageMount is an image layer mounted Extra times more than image volumes
// of known containers account for.
type imageMount struct {
	Image, Layer, Path string
	Extra              int
}

// orphanImageMounts finds image volume mounts that no known container
// holds: a crash after an image volume was mounted and before the
// container's record named it, or during a removal before it unmounted
// the volumes, leaves one. Removing one drops only the extra mounts.
func (s *RuntimeServer) orphanImageMounts(_ context.Context, _ map[string]bool) []Orphan {
	extra, err := s.extraImageMounts()
	if err != nil {
		s.log.Warn("Cannot check image volume mounts", "error", err)
		return nil
	}
	out := make([]Orphan, 0, len(extra))
	for _, m := range extra {
		out = append(out, Orphan{Kind: "image volume mount", ID: m.Image, Path: m.Path,
			remove: func(context.Context) error {
				for range m.Extra {
					if _, err := s.Images.Store().Unmount(m.Layer, false); err != nil {
						return fmt.Errorf("unmounting image layer %s: %w", m.Layer, err)
					}
				}
				return nil
			}})
	}
	return out
}
