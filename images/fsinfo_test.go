package images

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFsInfoGrowsAndShrinks(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	big := string(bytes.Repeat([]byte("arbor image layer data "), 20000)) // ~460 KB
	testImage{layers: []string{big}}.build(t).push(t, reg.addr+"/arbor/big:v1", nil)
	e := newEnv(t, envOptions{registries: []string{reg.addr}})
	ctx := context.Background()

	empty := fsInfo(t, e)
	if empty.Images.Mountpoint != e.cfg.Root || empty.Containers.Mountpoint != e.cfg.Root {
		t.Errorf("mountpoints %q, %q; want %q", empty.Images.Mountpoint, empty.Containers.Mountpoint, e.cfg.Root)
	}
	id, err := e.svc.Pull(ctx, reg.addr+"/arbor/big:v1", nil)
	must(t, err)
	pulled := fsInfo(t, e)
	if pulled.Images.UsedBytes < empty.Images.UsedBytes+uint64(len(big)) || pulled.Images.InodesUsed <= empty.Images.InodesUsed {
		t.Fatalf("image usage after pull %+v, before %+v; want growth of at least %d bytes", pulled.Images, empty.Images, len(big))
	}

	ctr := writeContainerFile(t, e, id, 1<<20)
	withCtr := fsInfo(t, e)
	if withCtr.Containers.UsedBytes < pulled.Containers.UsedBytes+1<<20 {
		t.Errorf("container usage %+v, before %+v; want growth of 1 MiB", withCtr.Containers, pulled.Containers)
	}
	if withCtr.Images.UsedBytes > pulled.Images.UsedBytes+64<<10 {
		t.Errorf("container data counted as image data: images %d bytes, before %d", withCtr.Images.UsedBytes, pulled.Images.UsedBytes)
	}
	must(t, e.svc.Store().DeleteContainer(ctr))
	must(t, e.svc.Remove(ctx, id))
	removed := fsInfo(t, e)
	if removed.Images.UsedBytes+uint64(len(big)) > pulled.Images.UsedBytes || removed.Containers.UsedBytes >= withCtr.Containers.UsedBytes {
		t.Errorf("usage after removal: images %+v containers %+v; want shrink from %+v / %+v",
			removed.Images, removed.Containers, pulled.Images, withCtr.Containers)
	}
}

// writeContainerFile creates a storage container from image id, writes
// size bytes into its mounted root file system, unmounts it and returns
// the container ID.
func writeContainerFile(t *testing.T, e *testEnv, id string, size int) string {
	t.Helper()
	store := e.svc.Store()
	ctr, err := store.CreateContainer("", nil, id, "", "", nil)
	must(t, err)
	mnt, err := store.Mount(ctr.ID, "")
	must(t, err)
	defer func() {
		if _, err := store.Unmount(ctr.ID, true); err != nil {
			t.Errorf("unmounting container: %v", err)
		}
	}()
	must(t, os.WriteFile(filepath.Join(mnt, "scratch"), bytes.Repeat([]byte{1}, size), 0o644))
	if _, err := os.Stat(filepath.Join(mnt, "data", "a.txt")); err != nil {
		t.Errorf("image file missing from container rootfs: %v", err)
	}
	return ctr.ID
}

func fsInfo(t *testing.T, e *testEnv) FsInfo {
	t.Helper()
	info, err := e.svc.FsInfo(context.Background())
	must(t, err)
	return info
}

func TestPinnedImages(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	testImage{layers: []string{"pinned"}}.build(t).push(t, reg.addr+"/arbor/pinned:v1", nil)
	testImage{layers: []string{"pause"}}.build(t).push(t, reg.addr+"/pause:3.10", nil)
	e := newEnv(t, envOptions{registries: []string{reg.addr}, mutate: func(c *Config) {
		c.PinnedImages = []string{"127.0.0.1:*/arbor/pin*"}
	}})
	ctx := context.Background()
	pinnedID, err := e.svc.Pull(ctx, reg.addr+"/arbor/pinned:v1", nil)
	must(t, err)
	if e.svc.PauseImage() != fakeHost+"/pause:3.10" {
		t.Fatalf("pause image = %q", e.svc.PauseImage())
	}
	pauseID, err := e.svc.Pull(ctx, e.svc.PauseImage(), nil)
	must(t, err)

	for _, id := range []string{pinnedID, pauseID} {
		st, err := e.svc.Status(ctx, id)
		if err != nil || !st.Pinned {
			t.Errorf("status of %s = %+v, %v; want pinned", id, st, err)
		}
		if err := e.svc.Remove(ctx, id); !errors.Is(err, ErrPinned) {
			t.Errorf("remove pinned %s: got %v, want ErrPinned", id, err)
		}
	}

	cfg := e.cfg
	cfg.PinnedImages = nil
	cfg.PauseImage = "registry.example.test/other-pause:1"
	must(t, e.svc.Reload(cfg))
	if e.svc.PauseImage() != cfg.PauseImage {
		t.Errorf("pause image after reload = %q, want %q", e.svc.PauseImage(), cfg.PauseImage)
	}
	for _, id := range []string{pinnedID, pauseID} {
		if err := e.svc.Remove(ctx, id); err != nil {
			t.Errorf("remove %s after unpinning: %v", id, err)
		}
	}
}

func TestReloadRegistriesConf(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	testImage{layers: []string{"reload"}}.build(t).push(t, reg.addr+"/arbor/reload:v1", nil)
	e := newEnv(t, envOptions{})
	ref := fakeHost + "/arbor/reload:v1"
	if _, err := e.svc.Pull(context.Background(), ref, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("pull before rewrite is configured: got %v, want ErrUnavailable", err)
	}
	writeFile(t, e.cfg.RegistriesConf, registriesConf(envOptions{registries: []string{reg.addr}}))
	must(t, e.svc.Reload(e.cfg))
	if _, err := e.svc.Pull(context.Background(), ref, nil); err != nil {
		t.Fatalf("pull after reload: %v", err)
	}
}
