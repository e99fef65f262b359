package images

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
)

func TestPullArchives(t *testing.T) {
	img := testImage{layers: []string{"archived"}, user: "42"}.build(t)
	dir := t.TempDir()
	ociPath := filepath.Join(dir, "app.oci.tar")
	ociDest, err := ociarchive.NewReference(ociPath, "example.test/arch:v1")
	must(t, err)
	img.copyTo(t, ociDest, nil)
	dockerPath := filepath.Join(dir, "Docker App.tar")
	named, err := reference.ParseNormalizedNamed("example.test/darch:v2")
	must(t, err)
	dockerDest, err := dockerarchive.NewReference(dockerPath, named.(reference.NamedTagged))
	must(t, err)
	img.copyTo(t, dockerDest, nil)

	tests := []struct {
		name, ref, wantTag string
	}{
		{"oci archive with name", "oci-archive:" + ociPath + ":example.test/arch:v1", "example.test/arch:v1"},
		{"docker archive with name", "docker-archive:" + dockerPath + ":example.test/darch:v2", "example.test/darch:v2"},
		{"docker archive without name", "docker-archive:" + dockerPath, "localhost/docker-app:latest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			id, err := e.svc.Pull(context.Background(), tc.ref, nil)
			if err != nil || id != img.configID {
				t.Fatalf("pull %s = %s, %v; want %s", tc.ref, id, err, img.configID)
			}
			for _, ref := range []string{tc.ref, tc.wantTag} {
				st, err := e.svc.Status(context.Background(), ref)
				if err != nil || st.ID != id || !slices.Contains(st.RepoTags, tc.wantTag) || st.UID == nil || *st.UID != 42 {
					t.Errorf("status %s = %+v, %v; want id %s tagged %s uid 42", ref, st, err, id, tc.wantTag)
				}
			}
		})
	}
	t.Run("missing archive", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		_, err := e.svc.Pull(context.Background(), "oci-archive:"+filepath.Join(dir, "none.tar"), nil)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("pull of missing archive: got %v, want ErrNotFound", err)
		}
	})
}
