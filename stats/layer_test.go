package stats

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/storage"
	"go.podman.io/storage/types"
)

// TestStorageLayers finds a real container's writable layer in a
// containers/storage store made for the test, for each graph driver, and
// measures a file written through the container's mounted root.
func TestStorageLayers(t *testing.T) {
	needRoot(t)
	for _, driver := range []string{"overlay", "vfs"} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			st, err := storage.GetStore(types.StoreOptions{
				RunRoot: filepath.Join(dir, "run"), GraphRoot: filepath.Join(dir, "root"), GraphDriverName: driver,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = st.Shutdown(true) })
			if _, err := st.CreateContainer("c1", nil, "", "", "", nil); err != nil {
				t.Fatal(err)
			}
			mp, err := st.Mount("c1", "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = st.Unmount("c1", true) })
			if err := os.WriteFile(filepath.Join(mp, "written"), make([]byte, 64<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			layerDir, root, err := StorageLayers{Store: st}.WritableLayer("c1")
			if err != nil {
				t.Fatal(err)
			}
			if root != st.GraphRoot() {
				t.Fatalf("mount point %s, want the graph root %s", root, st.GraphRoot())
			}
			u, err := Usage(context.Background(), layerDir)
			if err != nil {
				t.Fatal(err)
			}
			if u.Bytes < 64<<10 || u.Inodes < 2 {
				t.Fatalf("layer %s usage %+v: the 64 KiB file is missing", layerDir, u)
			}
			if _, _, err := (StorageLayers{Store: st}).WritableLayer("none"); err == nil {
				t.Fatal("an unknown container must be an error")
			}
		})
	}
}
