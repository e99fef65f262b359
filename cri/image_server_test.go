package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/storage/pkg/reexec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/images"
)

// init lets go.podman.io/storage re-execute this test binary for its
// helper subprocesses (layer extraction), as the daemon's main does.
func init() {
	if reexec.Init() {
		os.Exit(0)
	}
}

// imageTestEnv is an ImageServer on a temp store plus an OCI archive
// holding one small image named archiveName.
type imageTestEnv struct {
	srv      *ImageServer
	svc      *images.Service
	root     string
	archive  string
	configID string
}

const archiveName = "example.test/cri/app:v1"

func newImageTestEnv(t *testing.T) *imageTestEnv {
	t.Helper()
	dir := t.TempDir()
	mustOK(t, os.WriteFile(filepath.Join(dir, "registries.conf"), []byte("unqualified-search-registries = []\n"), 0o600))
	mustOK(t, os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o600))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := images.Open(images.Config{
		Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), Driver: "vfs",
		RegistriesConf: filepath.Join(dir, "registries.conf"), RegistriesConfDir: filepath.Join(dir, "registries.d"),
		SignaturePolicy: filepath.Join(dir, "policy.json"), PauseImage: "example.test/pause:1",
	}, log)
	mustOK(t, err)
	t.Cleanup(func() {
		_, _ = svc.Store().Shutdown(true)
		mustOK(t, svc.Close())
	})
	e := &imageTestEnv{srv: NewImageServer(svc, log), svc: svc, root: filepath.Join(dir, "root")}
	e.archive, e.configID = buildArchive(t, filepath.Join(dir, "app.tar"))
	return e
}

// buildArchive writes a one-layer image as an OCI archive named
// archiveName and returns the archive path and the image's config digest.
func buildArchive(t *testing.T, path string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	mustOK(t, os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mustOK(t, tw.WriteHeader(&tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5}))
	_, err := tw.Write([]byte("hello"))
	mustOK(t, err)
	mustOK(t, tw.Close())
	layer := blob(t, dir, imgspecv1.MediaTypeImageLayer, buf.Bytes())
	cfg := blob(t, dir, imgspecv1.MediaTypeImageConfig, jsonOf(t, imgspecv1.Image{
		Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   imgspecv1.ImageConfig{User: "7", Cmd: []string{"/hello"}},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	}))
	manifest := blob(t, dir, imgspecv1.MediaTypeImageManifest, jsonOf(t, imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: cfg, Layers: []imgspecv1.Descriptor{layer}}))
	manifest.Annotations = map[string]string{imgspecv1.AnnotationRefName: "latest"}
	mustOK(t, os.WriteFile(filepath.Join(dir, "index.json"), jsonOf(t, imgspecv1.Index{
		Versioned: imgspecs.Versioned{SchemaVersion: 2}, Manifests: []imgspecv1.Descriptor{manifest}}), 0o644))
	mustOK(t, os.WriteFile(filepath.Join(dir, imgspecv1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	copyLayout(t, dir, path)
	return path, cfg.Digest.Encoded()
}

// copyLayout copies the layout's "latest" image into an OCI archive.
func copyLayout(t *testing.T, dir, path string) {
	t.Helper()
	src, err := layout.NewReference(dir, "latest")
	mustOK(t, err)
	dest, err := archive.NewReference(path, archiveName)
	mustOK(t, err)
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	mustOK(t, err)
	defer func() { _ = pc.Destroy() }()
	_, err = copy.Image(context.Background(), pc, dest, src, &copy.Options{})
	mustOK(t, err)
}

func blob(t *testing.T, dir, mediaType string, data []byte) imgspecv1.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	mustOK(t, os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), data, 0o644))
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	mustOK(t, err)
	return data
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pull pulls the env's archive through the CRI and returns image_ref.
func (e *imageTestEnv) pull(t *testing.T) string {
	t.Helper()
	resp, err := e.srv.PullImage(context.Background(), &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: "oci-archive:" + e.archive + ":" + archiveName}})
	mustOK(t, err)
	return resp.ImageRef
}

func TestImageServerLifecycle(t *testing.T) {
	e := newImageTestEnv(t)
	ctx := context.Background()
	ref := e.pull(t)
	if ref != e.configID {
		t.Fatalf("PullImage image_ref = %q, want image ID %q", ref, e.configID)
	}
	list, err := e.srv.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	mustOK(t, err)
	if len(list.Images) != 1 || list.Images[0].Id != ref || list.Images[0].RepoTags[0] != archiveName {
		t.Fatalf("ListImages = %v, want the pulled image tagged %s", list.Images, archiveName)
	}
	st, err := e.srv.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: archiveName}, Verbose: true})
	mustOK(t, err)
	if st.Image == nil || st.Image.Id != ref || st.Image.Uid.GetValue() != 7 || st.Image.Size == 0 || st.Image.Pinned {
		t.Fatalf("ImageStatus = %v, want id %s uid 7 size>0 unpinned", st.Image, ref)
	}
	if !strings.Contains(st.Info["info"], `"/hello"`) {
		t.Errorf("verbose info lacks the image config: %q", st.Info["info"])
	}
	fs, err := e.srv.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	mustOK(t, err)
	if fs.ImageFilesystems[0].FsId.Mountpoint != e.root || fs.ImageFilesystems[0].UsedBytes.Value == 0 ||
		fs.ContainerFilesystems[0].FsId.Mountpoint != e.root {
		t.Errorf("ImageFsInfo = %v, want usage on %s", fs, e.root)
	}
	for range 2 { // the second removal finds nothing and still succeeds
		_, err = e.srv.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		mustOK(t, err)
	}
	st, err = e.srv.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || st.Image != nil {
		t.Fatalf("ImageStatus after removal = %v, %v; want no image and no error", st, err)
	}
}

func TestImageServerConcurrentRemove(t *testing.T) {
	e := newImageTestEnv(t)
	ref := e.pull(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.srv.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: archiveName}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("RemoveImage %d: %v", i, err)
		}
	}
	if imgs, _ := e.svc.List(context.Background(), ref); len(imgs) != 0 {
		t.Errorf("image still listed after removal: %v", imgs)
	}
}

func TestImageServerErrorCodes(t *testing.T) {
	e := newImageTestEnv(t)
	ctx := context.Background()
	tests := []struct {
		name, image string
		want        codes.Code
	}{
		{"empty", "", codes.InvalidArgument},
		{"unknown transport", "dir:/nothing", codes.InvalidArgument},
		{"malformed", "Upper/Case:x", codes.InvalidArgument},
		{"missing archive", "oci-archive:/nonexistent/arbor.tar", codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.srv.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tc.image}})
			if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), fmt.Sprintf("%q", tc.image)) {
				t.Fatalf("PullImage(%q) = %v, want %s naming the reference", tc.image, err, tc.want)
			}
		})
	}
	t.Run("in use", func(t *testing.T) {
		ref := e.pull(t)
		_, err := e.svc.Store().CreateContainer("", nil, ref, "", "", nil)
		mustOK(t, err)
		_, err = e.srv.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("RemoveImage of image in use = %v, want FailedPrecondition", err)
		}
	})
}

func TestImageCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{images.ErrInvalidReference, codes.InvalidArgument},
		{images.ErrInvalidAuth, codes.InvalidArgument},
		{images.ErrNotFound, codes.NotFound},
		{images.ErrUnauthorized, codes.Unauthenticated},
		{images.ErrDenied, codes.PermissionDenied},
		{images.ErrUnavailable, codes.Unavailable},
		{images.ErrInUse, codes.FailedPrecondition},
		{images.ErrPinned, codes.FailedPrecondition},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("disk on fire"), codes.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			err := imageStatus("pulling image", "x:1", fmt.Errorf("step: %w", tc.err))
			if status.Code(err) != tc.want || !strings.Contains(err.Error(), `"x:1"`) {
				t.Fatalf("imageStatus(%v) = %v, want %s naming the reference", tc.err, err, tc.want)
			}
		})
	}
}

// collectStream is a server stream that records what StreamImages sends.
type collectStream struct {
	grpc.ServerStream
	sent []*runtimeapi.StreamImagesResponse
}

func (c *collectStream) Context() context.Context { return context.Background() }

func (c *collectStream) Send(r *runtimeapi.StreamImagesResponse) error {
	c.sent = append(c.sent, r)
	return nil
}

func TestStreamImages(t *testing.T) {
	e := newImageTestEnv(t)
	ref := e.pull(t)
	stream := &collectStream{}
	mustOK(t, e.srv.StreamImages(&runtimeapi.StreamImagesRequest{}, stream))
	if len(stream.sent) != 1 || len(stream.sent[0].Images) != 1 || stream.sent[0].Images[0].Id != ref {
		t.Fatalf("StreamImages sent %v, want one batch with %s", stream.sent, ref)
	}
}
